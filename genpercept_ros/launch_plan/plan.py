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
Launch arguments of the genpercept launch files and their mapping onto processes.

The launch files declare :data:`SINGLE_CAMERA_ARGUMENTS` / :data:`MULTI_CAMERA_ARGUMENTS` and hand
the evaluated strings to :func:`plan_single_camera` / :func:`plan_multi_camera`, which return a
:class:`LaunchPlan`: plain data (node names, namespaces, typed parameters, remappings, arguments)
that the launch file turns into ``launch_ros`` actions. Nothing here imports ``launch``, so the
whole mapping is unit-tested without a ROS install.

Arguments that set a node parameter default to ``''``, which keeps the value from
``params_file`` (and ``preset``); any other value overrides it. Parameter files are merged in the
order ``params_file``, ``preset``, launch arguments.
"""

from dataclasses import dataclass
from dataclasses import field
import math
import os
import re

from .arguments import CAMERA_PLACEHOLDER
from .arguments import DISABLED_MODEL
from .arguments import EXECUTABLE
from .arguments import LaunchArgument
from .arguments import MULTI_CAMERA_ARGUMENTS
from .arguments import NODE_NAME
from .arguments import OPTICAL_ROLL_RAD
from .arguments import OPTICAL_YAW_RAD
from .arguments import PACKAGE
from .arguments import SINGLE_CAMERA_ARGUMENTS
from .files import load_parameter_file
from .files import write_rviz_config
from ..pipeline.parameters import PARAMETER_SPECS
from ..pipeline.parameters import validate_parameters

__all__ = [
    'EXECUTABLE', 'LaunchArgumentError', 'LaunchPlan', 'MULTI_CAMERA_ARGUMENTS', 'NODE_NAME',
    'PACKAGE', 'ProcessSpec', 'SINGLE_CAMERA_ARGUMENTS', 'input_remappings', 'merged_parameters',
    'optical_tf_arguments', 'parameter_overrides', 'parse_arguments', 'parse_value',
    'plan_multi_camera', 'plan_single_camera', 'sibling_topic',
]

_TRUE = ('true', '1', 'yes', 'on')
_FALSE = ('false', '0', 'no', 'off')
_NAME_TOKEN = r'[A-Za-z_][A-Za-z0-9_]*'
_NAME_PATTERN = re.compile(rf'^/?({_NAME_TOKEN}(/{_NAME_TOKEN})*)?$')
_CAMERA_PATTERN = re.compile(rf'^[A-Za-z][A-Za-z0-9_]*(/{_NAME_TOKEN})*$')
_FRAME_PATTERN = re.compile(r'^[A-Za-z0-9_/.\-]+$')


class LaunchArgumentError(ValueError):
    """A launch argument has a value the launch file cannot use; the message says why."""


@dataclass(frozen=True)
class ProcessSpec:
    """
    One process to start: a ROS node with everything ``launch_ros.actions.Node`` needs.

    ``parameters`` is one flat dict of typed values; ``lifecycle`` selects a lifecycle node and
    ``autostart`` asks the launch file to configure and activate it.
    """

    package: str
    executable: str
    name: str
    namespace: str = ''
    parameters: dict = field(default_factory=dict)
    remappings: tuple = ()
    arguments: tuple = ()
    ros_arguments: tuple = ()
    lifecycle: bool = False
    autostart: bool = False

    def node_kwargs(self):
        """
        Return the keyword arguments of ``launch_ros.actions.Node`` for this process.

        Empty arrays are left out: a ROS parameter override needs an element to know its type,
        and the node's own default (an empty array) then applies.
        """
        parameters = {name: value for name, value in self.parameters.items()
                      if not (isinstance(value, (list, tuple)) and not value)}
        return {
            'package': self.package, 'executable': self.executable, 'name': self.name,
            'namespace': self.namespace, 'parameters': [parameters],
            'remappings': list(self.remappings), 'arguments': list(self.arguments),
            'ros_arguments': list(self.ros_arguments), 'output': 'screen',
        }


@dataclass(frozen=True)
class LaunchPlan:
    """Everything a launch file starts: genpercept node(s), then the optional helpers."""

    nodes: tuple
    helpers: tuple = ()


def parse_value(argument, text):
    """
    Return the launch string ``text`` converted to the type of ``argument``.

    :raises LaunchArgumentError: naming the argument, the expected form and the value received.
    """
    text = text.strip()
    if argument.parameter is not None and text == '':
        return ''
    if argument.choices and text not in argument.choices:
        allowed = ', '.join(repr(choice) for choice in argument.choices)
        raise LaunchArgumentError(
            f'launch argument `{argument.name}` must be one of {allowed}, got {text!r}.')
    kind = argument.kind
    if kind == 'bool':
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise LaunchArgumentError(
            f'launch argument `{argument.name}` must be true or false, got {text!r}.')
    if kind in ('int', 'float'):
        try:
            number = int(text) if kind == 'int' else float(text)
        except ValueError:
            article = 'an integer' if kind == 'int' else 'a number'
            raise LaunchArgumentError(
                f'launch argument `{argument.name}` must be {article}, got {text!r}.') from None
        if not math.isfinite(number):
            raise LaunchArgumentError(
                f'launch argument `{argument.name}` must be finite, got {text!r}.')
        return number
    # '{camera}' placeholders are checked as if they were a camera name.
    name = text.replace(CAMERA_PLACEHOLDER, 'camera') if argument.camera_template else text
    if kind in ('topic', 'namespace') and not _NAME_PATTERN.match(name):
        raise LaunchArgumentError(
            f'launch argument `{argument.name}`: {text!r} is not a valid ROS name (tokens of '
            'letters, digits and _, not starting with a digit, separated by /).')
    if kind == 'frame' and name and not _FRAME_PATTERN.match(name):
        raise LaunchArgumentError(
            f'launch argument `{argument.name}`: {text!r} is not a valid TF frame name.')
    if kind == 'list':
        return _parse_camera_list(argument.name, text)
    if kind == 'path':
        # `model_root:=~/models` reaches the launch file unexpanded (no shell tilde expansion
        # inside a word).
        return os.path.expanduser(text)
    return text


def _parse_camera_list(name, text):
    cameras = [item.strip().strip('/') for item in text.split(',') if item.strip()]
    if not cameras:
        raise LaunchArgumentError(f'launch argument `{name}` lists no camera.')
    for camera in cameras:
        if not _CAMERA_PATTERN.match(camera):
            raise LaunchArgumentError(
                f'launch argument `{name}`: {camera!r} is not a valid namespace (letters, '
                'digits and _, starting with a letter).')
    if len(set(cameras)) != len(cameras):
        raise LaunchArgumentError(f'launch argument `{name}` lists a camera twice: {cameras}.')
    return cameras


def parse_arguments(arguments, values):
    """
    Return ``{name: typed value}`` for every argument in ``arguments``.

    ``values`` maps names to launch strings (``LaunchContext.launch_configurations``); missing
    names take the argument default and names that are not arguments are ignored.
    """
    return {argument.name: parse_value(argument, values.get(argument.name, argument.default))
            for argument in arguments}


def parameter_overrides(arguments, parsed):
    """
    Return the node parameters set by launch arguments (those not left at ``''``).

    Values have the parameter's type (``near_m:=1`` becomes ``1.0``); ``'none'`` models become
    ``''`` (task disabled).
    """
    overrides = {}
    for argument in arguments:
        value = parsed[argument.name]
        if argument.parameter is None or value == '':
            continue
        if argument.parameter in ('depth_model', 'normal_model') and value == DISABLED_MODEL:
            value = ''
        try:
            overrides[argument.parameter] = PARAMETER_SPECS[argument.parameter].check(value)
        except ValueError as error:
            raise LaunchArgumentError(f'launch argument {error}') from None
    return overrides


def sibling_topic(topic, sibling):
    """Return ``sibling`` next to ``topic`` (``/a/b/image_raw`` -> ``/a/b/camera_info``)."""
    head, _, _ = topic.rpartition('/')
    if not head and topic.startswith('/'):
        return '/' + sibling
    return f'{head}/{sibling}' if head else sibling


def input_remappings(image_topic, camera_info_topic='', reference_topic='', prefix=''):
    """
    Return the remapping rules that connect the node's relative inputs to the given topics.

    ``prefix`` is the camera sub-namespace of a multi-camera node (``front`` -> ``front/image``).
    Both the raw and the ``/compressed`` rule are emitted because ``image_transport`` may come from
    the params file; the node subscribes only one of them.

    :raises LaunchArgumentError: when ``image_topic`` already ends in ``/compressed``.
    """
    if image_topic.endswith('/compressed'):
        raise LaunchArgumentError(
            f'image_topic {image_topic!r} ends in /compressed: give the base topic and set '
            'image_transport:=compressed; the node adds /compressed itself.')
    local = f'{prefix}/' if prefix else ''
    camera_info_topic = camera_info_topic or sibling_topic(image_topic, 'camera_info')
    rules = [(f'{local}image', image_topic),
             (f'{local}image/compressed', f'{image_topic}/compressed'),
             (f'{local}camera_info', camera_info_topic)]
    if reference_topic:
        rules += [(f'{local}reference/depth', reference_topic),
                  (f'{local}reference/camera_info', sibling_topic(reference_topic, 'camera_info')),
                  (f'{local}reference/points', reference_topic)]
    return tuple((source, target) for source, target in rules if source != target)


def optical_tf_arguments(base_frame, optical_frame):
    """Return static_transform_publisher arguments for base_frame -> optical_frame."""
    if not base_frame or not optical_frame or base_frame == optical_frame:
        raise LaunchArgumentError(
            f'publish_optical_tf needs two different frames, got {base_frame!r} -> '
            f'{optical_frame!r}.')
    return ('--x', '0', '--y', '0', '--z', '0', '--roll', repr(OPTICAL_ROLL_RAD),
            '--pitch', '0', '--yaw', repr(OPTICAL_YAW_RAD),
            '--frame-id', base_frame, '--child-frame-id', optical_frame)


def merged_parameters(arguments, parsed, share_dir, node_name=NODE_NAME, namespace=''):
    """
    Return params_file, then preset, then the launch overrides merged into one flat dict.

    The merged result is validated with the node's own rules so that a bad combination (e.g.
    ``near_m >= far_m``) stops the launch with a clear message instead of a dead node.
    """
    params_file = parsed['params_file'] or os.path.join(share_dir, 'config', 'genpercept.yaml')
    parameters = load_parameter_file(params_file, node_name, namespace)
    if parsed['preset']:
        preset = os.path.join(share_dir, 'config', parsed['preset'] + '.yaml')
        parameters.update(load_parameter_file(preset, node_name, namespace))
    parameters.update(parameter_overrides(arguments, parsed))
    parameters['use_sim_time'] = parsed['use_sim_time']
    known = {name: value for name, value in parameters.items() if name in PARAMETER_SPECS}
    try:
        checked = validate_parameters(known)
    except ValueError as error:
        raise LaunchArgumentError(
            f'genpercept_node parameters (params_file, preset, launch arguments): {error}'
        ) from None
    # The checked values carry the declared types (a YAML `far_m: 8` becomes 8.0), which the
    # node's typed parameter declarations need.
    parameters.update({name: checked[name] for name in known})
    return parameters


def _node(parsed, parameters, namespace, remappings):
    lifecycle = parsed['lifecycle']
    return ProcessSpec(
        package=PACKAGE, executable=EXECUTABLE, name=NODE_NAME, namespace=namespace,
        parameters=parameters, remappings=remappings,
        arguments=('--lifecycle',) if lifecycle else (),
        ros_arguments=('--log-level', parsed['log_level']),
        lifecycle=lifecycle, autostart=lifecycle and parsed['autostart'])


def _helpers(parsed, share_dir, namespaces, frames):
    helpers = []
    sim_time = {'use_sim_time': parsed['use_sim_time']}
    if parsed['publish_optical_tf']:
        for index, (base_frame, optical_frame) in enumerate(frames):
            helpers.append(ProcessSpec(
                package='tf2_ros', executable='static_transform_publisher',
                name=f'genpercept_optical_tf_{index}', parameters=sim_time,
                arguments=optical_tf_arguments(base_frame, optical_frame)))
    if parsed['rviz']:
        template = parsed['rviz_config'] or os.path.join(share_dir, 'rviz', 'genpercept.rviz')
        config = write_rviz_config(template, namespaces, parsed['fixed_frame'])
        helpers.append(ProcessSpec(package='rviz2', executable='rviz2', name='rviz2',
                                   parameters=sim_time, arguments=('-d', config)))
    return tuple(helpers)


def plan_single_camera(values, share_dir):
    """
    Map the launch configuration of ``genpercept.launch.py`` onto the processes to start.

    :param values: launch argument name -> string (missing names take their defaults).
    :param share_dir: the installed ``share/genpercept_ros`` folder (configs, presets, rviz).
    :raises LaunchArgumentError: for any value the node or the launch file cannot use.
    """
    parsed = parse_arguments(SINGLE_CAMERA_ARGUMENTS, values)
    namespace = parsed['namespace'].strip('/')
    optical_frame = parsed['frame_id'] or parsed['optical_frame']
    if parsed['publish_optical_tf'] and not parsed['frame_id']:
        parsed['frame_id'] = optical_frame
    parameters = merged_parameters(SINGLE_CAMERA_ARGUMENTS, parsed, share_dir,
                                   namespace=namespace)
    remappings = input_remappings(parsed['image_topic'], parsed['camera_info_topic'],
                                  parsed['reference_topic'])
    node = _node(parsed, parameters, namespace, remappings)
    helpers = _helpers(parsed, share_dir, [namespace], [(parsed['base_frame'], optical_frame)])
    return LaunchPlan(nodes=(node,), helpers=helpers)


def plan_multi_camera(values, share_dir):
    """
    Map the launch configuration of ``genpercept_multi_camera.launch.py`` onto processes.

    ``single_process:=false`` starts one node per camera in ``/<camera>``; ``true`` starts one
    node in the root namespace with the ``cameras`` parameter, which batches the cameras' frames
    and serves ``<camera>/image`` -> ``<camera>/depth/image`` ... for each camera.

    :raises LaunchArgumentError: for any value the node or the launch file cannot use.
    """
    parsed = parse_arguments(MULTI_CAMERA_ARGUMENTS, values)
    cameras = parsed['cameras']
    single_process = parsed['single_process']
    if parsed['publish_optical_tf'] and (parsed['frame_id'] or single_process):
        raise LaunchArgumentError(
            'publish_optical_tf:=true gives each camera its own optical_frame, which needs one '
            'node per camera and no frame_id: use single_process:=false and leave frame_id '
            'unset, or publish the TF from the camera drivers.')
    frames = [(parsed['base_frame'].replace(CAMERA_PLACEHOLDER, camera),
               parsed['optical_frame'].replace(CAMERA_PLACEHOLDER, camera)) for camera in cameras]
    if single_process:
        parameters = merged_parameters(MULTI_CAMERA_ARGUMENTS, parsed, share_dir)
        parameters['cameras'] = list(cameras)
        remappings = sum((input_remappings(*_camera_topics(parsed, camera, relative_to_root=True),
                                           prefix=camera) for camera in cameras), ())
        nodes = (_node(parsed, parameters, '', remappings),)
    else:
        nodes = []
        for camera, (_, optical_frame) in zip(cameras, frames):
            camera_parsed = dict(parsed, frame_id=(
                optical_frame if parsed['publish_optical_tf'] else parsed['frame_id']))
            parameters = merged_parameters(MULTI_CAMERA_ARGUMENTS, camera_parsed, share_dir,
                                           namespace=camera)
            remappings = input_remappings(*_camera_topics(parsed, camera, relative_to_root=False))
            nodes.append(_node(parsed, parameters, camera, remappings))
        nodes = tuple(nodes)
    return LaunchPlan(nodes=nodes, helpers=_helpers(parsed, share_dir, cameras, frames))


def _camera_topics(parsed, camera, relative_to_root):
    """
    Return the (image, camera_info, reference) topics of one camera with ``{camera}`` expanded.

    Relative names mean "inside the camera namespace"; a node in the root namespace needs them
    prefixed with the camera name to point at the same topics.
    """
    topics = []
    for name in ('image_topic', 'camera_info_topic', 'reference_topic'):
        topic = parsed[name].replace(CAMERA_PLACEHOLDER, camera)
        if topic and relative_to_root and not topic.startswith('/'):
            topic = f'{camera}/{topic}'
        parse_value(LaunchArgument(name, '', '', kind='topic'), topic)
        topics.append(topic)
    return topics
