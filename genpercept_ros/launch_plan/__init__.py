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
Launch planning: launch arguments to node parameters, remappings and helper processes.

Pure Python (no ``launch`` import) so it is tested without a ROS install: ``arguments`` (the
argument table), ``plan`` (one pure function per launch file: values -> :class:`LaunchPlan`),
``files`` (parameter files, rviz configs). Only ``actions`` imports ``launch``/``launch_ros``;
the launch files in ``launch/`` call it and nothing else.
"""
