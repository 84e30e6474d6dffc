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
The node's output topics: relative names, the message type on each, and which exist per model.

One table for the node (advertising), the pipeline (what to compute) and the tools that record or
read the outputs (``genpercept bag``, the demo).
"""

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Float64MultiArray

RELATIVE_DEPTH_TOPIC = 'depth_relative/image'
RELATIVE_DISPARITY_TOPIC = 'disparity_relative/image'
DEPTH_TOPIC = 'depth/image'
DEPTH_INFO_TOPIC = 'depth/camera_info'
DEPTH_COLORED_TOPIC = 'depth/colored'
NORMALS_TOPIC = 'normals/image'
NORMALS_COLORED_TOPIC = 'normals/colored'
POINTS_TOPIC = 'points'
POINTS_VOXEL_TOPIC = 'points_voxel'
POINTS_OBSTACLES_TOPIC = 'points_obstacles'
GROUND_MASK_TOPIC = 'ground/mask'
DEPTH_CONFIDENCE_TOPIC = 'depth/confidence'
# The scale of each frame with the frame's header (diagnostic_msgs/DiagnosticArray: one status,
# named values). No stamped numeric-array message exists in the standard packages; the status
# carries the numbers (exact decimal text), the strings (mode, source, space) and a level (WARN
# when the scale is held or a fallback), so a consumer can match and judge it per frame.
SCALE_STAMPED_TOPIC = 'depth/scale'
# Deprecated (one release): std_msgs/Float64MultiArray [scale, shift, inlier_ratio, residual]
# without a header, so it cannot be matched to its frame; use SCALE_STAMPED_TOPIC.
SCALE_TOPIC = 'scale'

SCALE_LAYOUT_LABEL = 'scale,shift,inlier_ratio,residual'

METRIC_TOPICS = (DEPTH_TOPIC, DEPTH_INFO_TOPIC, DEPTH_COLORED_TOPIC, DEPTH_CONFIDENCE_TOPIC,
                 POINTS_TOPIC, POINTS_VOXEL_TOPIC, POINTS_OBSTACLES_TOPIC, GROUND_MASK_TOPIC,
                 SCALE_STAMPED_TOPIC, SCALE_TOPIC)
CLOUD_TOPICS = (POINTS_TOPIC, POINTS_VOXEL_TOPIC, POINTS_OBSTACLES_TOPIC)
# Published only when the floor is known (scale_mode 'ground', or camera_height_m set in a
# measured metric mode).
FLOOR_TOPICS = (GROUND_MASK_TOPIC, POINTS_OBSTACLES_TOPIC)
NORMAL_TOPICS = (NORMALS_TOPIC, NORMALS_COLORED_TOPIC)


def relative_topic(depth_kind):
    """Return the topic of the unitless prediction: depth or disparity, never metres."""
    return RELATIVE_DISPARITY_TOPIC if depth_kind == 'relative_disparity' else RELATIVE_DEPTH_TOPIC


def output_topics(depth_kind, has_normals):
    """Return every topic a predictor with these outputs produces, in publishing order."""
    topics = ()
    if depth_kind is not None:
        topics += (relative_topic(depth_kind),) + METRIC_TOPICS
    if has_normals:
        topics += NORMAL_TOPICS
    return topics


def message_type(topic):
    """Return the message class published on an output topic."""
    if topic == DEPTH_INFO_TOPIC:
        return CameraInfo
    if topic in CLOUD_TOPICS:
        return PointCloud2
    if topic == SCALE_TOPIC:
        return Float64MultiArray
    if topic == SCALE_STAMPED_TOPIC:
        return DiagnosticArray
    return Image
