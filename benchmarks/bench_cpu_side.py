# Copyright 2026 genpercept_ros contributors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
CPU-side cost per frame: input decode, post-processing and every output message.

Run: ``python benchmarks/bench_cpu_side.py [--width 640 --height 480] [--json PATH]
[--sensor-msgs-py PATH]``. ``--sensor-msgs-py`` (or ``SENSOR_MSGS_PY_PATH``) points at a
folder containing the ``sensor_msgs_py`` package (e.g. a checkout of ros2/common_interfaces'
``sensor_msgs_py``) to compare against ``point_cloud2.create_cloud``; it is never installed.
Each row is the median over ``--repeat`` runs after a warm-up; ratios come from this run.
"""

import argparse
import array
import datetime
import json
import os
import platform
import statistics
import sys
import time

import cv2

try:
    import genpercept_ros  # noqa: F401
except ImportError:  # run as a script from a checkout without installing the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from genpercept_ros.geometry import backproject
from genpercept_ros.geometry import Intrinsics
from genpercept_ros.geometry.colorize import colorize_depth
from genpercept_ros.geometry.colorize import normals_to_rgb
from genpercept_ros.geometry.scale import relative_to_metric
from genpercept_ros.messages import array_to_image
from genpercept_ros.messages import build_pointcloud
from genpercept_ros.messages import cloud_fields
from genpercept_ros.messages import compressed_to_rgb
from genpercept_ros.messages import depth_to_pointcloud
from genpercept_ros.messages import image_to_rgb
from genpercept_ros.messages import intrinsics_to_camera_info
from genpercept_ros.messages import resolve_camera_info
from genpercept_ros.node.process import tune_allocator
import numpy as np
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

OUTPUT_ROWS = ('relative depth 32FC1', 'metric depth (range scale) + 32FC1',
               'depth camera_info', 'depth colourised rgb8', 'normals 32FC3',
               'normals colourised rgb8', 'cloud xyz+rgb+normals (depth_to_pointcloud)')


def synthetic_frame(width, height, seed=0):
    """Return a textured RGB image, relative depth in [0, 1] and unit normals."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.dstack([columns / width * 255, rows / height * 255,
                     128 + 60 * np.sin(columns / 9) * np.cos(rows / 13)])
    rgb = np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
    relative = (0.2 + 0.6 * rows / height + 0.1 * np.sin(columns / 40)).astype(np.float32)
    normals = np.dstack([np.sin(columns / 50), np.cos(rows / 70), -np.ones_like(rows) * 2])
    normals = (normals / np.linalg.norm(normals, axis=2, keepdims=True)).astype(np.float32)
    return rgb, relative, normals


def measure(function, repeat, warmup=3):
    """Return the median and minimum wall time of ``function()`` in milliseconds."""
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples), min(samples)


def cpu_description():
    """Return the CPU model and count, e.g. 'Intel(R) Xeon(R) Processor x 2'."""
    model = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as stream:
            for line in stream:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return f'{model} x {os.cpu_count()}'


def load_point_cloud2(path):
    """Import sensor_msgs_py.point_cloud2 from ``path`` (or the environment), or None."""
    if path:
        sys.path.insert(0, path)
    try:
        from sensor_msgs_py import point_cloud2
    except ImportError:
        return None
    return point_cloud2


