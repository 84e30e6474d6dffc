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
Cost of distorted camera models: the one-off ray table and the per-frame work.

Run: ``python benchmarks/bench_camera_model.py [--width 640 --height 480] [--repeat 50]``.
For each distortion model: the ray table (OpenCV undistortion to convergence plus the
round-trip check, paid once per camera_info and output size), then per frame the camera_info
resolution, ``depth/camera_info`` and the organized xyz cloud (``depth_to_pointcloud``) next to
the pinhole fast path. Minimum (median) in milliseconds.
"""

import argparse
import os
import sys
import time

try:
    import genpercept_ros  # noqa: F401
except ImportError:  # run as a script from a checkout without installing the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_cpu_side import cpu_description
from bench_cpu_side import measure
from genpercept_ros.geometry.camera_model import _ray_table
from genpercept_ros.messages import camera_model_to_camera_info
from genpercept_ros.messages import depth_to_pointcloud
from genpercept_ros.messages import resolve_camera_model
import numpy as np
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

MODELS = {
    'plumb_bob': ('plumb_bob', [-0.31, 0.11, 0.001, -0.002, 0.0]),
    'rational_polynomial': ('rational_polynomial',
                            [-0.28, 0.09, 0.001, -0.002, 0.01, 0.03, -0.01, 0.02]),
    'equidistant': ('equidistant', [0.05, -0.01, 0.003, -0.001]),
    # Last, so that the first row's allocations do not land on the fast path.
    'pinhole (D = 0: the fast path)': ('plumb_bob', [0.0] * 5),
}


def camera_info(width, height, model, d):
    """Return a CameraInfo with a 4:3 camera scaled to ``width``, distortion ``d``."""
    f = 0.94 * width
    info = CameraInfo(width=width, height=height, distortion_model=model, d=list(d))
    info.k = [f, 0.0, width / 2 + 0.3, 0.0, f, height / 2 + 0.7, 0.0, 0.0, 1.0]
    info.p = [0.8 * f, 0.0, width / 2, 0.0, 0.0, 0.8 * f, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    return info


def main():
    """Print one table row per camera model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--repeat', type=int, default=50)
    args = parser.parse_args()
    width, height = args.width, args.height
    depth = np.random.default_rng(0).uniform(0.5, 5.0, (height, width)).astype(np.float32)
    header = Header(frame_id='camera_optical')
    print(f'{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, {cpu_description()}, '
          f'{width}x{height}, {args.repeat} runs per row')
    print('| model | ray table, once: ms | per frame: resolve + depth/camera_info: min (median) '
          'ms | per frame: xyz cloud: min (median) ms |')
    print('|---|---:|---:|---:|')
    for name, (model_name, d) in MODELS.items():
        info = camera_info(width, height, model_name, d)
        model = resolve_camera_model(info, width, height).model
        _ray_table.cache_clear()
        start = time.perf_counter()
        model.rays()
        table_ms = (time.perf_counter() - start) * 1e3

        def per_frame_info():
            camera_model_to_camera_info(resolve_camera_model(info, width, height).model, header)

        def per_frame_cloud():
            depth_to_pointcloud(header, depth, model)

        info_median, info_min = measure(per_frame_info, args.repeat)
        cloud_median, cloud_min = measure(per_frame_cloud, args.repeat)
        print(f'| {name} | {table_ms:.1f} | {info_min:.3f} ({info_median:.3f}) | '
              f'{cloud_min:.3f} ({cloud_median:.3f}) |')


if __name__ == '__main__':
    main()
