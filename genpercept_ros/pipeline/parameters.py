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
The node's parameters: names, defaults, ranges and descriptions, in one table.

The node declares its ROS parameters from :data:`PARAMETERS`, the offline tools take their
defaults from it and :func:`validate_parameters` checks a complete set of values (ranges,
choices and the rules that span several parameters). No rclpy here.
"""

from dataclasses import dataclass
import difflib
import math
import re
import textwrap

from ..model.registry import DEPTH_MODELS
from ..model.registry import NORMAL_MODELS


@dataclass(frozen=True)
class ParameterSpec:
    """
    One node parameter.

    The type follows ``default`` (bool, int, float, str or list of str). ``minimum`` and
    ``maximum`` bound numbers (inclusive unless ``strictly_positive``); ``choices`` lists the
    allowed strings and ``pattern`` (a regular expression, explained by ``pattern_help``) the
    allowed forms of a string; ``read_only`` parameters can only be set at startup. A string
    parameter with ``bool_words`` also takes the booleans true/false as the strings
    ``'true'``/``'false'`` (YAML and ``-p name:=true`` turn those words into booleans; the node
    declares it with dynamic typing).
    """

    name: str
    default: object
    description: str
    minimum: float = None
    maximum: float = None
    choices: tuple = ()
    read_only: bool = False
    strictly_positive: bool = False
    pattern: str = None
    pattern_help: str = ''
    bool_words: bool = False

    @property
    def kind(self):
        """Return the value type name: 'bool', 'int', 'float', 'str' or 'str_array'."""
        if isinstance(self.default, bool):
            return 'bool'
        if isinstance(self.default, int):
            return 'int'
        if isinstance(self.default, float):
            return 'float'
        if isinstance(self.default, str):
            return 'str'
        return 'str_array'

    def check(self, value):
        """Return ``value`` as this parameter's type; raise ValueError with the reason."""
        kind = self.kind
        if kind == 'bool':
            if not isinstance(value, bool):
                raise ValueError(f'`{self.name}` must be true or false, got {value!r}.')
            return value
        if kind in ('int', 'float'):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f'`{self.name}` must be a number, got {value!r}.')
            if kind == 'int' and float(value) != int(value):
                raise ValueError(f'`{self.name}` must be an integer, got {value!r}.')
            number = int(value) if kind == 'int' else float(value)
            if not math.isfinite(number):
                raise ValueError(f'`{self.name}` must be finite, got {value!r}.')
            if self.strictly_positive and number <= 0:
                raise ValueError(f'`{self.name}` must be > 0, got {value!r}.')
            if self.minimum is not None and number < self.minimum:
                raise ValueError(f'`{self.name}` must be >= {self.minimum}, got {value!r}.')
            if self.maximum is not None and number > self.maximum:
                raise ValueError(f'`{self.name}` must be <= {self.maximum}, got {value!r}.')
            return number
        if kind == 'str':
            if self.bool_words and isinstance(value, bool):
                value = 'true' if value else 'false'
            if not isinstance(value, str):
                raise ValueError(f'`{self.name}` must be a string, got {value!r}.')
            if self.choices and value not in self.choices:
                allowed = ', '.join(repr(choice) for choice in self.choices)
                raise ValueError(f'`{self.name}` must be one of {allowed}, got {value!r}.')
            if self.pattern and not re.fullmatch(self.pattern, value):
                raise ValueError(f'`{self.name}` must be {self.pattern_help}, got {value!r}.')
            return value
        if isinstance(value, str) or not all(isinstance(item, str) for item in value):
            raise ValueError(f'`{self.name}` must be a list of strings, got {value!r}.')
        return list(value)


_RELIABILITIES = ('best_effort', 'reliable')
# genpercept_ros.model.acceleration.ACCELERATIONS (not imported: that module needs torch).
ACCELERATIONS = ('auto', 'eager', 'compile', 'cuda_graphs', 'compile+cuda_graphs')
# genpercept_ros.model.registry.DECODERS.
DECODERS = ('vae', 'taesd')

