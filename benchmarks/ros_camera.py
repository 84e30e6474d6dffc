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


"""Synthetic camera frames and the background spin loop shared by the node benchmarks."""

from genpercept_ros.geometry.synthetic import box_room
from genpercept_ros.messages import intrinsics_to_camera_info
import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

FRAME_ID = 'camera_optical'


def box_room_frames(width, height, count, shift_px):
    """
    Return ``count`` different rgb8 Images of the box room and its calibrated CameraInfo.

    Frame ``i`` is the rendering rolled sideways by ``i * shift_px`` pixels, so consecutive
    frames differ; the CameraInfo is the package's own (``intrinsics_to_camera_info``).
    """
    scene = box_room(width, height)
    frames = []
    for index in range(count):
        rgb = np.ascontiguousarray(np.roll(scene.rgb, (index * shift_px) % width, axis=1))
        msg = Image(height=height, width=width, encoding='rgb8', is_bigendian=0, step=width * 3)
        msg.data = rgb.tobytes()
        msg.header.frame_id = FRAME_ID
        frames.append(msg)
    return frames, intrinsics_to_camera_info(scene.intrinsics, Header(frame_id=FRAME_ID))


def spin_while_ok(executor, context):
    """Spin ``executor`` until ``context`` shuts down (run it on a daemon thread)."""
    while context.ok():
        try:
            executor.spin_once(timeout_sec=0.05)
        except Exception:  # noqa: B902 - shutdown races end the loop
            if not context.ok():
                return
            raise
