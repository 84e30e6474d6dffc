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
The launch arguments of the genpercept launch files: names, defaults, descriptions, targets.

Arguments that set a node parameter default to ``''``, which keeps the value from
``params_file``; their type and allowed values come from the node's own parameter table.
"""

from dataclasses import dataclass
import math

from ..pipeline.parameters import PARAMETER_SPECS

PACKAGE = 'genpercept_ros'
EXECUTABLE = 'genpercept_node'
NODE_NAME = 'genpercept_node'
PRESETS = ('indoor', 'outdoor', 'low_latency')
LOG_LEVELS = ('debug', 'info', 'warn', 'error', 'fatal')
# Launch value that disables a task; '' already means "keep the params_file value".
DISABLED_MODEL = 'none'
# Replaced by each camera name in the multi-camera topic and frame arguments.
CAMERA_PLACEHOLDER = '{camera}'
# realsense2_camera / REP 103: camera body frame -> optical frame is roll -90 deg, yaw -90 deg.
OPTICAL_ROLL_RAD = -math.pi / 2
OPTICAL_YAW_RAD = -math.pi / 2


@dataclass(frozen=True)
class LaunchArgument:
    """
    One launch argument: its name, default, description and what it drives.

    ``parameter`` names the node parameter it sets (``None`` for launch-only arguments such as
    ``rviz``); ``kind`` is one of ``'str'``, ``'bool'``, ``'int'``, ``'float'``, ``'topic'``,
    ``'namespace'``, ``'frame'``, ``'path'`` or ``'list'``. ``camera_template`` arguments may
    contain ``{camera}``, replaced by each camera name.
    """

    name: str
    default: str
    description: str
    kind: str = 'str'
    choices: tuple = ()
    parameter: str = None
    camera_template: bool = False


def _param(name, description, choices=(), kind=None, parameter=None):
    """Describe an argument that overrides node parameter ``parameter`` (default: ``name``)."""
    target = parameter or name
    spec = PARAMETER_SPECS[target]
    default_text = _format_default(spec.default)
    return LaunchArgument(
        name=name, default='', kind=kind or spec.kind,
        description=f'{description} Unset keeps the params_file value (shipped: {default_text}).',
        choices=('',) + tuple(choices) if choices else (), parameter=target)


def _format_default(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return repr(value) if isinstance(value, str) else str(value)


def _variants(parameter):
    return tuple(name for name in PARAMETER_SPECS[parameter].choices if name) + (DISABLED_MODEL,)


_MODEL_ARGUMENTS = (
    _param('model_root', 'Folder written by `genpercept download --model-root DIR`; the '
           'Hugging Face cache when unset.', kind='path'),
    _param('depth_model',
           f"Depth model (README model table), or '{DISABLED_MODEL}' to disable depth.",
           choices=_variants('depth_model')),
    _param('normal_model',
           f"Normal model (README model table), or '{DISABLED_MODEL}' to disable normals.",
           choices=_variants('normal_model')),
    _param('device', "Torch device: 'auto', 'cpu', 'cuda' or 'cuda:N'."),
    _param('dtype', 'Inference precision.', choices=PARAMETER_SPECS['dtype'].choices),
    _param('acceleration', 'Fast path: auto, eager, compile, cuda_graphs, compile+cuda_graphs '
           '(each checked against eager; eager on failure).',
           choices=PARAMETER_SPECS['acceleration'].choices),
    _param('decoder', "Decoder: 'vae' (the model's own) or 'taesd' (fast, less accurate; "
           'DPT-head models ignore it).', choices=PARAMETER_SPECS['decoder'].choices),
    _param('processing_resolution', 'Longest edge fed to the model in pixels (0 = native); '
           'lower is faster.'),
    _param('output_resolution', "Publish at the camera ('input') or model resolution.",
           choices=PARAMETER_SPECS['output_resolution'].choices),
    # The deprecated name comes first so that image_transport wins when both are given.
    _param('input_transport', 'Deprecated name of image_transport (removed in the next '
           'release).', choices=PARAMETER_SPECS['image_transport'].choices,
           parameter='image_transport'),
    _param('image_transport', "Input transport: 'compressed' subscribes "
           '<image_topic>/compressed.', choices=PARAMETER_SPECS['image_transport'].choices),
    _param('frame_id', 'frame_id stamped on the outputs (the camera optical frame); unset '
           'keeps the input image frame_id.', kind='frame'),
    _param('input_rectified', "Is image_topic rectified? 'auto': when camera_info D is all 0; "
           "'true': image_rect (use P); 'false': image_raw (use K and D).",
           choices=PARAMETER_SPECS['input_rectified'].choices),
    _param('scale_mode', "Metric depth: 'range' maps onto [near_m, far_m], 'fixed' uses "
           "depth_scale/depth_shift, 'reference' fits to a metric reference topic, 'ground' "
           'fits to the floor seen from camera_height_m.',
           choices=PARAMETER_SPECS['scale_mode'].choices),
    _param('near_m', "Nearest depth of scale_mode 'range', metres."),
    _param('far_m', "Farthest depth of scale_mode 'range', metres."),
    _param('depth_scale', "Scale s of scale_mode 'fixed' (depth = s r + t)."),
    _param('depth_shift', "Shift t of scale_mode 'fixed'."),
    _param('reference_type', "Reference of scale_mode 'reference': a depth Image or a "
           'PointCloud2.', choices=PARAMETER_SPECS['reference_type'].choices),
    _param('camera_height_m', 'Camera optical centre above the floor, metres (scale_mode '
           "'ground')."),
    _param('ground_orientation', "Floor orientation source: 'auto' (TF, then pitch/roll, then "
           "normals), 'tf', 'parameters' or 'normals'.",
           choices=PARAMETER_SPECS['ground_orientation'].choices),
    _param('camera_pitch_deg', 'Camera pitch in degrees, > 0 looks down (floor orientation '
           'without TF).'),
    _param('camera_roll_deg', 'Camera roll about the optical axis in degrees, > 0 = right side '
           'down.'),
    _param('cloud_decimation', 'Keep every N-th row and column of `points`.'),
)

_COMMON_ARGUMENTS = (
    LaunchArgument('params_file', '', 'Node parameter YAML (a `genpercept_node: ros__parameters:` '
                   'section); empty = share/genpercept_ros/config/genpercept.yaml.', kind='path'),
    LaunchArgument('preset', '', 'Parameter preset merged over params_file: '
                   'config/<preset>.yaml.', choices=('',) + PRESETS),
) + _MODEL_ARGUMENTS + (
    LaunchArgument('use_sim_time', 'false', 'Use /clock (set true when playing a bag with '
                   '`ros2 bag play --clock`).', kind='bool'),
    LaunchArgument('log_level', 'info', 'Log level of the genpercept node.',
                   choices=LOG_LEVELS),
    LaunchArgument('lifecycle', 'false', 'Run the node as a lifecycle node (configure loads the '
                   'model, activate subscribes).', kind='bool'),
    LaunchArgument('autostart', 'true', 'With lifecycle:=true, configure and activate at once; '
                   'false leaves the node unconfigured for a lifecycle manager.', kind='bool'),
    LaunchArgument('rviz', 'false', 'Start rviz2 with depth, normals and the point cloud.',
                   kind='bool'),
    LaunchArgument('rviz_config', '', 'rviz2 config; empty = share/genpercept_ros/rviz/'
                   'genpercept.rviz (its /camera/ topics are moved to the namespace(s)).',
                   kind='path'),
    LaunchArgument('publish_optical_tf', 'false', 'Publish a static TF base_frame -> '
                   'optical_frame (roll -90 deg, yaw -90 deg) for cameras without one, and '
                   'stamp the outputs with optical_frame unless frame_id is set.', kind='bool'),
)

SINGLE_CAMERA_ARGUMENTS = (
    LaunchArgument('namespace', 'camera', 'Namespace of the node and of its topics '
                   '(<namespace>/image in, <namespace>/depth/image ... out); empty = root.',
                   kind='namespace'),
    LaunchArgument('image_topic', 'image', 'Input image base topic (raw Image; the node adds '
                   '/compressed itself). Relative names resolve in the namespace. RealSense: '
                   '/camera/camera/color/image_raw, usb_cam/v4l2_camera: /image_raw.',
                   kind='topic'),
    LaunchArgument('camera_info_topic', '', 'CameraInfo topic; empty = the camera_info sibling '
                   'of image_topic (as image_transport resolves it).', kind='topic'),
    LaunchArgument('reference_topic', '', "Metric reference for scale_mode 'reference': a "
                   'depth Image (its camera_info sibling is used too) or, with '
                   'reference_type:=points, a PointCloud2; empty = <namespace>/reference/depth '
                   '(or reference/points).', kind='topic'),
    LaunchArgument('fixed_frame', 'camera_link', 'rviz2 Fixed Frame: a frame in your TF tree, or '
                   'the image frame_id when there is no TF.', kind='frame'),
    LaunchArgument('base_frame', 'camera_link', 'Parent frame of publish_optical_tf.',
                   kind='frame'),
    LaunchArgument('optical_frame', 'camera_optical_frame', 'Child frame of '
                   'publish_optical_tf.', kind='frame'),
) + _COMMON_ARGUMENTS

MULTI_CAMERA_ARGUMENTS = (
    LaunchArgument('cameras', 'front,left', 'Comma-separated camera namespaces; each camera '
                   'gets <camera>/image in and <camera>/depth/image ... out.', kind='list'),
    LaunchArgument('single_process', 'false', 'true: one node serves every camera and batches '
                   'their frames through the model together; false: one node per camera.',
                   kind='bool'),
    _param('batch_window_ms', 'single_process: frames arriving within this window are batched.'),
    LaunchArgument('image_topic', 'image', "Input image base topic per camera; '{camera}' is "
                   'replaced by the camera name, relative names resolve in <camera>/.',
                   kind='topic', camera_template=True),
    LaunchArgument('camera_info_topic', '', "CameraInfo topic per camera ('{camera}' allowed); "
                   'empty = the camera_info sibling of image_topic.', kind='topic',
                   camera_template=True),
    LaunchArgument('reference_topic', '', "Metric reference per camera for scale_mode 'reference' "
                   "('{camera}' allowed); empty = <camera>/reference/depth (or "
                   'reference/points).', kind='topic', camera_template=True),
    LaunchArgument('fixed_frame', 'base_link', 'rviz2 Fixed Frame, common to all cameras.',
                   kind='frame'),
    LaunchArgument('base_frame', '{camera}_link', 'Parent frame of publish_optical_tf '
                   "('{camera}' is replaced).", kind='frame', camera_template=True),
    LaunchArgument('optical_frame', '{camera}_optical_frame', 'Child frame of '
                   "publish_optical_tf ('{camera}' is replaced).", kind='frame',
                   camera_template=True),
) + _COMMON_ARGUMENTS