PARAMETERS = (
    # Model (read at startup / lifecycle configure).
    ParameterSpec('model_root', '',
                  'Folder with the weights written by `genpercept download --model-root DIR`; '
                  "'' uses the Hugging Face cache.", read_only=True),
    ParameterSpec('depth_model', 'depth-v2',
                  "Depth model (README model table); '' disables depth (and metric depth, "
                  'clouds).',
                  choices=DEPTH_MODELS + ('',), read_only=True),
    ParameterSpec('normal_model', 'normal-v2',
                  "Normal model (README model table); '' disables normals.",
                  choices=NORMAL_MODELS + ('',), read_only=True),
    ParameterSpec('device', 'auto',
                  "'auto' (cuda when available, else cpu), 'cpu', 'cuda' or 'cuda:N'.",
                  read_only=True, pattern=r'auto|cpu|cuda|cuda:\d+',
                  pattern_help="'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ParameterSpec('dtype', 'auto', "'auto' (bf16 on cuda, fp32 on cpu), 'fp32', 'fp16', 'bf16'.",
                  choices=('auto', 'fp32', 'fp16', 'bf16'), read_only=True),
    ParameterSpec('acceleration', 'auto',
                  "'auto' (on cuda the fastest path that passes its check against eager, on "
                  "cpu eager), 'eager', 'compile', 'cuda_graphs' or 'compile+cuda_graphs'; a "
                  'fast path failing its check (or later) serves eager, with one warning.',
                  choices=ACCELERATIONS, read_only=True),
    ParameterSpec('decoder', 'vae',
                  "'vae' (the model's own SD VAE decoder) or 'taesd' (TAESD, diffusers "
                  'AutoencoderTiny from madebyollin/taesd: faster, less accurate); DPT-head '
                  'models ignore it.',
                  choices=DECODERS, read_only=True),
    ParameterSpec('allow_pickle', False,
                  'Allow loading pickle (.bin/.ckpt) checkpoints; only for weights you trust.',
                  read_only=True),
    # Inference.
    ParameterSpec('processing_resolution', 768,
                  'Longest image edge fed to the model, in pixels; 0 = native resolution.',
                  minimum=0, maximum=4096),
    ParameterSpec('output_resolution', 'input',
                  "'input': outputs at the camera resolution; 'processing': at the model's.",
                  choices=('input', 'processing')),
    # Input and frames.
    ParameterSpec('image_transport', 'raw',
                  "Input transport, as image_transport names it: 'raw' subscribes `image` "
                  "(Image); 'compressed' `image/compressed` (CompressedImage).",
                  choices=('raw', 'compressed'), read_only=True),
    ParameterSpec('frame_id', '', "Output frame_id; '' keeps the input image's frame_id."),
    ParameterSpec('input_rectified', 'auto',
                  "Is the image rectified? 'auto': yes exactly when every camera_info D "
                  "coefficient is 0 (then P is used, as image_geometry does); 'true': rectified, "
                  "use P and ignore D (image_rect); 'false': raw, use K and D (image_raw: clouds "
                  'follow the undistorted rays).', choices=('auto', 'true', 'false'),
                  bool_words=True),
    ParameterSpec('cameras', [],
                  'Camera namespaces served by this node, e.g. [front, left] -> front/image, '
                  'front/depth/image, ...; [] = one camera on relative topics.', read_only=True),
    ParameterSpec('max_input_pixels', 1 << 24,
                  'Frames with more pixels (width x height) than this are refused before '
                  'decoding, with an error (16.7 Mpx = 4096 x 4096 by default).',
                  minimum=64, maximum=1 << 30),
    ParameterSpec('batch_window_ms', 10.0,
                  'Frames of different cameras arriving within this window are batched.',
                  minimum=0.0, maximum=1000.0),
    # Metric scale.
    ParameterSpec('scale_mode', 'range',
                  "'range': map relative output onto [near_m, far_m] (assumed scale); "
                  "'fixed': depth_scale/depth_shift; 'reference': fit to a metric reference; "
                  "'ground': fit to the floor seen from camera_height_m (needs normal_model).",
                  choices=('range', 'fixed', 'reference', 'ground')),
    ParameterSpec('near_m', 0.5, 'Nearest depth of the range mapping, metres.',
                  maximum=10000.0, strictly_positive=True),
    ParameterSpec('far_m', 10.0, 'Farthest depth of the range mapping, metres.',
                  maximum=10000.0, strictly_positive=True),
    ParameterSpec('depth_scale', 1.0,
                  "'fixed' mode scale: depth = s r + t (disparity variants: 1/depth = s r + t).",
                  maximum=1.0e6, strictly_positive=True),
    ParameterSpec('depth_shift', 0.0, "'fixed' mode shift t (metres, or 1/m for disparity).",
                  minimum=-1.0e6, maximum=1.0e6),
    ParameterSpec('reference_type', 'depth',
                  "'reference' mode input: 'depth' (reference/depth Image, 32FC1 m or 16UC1 mm, "
                  "with reference/camera_info) or 'points' (reference/points PointCloud2 in the "
                  'camera optical frame).', choices=('depth', 'points'), read_only=True),
    ParameterSpec('reference_time_tolerance_s', 0.05,
                  'Largest stamp difference between an image and the reference paired with it.',
                  minimum=0.0, maximum=10.0),
    ParameterSpec('fit_min_points', 50, 'Fewest reference points for a scale fit.',
                  minimum=3, maximum=10000000),
    ParameterSpec('fit_min_inlier_ratio', 0.5, 'Fits with a lower inlier ratio are rejected.',
                  minimum=0.0, maximum=1.0),
    ParameterSpec('scale_smoothing', 0.0,
                  'Weight of the previous metric depth (re-fitted to the new frame) against '
                  "this frame's own fit, and of the previous floor up vector: 0 = every frame "
                  'on its own; towards 1 = smoother, lagging a moving camera by about '
                  's / (1 - s) frames.', minimum=0.0, maximum=0.99),
    ParameterSpec('hold_last_fit_s', 5.0,
                  'Frames without a usable fit re-fit their relative map to the last good '
                  'metric depth (and reuse the last floor up vector) for this long, then fall '
                  'back to range.', minimum=0.0, maximum=3600.0),
    # Floor ('ground' mode, and floor outputs in 'fixed'/'reference').
    ParameterSpec('camera_height_m', 0.0,
                  "Height of the camera's optical centre above the floor, metres; required by "
                  "'ground', enables ground/mask and points_obstacles in 'fixed'/'reference'; "
                  '0 = unknown.', minimum=0.0, maximum=100.0),
    ParameterSpec('ground_orientation', 'auto',
                  "Floor orientation in the optical frame: 'auto' = TF when tf2_ros is "
                  'available and the transform exists, else camera_pitch_deg/camera_roll_deg '
                  "when either is non-zero, else estimated from the normals; 'tf', "
                  "'parameters' or 'normals' force one source.",
                  choices=('auto', 'tf', 'parameters', 'normals')),
    ParameterSpec('base_frame', 'base_footprint',
                  'TF frame whose z axis points up (REP 105 base_footprint/base_link); the '
                  "floor orientation is the transform from it to the image's frame_id."),
    ParameterSpec('camera_pitch_deg', 0.0,
                  'Camera pitch, degrees; > 0 looks down towards the floor.',
                  minimum=-90.0, maximum=90.0),
    ParameterSpec('camera_roll_deg', 0.0,
                  'Camera roll about its optical axis, degrees; > 0 = turned clockwise seen '
                  'from behind (right side down; the horizon rises to the right of the image).',
                  minimum=-180.0, maximum=180.0),
    ParameterSpec('ground_normal_tolerance_deg', 10.0,
                  'Floor pixels: predicted normal within this angle of up.',
                  minimum=1.0, maximum=45.0),
    # Depth and cloud filters.
    ParameterSpec('min_range_m', 0.0, 'Metric depth below this is NaN; 0 = off.',
                  minimum=0.0, maximum=10000.0),
    ParameterSpec('max_range_m', 0.0, 'Metric depth above this is NaN; 0 = off.',
                  minimum=0.0, maximum=10000.0),
    ParameterSpec('flying_pixel_threshold', 0.0,
                  'NaN pixels whose depth jumps by more than this fraction of their depth to a '
                  'neighbour (depth discontinuities); 0 = off.', minimum=0.0, maximum=10.0),
    ParameterSpec('far_saturation_nan', False,
                  'NaN pixels where the relative output is saturated at its far end (sky).'),
    ParameterSpec('cloud_decimation', 1, 'Keep every N-th row and column in `points`.',
                  minimum=1, maximum=64),
    ParameterSpec('cloud_color', True, 'Add the packed `rgb` field to `points`.'),
    ParameterSpec('cloud_normals', True,
                  'Add normal_x/normal_y/normal_z (model normals) to `points`.'),
    ParameterSpec('voxel_size', 0.0,
                  'Voxel edge in metres for the extra unorganized `points_voxel`; 0 = off.',
                  minimum=0.0, maximum=100.0),
    ParameterSpec('min_confidence', 0.0,
                  'Drop points whose depth/confidence is below this from points and '
                  'points_obstacles; 0 = keep all.', minimum=0.0, maximum=1.0),
    ParameterSpec('depth_normals_check', False,
                  'Compare model normals with normals from the metric depth (diagnostics).'),
    # QoS and diagnostics.
    ParameterSpec('input_reliability', 'best_effort', 'Input subscriptions reliability.',
                  choices=_RELIABILITIES, read_only=True),
    ParameterSpec('input_qos_depth', 1,
                  'Input subscriptions QoS history depth (keep-last queue size, messages).',
                  minimum=1, maximum=100, read_only=True),
    ParameterSpec('output_reliability', 'reliable', 'Output publishers reliability.',
                  choices=_RELIABILITIES, read_only=True),
    ParameterSpec('output_qos_depth', 1,
                  'Output publishers QoS history depth (keep-last queue size, messages).',
                  minimum=1, maximum=100, read_only=True),
    ParameterSpec('diagnostics_period_s', 1.0, 'Period of /diagnostics messages, seconds.',
                  minimum=0.1, maximum=60.0, read_only=True),
)

