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
CPU cost per frame of scale_mode ground and the floor outputs, against the range mapping.

Run: ``python benchmarks/bench_ground.py [--width 640 --height 480] [--repeat 20]``. The frame is
the synthetic box room seen from 1.2 m, pitched down 15 degrees, with its true normals; each row
is the minimum (median) over ``--repeat`` runs after 3 warm-up runs, in one process.
"""

import argparse
import math
import os
import sys

try:
    import genpercept_ros  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from genpercept_ros.geometry.confidence import depth_confidence
from genpercept_ros.geometry.ground import fit_ground_scale
from genpercept_ros.geometry.ground import up_from_pitch_roll
from genpercept_ros.geometry.synthetic import box_room
import numpy as np
try:
    from bench_cpu_side import measure
except ImportError:  # imported from outside benchmarks/
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_cpu_side import measure

PITCH_DEG, HEIGHT_M = 15.0, 1.2


def scene(width, height):
    """Render the pitched box room; return the scene."""
    pitch = math.radians(PITCH_DEG)
    orientation = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(pitch), math.sin(pitch)],
                            [0.0, -math.sin(pitch), math.cos(pitch)]])
    return box_room(width, height, camera_height=HEIGHT_M, orientation=orientation)


def run(args):
    """Print one table row per step."""
    from builtin_interfaces.msg import Time
    from genpercept_ros.model.predictor import PredictionOutput
    from genpercept_ros.model.registry import MODELS
    from genpercept_ros.pipeline import Frame
    from genpercept_ros.pipeline import FramePipeline
    from genpercept_ros.pipeline import PipelineSettings
    from genpercept_ros.pipeline.ground import floor_and_obstacles
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header

    truth = scene(args.width, args.height)
    relative = ((truth.depth - 0.3) / 8.0).astype(np.float32)
    up = up_from_pitch_roll(PITCH_DEG, 0.0)
    k = truth.intrinsics
    info = CameraInfo(width=k.width, height=k.height)
    info.k = [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]
    info.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]

    class Oracle:
        depth_spec = MODELS['depth-v2']
        normal_spec = MODELS['normal-v2']

        def predict(self, images, processing_resolution, output_resolution, tasks):
            out = PredictionOutput()
            out.depth, out.depth_kind = [relative] * len(images), 'relative_depth'
            out.normals = [truth.normals] * len(images)
            return out

    def pipeline(**parameters):
        values = {'processing_resolution': 0, 'cloud_color': False}
        values.update(parameters)
        return FramePipeline(Oracle(), PipelineSettings.from_parameters(values))

    stamps = iter(range(10 ** 9))

    def frame(wanted):
        return Frame(truth.rgb, Header(stamp=Time(sec=next(stamps)), frame_id='cam'), info,
                     wanted=frozenset(wanted))

    ground = {'scale_mode': 'ground', 'camera_height_m': HEIGHT_M,
              'ground_orientation': 'parameters', 'camera_pitch_deg': PITCH_DEG}
    range_pipeline = pipeline()
    ground_pipeline = pipeline(**ground)
    metric = ['depth/image']
    full = ['depth/image', 'points', 'points_obstacles', 'ground/mask', 'depth/confidence']
    depth_m = fit_ground_scale(relative, truth.normals, k, HEIGHT_M, up=up).to_metric(relative)
    settings = PipelineSettings.from_parameters(ground)
    rows = [
        ('fit_ground_scale, up given', lambda: fit_ground_scale(
            relative, truth.normals, k, HEIGHT_M, up=up)),
        ('fit_ground_scale, up estimated', lambda: fit_ground_scale(
            relative, truth.normals, k, HEIGHT_M)),
        ('depth_confidence', lambda: depth_confidence(depth_m, k, truth.normals, relative,
                                                      'relative_depth')),
        ('floor and obstacle masks', lambda: floor_and_obstacles(depth_m, k, truth.normals, up,
                                                                 settings)),
        ('pipeline depth/image, range', lambda: range_pipeline.process([frame(metric)])),
        ('pipeline depth/image, ground', lambda: ground_pipeline.process([frame(metric)])),
        ('pipeline + points, range', lambda: range_pipeline.process(
            [frame(['depth/image', 'points'])])),
        ('pipeline + points, obstacles, mask, confidence, ground',
         lambda: ground_pipeline.process([frame(full)])),
    ]
    print(f'{args.width}x{args.height}, {args.repeat} runs per row, numpy {np.__version__}')
    print('| step | min (median) ms |\n|---|---:|')
    for name, function in rows:
        median, low = measure(function, args.repeat)
        print(f'| {name} | {low:.2f} ({median:.2f}) |')


def main(argv=None):
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--repeat', type=int, default=20)
    run(parser.parse_args(argv))
    return 0


if __name__ == '__main__':
    sys.exit(main())
