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
Pipeline layer: camera frames to the node's output messages, without rclpy.

Shared by ``genpercept_node`` and ``genpercept bag``. May import ``model`` (lazily, for the
predictor), ``geometry`` and ``messages``; never ``node``, ``launch_plan`` or ``offline``.
Modules: ``frames`` (:class:`FramePipeline` and frame checks), ``outputs`` (message building),
``topics`` (output topic table), ``scale`` (per-camera metric scale), ``ground`` (the floor:
orientation source, floor and obstacle masks), ``filters`` (depth filters),
``parameters`` (the parameter table that also drives the node and launch files).
"""

from .frames import check_frame_size
from .frames import check_pixel_count
from .frames import decode_image
from .frames import Frame
from .frames import FramePipeline
from .frames import FrameResult
from .frames import FrameSizeError
from .frames import INPUT_SIZE_PROBLEM
from .frames import MIN_PROCESSING_SIDE
from .frames import PipelineSettings
from .parameters import DEFAULTS
from .parameters import PARAMETER_SPECS
from .parameters import PARAMETERS
from .parameters import validate_parameters
from .scale import ScaleReport
from .topics import message_type
from .topics import output_topics

__all__ = [
    'DEFAULTS', 'Frame', 'FramePipeline', 'FrameResult', 'FrameSizeError', 'INPUT_SIZE_PROBLEM',
    'MIN_PROCESSING_SIDE', 'PARAMETERS', 'PARAMETER_SPECS', 'PipelineSettings', 'ScaleReport',
    'check_frame_size', 'check_pixel_count', 'decode_image', 'message_type', 'output_topics',
    'validate_parameters',
]