PARAMETER_SPECS = {spec.name: spec for spec in PARAMETERS}
DEFAULTS = {spec.name: spec.default for spec in PARAMETERS}

# Old name -> new name. The old names still work for one release, with a deprecation warning:
# `image_transport` is image_transport's own name for it; the QoS history sizes were
# `input_depth`/`output_depth`, which read like depth images.
DEPRECATED_NAMES = {
    'input_transport': 'image_transport',
    'input_depth': 'input_qos_depth',
    'output_depth': 'output_qos_depth',
}

_CAMERA_PATTERN = re.compile(r'^[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$')


def validate_parameters(values):
    """
    Return a complete, type-checked copy of ``values`` (defaults filled in).

    Raises ``ValueError`` naming the parameter and the reason, for out-of-range values, unknown
    choices, unknown names and inconsistent combinations (e.g. ``near_m >= far_m``).
    """
    unknown = sorted(set(values) - set(PARAMETER_SPECS))
    if unknown:
        raise ValueError(f'Unknown parameter(s): {", ".join(unknown_names(unknown))}.')
    checked = {name: spec.check(values.get(name, spec.default))
               for name, spec in PARAMETER_SPECS.items()}
    if not checked['depth_model'] and not checked['normal_model']:
        raise ValueError('`depth_model` and `normal_model` are both empty: nothing to run.')
    if checked['scale_mode'] == 'ground':
        if not checked['camera_height_m'] > 0:
            raise ValueError("`camera_height_m` must be > 0 with scale_mode 'ground' (the height "
                             "of the camera's optical centre above the floor, metres).")
        if not checked['normal_model']:
            raise ValueError("scale_mode 'ground' finds the floor with the predicted normals: "
                             "set `normal_model` (e.g. 'normal-v2'), it is empty.")
        if not checked['depth_model']:
            raise ValueError("scale_mode 'ground' scales the depth prediction: set "
                             '`depth_model`, it is empty.')
    if checked['near_m'] >= checked['far_m']:
        raise ValueError(
            f"`near_m` ({checked['near_m']}) must be smaller than `far_m` ({checked['far_m']}).")
    low, high = checked['min_range_m'], checked['max_range_m']
    if low > 0 and high > 0 and low >= high:
        raise ValueError(f'`min_range_m` ({low}) must be smaller than `max_range_m` ({high}).')
    cameras = checked['cameras']
    for camera in cameras:
        if not _CAMERA_PATTERN.match(camera):
            raise ValueError(
                f'`cameras` entry {camera!r} is not a valid relative namespace '
                '(letters, digits, _ and /, starting with a letter).')
    if len(set(cameras)) != len(cameras):
        raise ValueError(f'`cameras` lists a namespace twice: {cameras}.')
    return checked


