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
Launch genpercept on several cameras, each in its own namespace.

Two RealSense cameras started with ``camera_namespace:=front`` / ``left`` (and
``camera_name:=camera``), batched through one model in one process::

    ros2 launch genpercept_ros genpercept_multi_camera.launch.py cameras:=front,left \
        image_topic:=/{camera}/camera/color/image_raw single_process:=true

``ros2 launch genpercept_ros genpercept_multi_camera.launch.py --show-args`` lists every
argument. The mapping from arguments to node parameters and remappings lives in
``genpercept_ros.launch_plan.plan``.
"""

from genpercept_ros.launch_plan import plan
from genpercept_ros.launch_plan.actions import describe_launch


def generate_launch_description():
    """Declare every launch argument, then build the nodes from their values."""
    return describe_launch(plan.MULTI_CAMERA_ARGUMENTS, plan.plan_multi_camera)
