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

"""Message codecs: sensor_msgs messages to and from numpy arrays (no rclpy)."""

from .camera_info import camera_info_to_intrinsics
from .camera_info import camera_model_to_camera_info
from .camera_info import intrinsics_to_camera_info
from .camera_info import parse_input_rectified
from .camera_info import resolve_camera_info
from .camera_info import resolve_camera_model
from .camera_info import ResolvedCameraInfo
from .camera_info import ResolvedCameraModel
from .errors import CodecError
from .image import array_to_image
from .image import compressed_to_rgb
from .image import depth_image_to_meters
from .image import encoding_layout
from .image import image_to_array
from .image import image_to_rgb
from .pointcloud import build_pointcloud
from .pointcloud import cloud_fields
from .pointcloud import depth_to_pointcloud
from .pointcloud import pointcloud_to_xyz

__all__ = [
    'array_to_image', 'build_pointcloud', 'camera_info_to_intrinsics',
    'camera_model_to_camera_info', 'cloud_fields', 'CodecError', 'compressed_to_rgb',
    'depth_image_to_meters', 'depth_to_pointcloud', 'encoding_layout', 'image_to_array',
    'image_to_rgb', 'intrinsics_to_camera_info', 'parse_input_rectified', 'pointcloud_to_xyz',
    'resolve_camera_info', 'resolve_camera_model', 'ResolvedCameraInfo', 'ResolvedCameraModel',
]