def closest_parameter(name):
    """
    Return the known parameter name closest to ``name``.

    Old names map to their new name; otherwise the name with the highest
    :class:`difflib.SequenceMatcher` ratio among the current names (always one).
    """
    if name in DEPRECATED_NAMES:
        return DEPRECATED_NAMES[name]
    return difflib.get_close_matches(name, list(PARAMETER_SPECS), n=1, cutoff=0.0)[0]


def unknown_names(names):
    """Return each of ``names`` as ``'name (closest known parameter: `known`)'``."""
    return [f'{name} (closest known parameter: `{closest_parameter(name)}`)' for name in names]


def rename_deprecated(values):
    """
    Return ``(values with new names, warnings)`` for a dict that may use deprecated names.

    An old name given together with its new name is dropped (the new name wins); each old name
    gives one warning naming its replacement.
    """
    renamed = dict(values)
    warnings = []
    for old, new in DEPRECATED_NAMES.items():
        if old not in renamed:
            continue
        value = renamed.pop(old)
        if new in renamed:
            warnings.append(f'parameter `{old}` is deprecated and ignored because `{new}` is '
                            f'also set; use `{new}` only.')
        else:
            renamed[new] = value
            warnings.append(f'parameter `{old}` is deprecated; use `{new}` (same meaning).')
    return renamed, warnings


