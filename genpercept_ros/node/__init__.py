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
Node layer: rclpy wiring only (``genpercept_node``).

Modules: ``main`` (the plain and lifecycle nodes, process entry point), ``core`` (what both
share: parameters, model, topics), ``worker`` (the inference thread), ``problems`` (throttled
problem reports), ``camera`` (per-camera topics and newest-frame slot), ``diagnostics``,
``parameters`` (ROS parameter descriptors), ``process`` (allocator tuning), ``ground_tf`` (the
floor orientation from a tf2_ros Buffer). Everything that
turns frames into messages lives in :mod:`genpercept_ros.pipeline`.
"""

from .main import GenPerceptLifecycleNode
from .main import GenPerceptNode
from .main import main

__all__ = ['GenPerceptLifecycleNode', 'GenPerceptNode', 'main']