def run(args):
    """Measure every row; return (rows, ratios, whether create_cloud was compared)."""
    width, height, repeat = args.width, args.height, args.repeat
    header = Header(frame_id='camera_optical')
    rgb, relative, normals = synthetic_frame(width, height)
    intrinsics = Intrinsics(fx=0.8 * width, fy=0.8 * width, cx=(width - 1) / 2,
                            cy=(height - 1) / 2, width=width, height=height)
    camera_info = intrinsics_to_camera_info(intrinsics, header)
    rgb_msg = array_to_image(rgb, 'rgb8', header)
    bgr_msg = array_to_image(np.ascontiguousarray(rgb[..., ::-1]), 'bgr8', header)
    jpeg_msg = CompressedImage(header=header, format='rgb8; jpeg compressed bgr8')
    jpeg_msg.data = array.array(
        'B', cv2.imencode('.jpg', rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    depth_m = relative_to_metric(relative, 'relative_depth', 'range', near_m=0.5, far_m=10.0)
    xyz = backproject(depth_m, intrinsics)

    rows = {}
    rows['decode rgb8 Image'] = measure(lambda: image_to_rgb(rgb_msg), repeat)
    rows['decode bgr8 Image'] = measure(lambda: image_to_rgb(bgr_msg), repeat)
    rows[f'decode jpeg CompressedImage ({len(jpeg_msg.data) // 1024} KiB)'] = measure(
        lambda: compressed_to_rgb(jpeg_msg), repeat)

    def metric_depth():
        metres = relative_to_metric(relative, 'relative_depth', 'range', near_m=0.5, far_m=10.0)
        return array_to_image(metres, '32FC1', header)

    def depth_info():
        resolved = resolve_camera_info(camera_info, width, height)
        return intrinsics_to_camera_info(resolved.intrinsics, header, camera_info)

    def cloud():
        return depth_to_pointcloud(header, depth_m, intrinsics, rgb, normals)

    outputs = dict(zip(OUTPUT_ROWS, (
        lambda: array_to_image(relative, '32FC1', header),
        metric_depth,
        depth_info,
        lambda: array_to_image(colorize_depth(depth_m, 0.5, 10.0), 'rgb8', header),
        lambda: array_to_image(normals, '32FC3', header),
        lambda: array_to_image(normals_to_rgb(normals), 'rgb8', header),
        cloud)))

    def all_outputs():
        for build in outputs.values():
            build()

    for name, build in outputs.items():
        rows[name] = measure(build, repeat)
    rows['ALL OUTPUTS TOGETHER'] = measure(all_outputs, repeat)
    rows['cloud via backproject() + build_pointcloud()'] = measure(
        lambda: build_pointcloud(header, backproject(depth_m, intrinsics), rgb, normals), repeat)
    rows['backproject() only'] = measure(lambda: backproject(depth_m, intrinsics), repeat)

    cloud_bytes = build_pointcloud(header, xyz, rgb, normals).data.tobytes()
    rows['build_pointcloud only (xyz+rgb+normals)'] = measure(
        lambda: build_pointcloud(header, xyz, rgb, normals), repeat)

    def copy_floor():
        data = array.array('B')
        data.frombytes(cloud_bytes)
        return data

    rows['floor: copy the cloud bytes once'] = measure(copy_floor, repeat)
    ratios = {}

    def ratio(name, numerator, denominator):
        # (median ratio, min ratio): the min is the less contention-sensitive of the two.
        ratios[name] = (rows[numerator][0] / rows[denominator][0],
                        rows[numerator][1] / rows[denominator][1])

    ratio('build_pointcloud / single-copy floor', 'build_pointcloud only (xyz+rgb+normals)',
          'floor: copy the cloud bytes once')

    point_cloud2 = load_point_cloud2(args.sensor_msgs_py)
    if point_cloud2 is not None:
        fields, point_step = cloud_fields(rgb=True, normals=True)
        names = [field.name for field in fields]
        structured = np.dtype({'names': names, 'formats': ['<f4'] * len(names),
                               'offsets': [field.offset for field in fields],
                               'itemsize': point_step})
        packed_rgb = ((rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8)
                      | rgb[..., 2]).view(np.float32)
        columns = [xyz[..., 0], xyz[..., 1], xyz[..., 2], packed_rgb,
                   normals[..., 0], normals[..., 1], normals[..., 2]]

        def create_cloud_numpy():
            # The fast path of create_cloud: the caller fills a structured array first. A flat
            # array avoids its (width, height) transposition of organized clouds (#236).
            points = np.empty(height * width, dtype=structured)
            for name, column in zip(names, columns):
                points[name] = column.ravel()
            msg = point_cloud2.create_cloud(header, fields, points)
            msg.height, msg.width, msg.row_step = height, width, width * point_step
            return msg

        rows['sensor_msgs_py create_cloud (numpy fill + create)'] = measure(
            create_cloud_numpy, repeat)
        assert create_cloud_numpy().data.tobytes() == cloud_bytes
        ratio('create_cloud (numpy) / build_pointcloud',
              'sensor_msgs_py create_cloud (numpy fill + create)',
              'build_pointcloud only (xyz+rgb+normals)')
        if args.tuples:
            tuples = np.stack(columns, axis=-1).reshape(-1, len(names)).tolist()
            rows['sensor_msgs_py create_cloud (list of tuples)'] = measure(
                lambda: point_cloud2.create_cloud(header, fields, tuples), 3, warmup=1)
            ratio('create_cloud (tuples) / build_pointcloud',
                  'sensor_msgs_py create_cloud (list of tuples)',
                  'build_pointcloud only (xyz+rgb+normals)')
    return rows, ratios, point_cloud2 is not None


def main(argv=None):
    """Parse the command line, run the benchmark, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--repeat', type=int, default=50)
    parser.add_argument('--json', metavar='PATH', help='also write the results as JSON')
    parser.add_argument('--sensor-msgs-py', metavar='PATH',
                        default=os.environ.get('SENSOR_MSGS_PY_PATH'),
                        help='folder holding the sensor_msgs_py package, for the comparison')
    parser.add_argument('--tune-allocator', action='store_true',
                        help='call genpercept_ros.node.process.tune_allocator() first (as the '
                             'node does): freed multi-MB buffers are reused instead of re-faulted')
    parser.add_argument('--no-tuples', dest='tuples', action='store_false',
                        help='skip create_cloud on a list of tuples (slow, ~seconds)')
    args = parser.parse_args(argv)
    tuned = tune_allocator() if args.tune_allocator else False
    rows, ratios, compared = run(args)
    print(f'{cpu_description()}; load average {os.getloadavg()[0]:.2f}')
    print(f'CPU side at {args.width}x{args.height}, median (min) of {args.repeat} runs, ms/frame; '
          f'allocator tuned: {tuned}; MALLOC_* env: '
          f'{sorted(k for k in os.environ if k.startswith("MALLOC_")) or "none"}')
    for name, (median, minimum) in rows.items():
        print(f'  {name:<52} {median:8.3f} ({minimum:.3f})')
    for name, (median, minimum) in ratios.items():
        print(f'  {name:<52} {median:7.2f}x ({minimum:.2f}x)')
    if not compared:
        print('  sensor_msgs_py not importable: no create_cloud comparison')
    if args.json:
        result = {
            'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
            'machine': f'{cpu_description()}, {platform.platform()}',
            'load_average': os.getloadavg() if hasattr(os, 'getloadavg') else None,
            'python': platform.python_version(), 'numpy': np.__version__,
            'opencv': cv2.__version__, 'width': args.width, 'height': args.height,
            'repeat': args.repeat, 'allocator_tuned': tuned,
            'rows_ms': {name: {'median': m, 'min': n} for name, (m, n) in rows.items()},
            'ratios': {name: {'median': m, 'min': n} for name, (m, n) in ratios.items()}}
        with open(args.json, 'w', encoding='utf-8') as stream:
            json.dump(result, stream, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