def describe_parameters():
    """
    Return the parameter summary of ``genpercept_node --help``: one block per parameter.

    Each block gives the name, type, default, the range or choices, whether it is read-only
    (startup only) and the description.
    """
    lines = []
    for spec in PARAMETERS:
        limits = []
        if spec.choices:
            limits.append('one of ' + ', '.join(repr(choice) for choice in spec.choices))
        low = spec.minimum
        if spec.strictly_positive:
            limits.append('> 0' if low is None else f'> {low}')
        elif low is not None:
            limits.append(f'>= {low}')
        if spec.maximum is not None:
            limits.append(f'<= {spec.maximum}')
        if spec.read_only:
            limits.append('startup only')
        default = repr(spec.default) if isinstance(spec.default, str) else str(spec.default)
        if isinstance(spec.default, bool):
            default = 'true' if spec.default else 'false'
        extra = f'; {", ".join(limits)}' if limits else ''
        lines.append(f'  {spec.name} ({spec.kind}, default {default}{extra})')
        lines.append(textwrap.fill(spec.description, 99, initial_indent=' ' * 6,
                                   subsequent_indent=' ' * 6))
    for old, new in DEPRECATED_NAMES.items():
        lines.append(f'  {old}: deprecated name of {new}')
    return '\n'.join(lines)
