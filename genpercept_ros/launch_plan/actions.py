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
Launch actions shared by ``launch/*.launch.py`` (imports ``launch``/``launch_ros``).

Only the launch files import this module; everything testable without a ROS install (argument
tables, the argument -> parameter mapping) lives in :mod:`genpercept_ros.launch_plan.plan`.
"""

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.actions import EmitEvent
from launch.actions import OpaqueFunction
from launch.actions import RegisterEventHandler
from launch.events import matches_action
from launch_ros.actions import LifecycleNode
from launch_ros.actions import Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue
from lifecycle_msgs.msg import Transition

from . import plan as launch_plan


def _node_actions(spec):
    kwargs = spec.node_kwargs()
    # Strings stay strings: launch_ros would otherwise YAML-parse them ('1.0' -> float).
    kwargs['parameters'] = [{
        name: ParameterValue(value, value_type=str) if isinstance(value, str) else value
        for name, value in parameters.items()} for parameters in kwargs['parameters']]
    if not spec.lifecycle:
        return [Node(**kwargs)]
    node = LifecycleNode(**kwargs)
    if not spec.autostart:
        return [node]

    def change_state(transition_id):
        return EmitEvent(event=ChangeState(
            lifecycle_node_matcher=matches_action(node), transition_id=transition_id))

    # Activate once configure has finished (start_state keeps a later manual deactivate
    # from being undone).
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, start_state='configuring', goal_state='inactive',
        entities=[change_state(Transition.TRANSITION_ACTIVATE)]))
    return [node, activate, change_state(Transition.TRANSITION_CONFIGURE)]


def describe_launch(arguments, plan_nodes):
    """
    Return the LaunchDescription shared by the package's launch files.

    :param arguments: the ``LaunchArgument`` table to declare (:mod:`.plan`).
    :param plan_nodes: ``plan_*_camera(values, share_dir) -> LaunchPlan`` from :mod:`.plan`.
    """
    def launch_setup(context):
        share_dir = get_package_share_directory(launch_plan.PACKAGE)
        plan = plan_nodes(context.launch_configurations, share_dir)
        return [action for spec in plan.nodes + plan.helpers for action in _node_actions(spec)]

    return LaunchDescription([
        DeclareLaunchArgument(argument.name, default_value=argument.default,
                              description=argument.description,
                              choices=list(argument.choices) or None)
        for argument in arguments
    ] + [OpaqueFunction(function=launch_setup)])
