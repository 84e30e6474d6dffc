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
From camera frames to the node's output messages, without rclpy.

:class:`FramePipeline` runs the predictor on a batch of frames and turns each prediction into
the messages the node publishes (relative depth, metric depth and its camera_info, colourised
depth, normals, organized and voxel clouds, the scale in use). ``genpercept_node`` and the
offline ``genpercept bag`` tool both call it, so their outputs are identical.

Usage::

    settings = PipelineSettings.from_parameters({'scale_mode': 'range', 'far_m': 8.0})
    pipeline = FramePipeline(predictor, settings)
    frame = Frame(rgb=decode_image(image_msg), header=image_msg.header, camera_info=info_msg)
    [result] = pipeline.process([frame])
    for topic, message in result.outputs.items():
        ...

Only the topics in ``Frame.wanted`` are computed (None = all). A frame whose camera_info is
missing or uncalibrated still gets its depth images, but no depth/camera_info and no clouds;
each such problem is reported in ``FrameResult.problems`` as ``(kind, message)``.

Frames the model cannot take are refused before the predictor runs, with a message naming the
sizes (:class:`FrameSizeError`, problem kind ``input_size``): more than ``max_input_pixels``
pixels (checked on the message header, before decoding) or a side that falls below
:data:`MIN_PROCESSING_SIDE` pixels at ``processing_resolution`` (extreme aspect ratios).
"""

from dataclasses import dataclass
from dataclasses import field
import threading

import numpy as np
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import CompressedImage
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from .outputs import build_messages
from .outputs import output_topics
from .outputs import topics_needing
from .parameters import DEFAULTS
from .parameters import validate_parameters
from .scale import CameraScaleState
from .scale import ScaleReport
from ..messages.errors import CodecError
from ..messages.image import compressed_to_rgb
from ..messages.image import image_to_rgb
from ..model.sizes import MIN_PROCESSING_SIDE
from ..model.sizes import scaled_size


INPUT_SIZE_PROBLEM = 'input_size'


class FrameSizeError(CodecError):
    """A frame too large (``max_input_pixels``) or too thin for the model; names the sizes."""


@dataclass(frozen=True)
class PipelineSettings:
    """
    Everything that shapes the outputs of one frame; see ``config/genpercept.yaml``.

    Build it with :meth:`from_parameters`, which validates ranges and combinations and raises
    ``ValueError`` with the reason.
    """

    processing_resolution: int = DEFAULTS['processing_resolution']
    max_input_pixels: int = DEFAULTS['max_input_pixels']
    output_resolution: str = DEFAULTS['output_resolution']
    frame_id: str = DEFAULTS['frame_id']
    input_rectified: str = DEFAULTS['input_rectified']
    scale_mode: str = DEFAULTS['scale_mode']
    near_m: float = DEFAULTS['near_m']
    far_m: float = DEFAULTS['far_m']
    depth_scale: float = DEFAULTS['depth_scale']
    depth_shift: float = DEFAULTS['depth_shift']
    reference_time_tolerance_s: float = DEFAULTS['reference_time_tolerance_s']
    fit_min_points: int = DEFAULTS['fit_min_points']
    fit_min_inlier_ratio: float = DEFAULTS['fit_min_inlier_ratio']
    scale_smoothing: float = DEFAULTS['scale_smoothing']
    hold_last_fit_s: float = DEFAULTS['hold_last_fit_s']
    camera_height_m: float = DEFAULTS['camera_height_m']
    ground_orientation: str = DEFAULTS['ground_orientation']
    base_frame: str = DEFAULTS['base_frame']
    camera_pitch_deg: float = DEFAULTS['camera_pitch_deg']
    camera_roll_deg: float = DEFAULTS['camera_roll_deg']
    ground_normal_tolerance_deg: float = DEFAULTS['ground_normal_tolerance_deg']
    min_confidence: float = DEFAULTS['min_confidence']
    min_range_m: float = DEFAULTS['min_range_m']
    max_range_m: float = DEFAULTS['max_range_m']
    flying_pixel_threshold: float = DEFAULTS['flying_pixel_threshold']
    far_saturation_nan: bool = DEFAULTS['far_saturation_nan']
    cloud_decimation: int = DEFAULTS['cloud_decimation']
    cloud_color: bool = DEFAULTS['cloud_color']
    cloud_normals: bool = DEFAULTS['cloud_normals']
    voxel_size: float = DEFAULTS['voxel_size']
    depth_normals_check: bool = DEFAULTS['depth_normals_check']

    @classmethod
    def from_parameters(cls, values):
        """
        Build settings from a node-parameter dict (missing names take their defaults).

        Node-only parameters (model, QoS, cameras...) are validated too and then ignored.
        """
        checked = validate_parameters(dict(values))
        return cls(**{name: checked[name] for name in cls.__dataclass_fields__})

    def __post_init__(self):
        """Validate ranges and combinations (``ValueError`` names the parameter)."""
        validate_parameters(
            {name: getattr(self, name) for name in self.__dataclass_fields__})


@dataclass
class Frame:
    """
    One camera frame to process.

    ``rgb`` is HxWx3 uint8; ``header`` the input image header (copied onto every output);
    ``camera_info`` the latest CameraInfo of this camera or None; ``camera`` the camera name
    (keys the per-camera scale state); ``wanted`` the output topics to compute (None = all).
    """

    rgb: np.ndarray
    header: Header
    camera_info: CameraInfo = None
    camera: str = ''
    wanted: frozenset = None


@dataclass
class FrameResult:
    """
    Outputs of one frame: ``outputs`` maps relative topic names to messages.

    ``problems`` lists ``(kind, message)`` for everything that kept an output from being
    produced (e.g. ``('camera_info', 'no camera_info received: no cloud')``).
    """

    camera: str
    outputs: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    scale: ScaleReport = None
    normals_agreement_deg: float = None


def decode_image(msg, max_pixels=None):
    """
    Return HxWx3 uint8 RGB from an Image or CompressedImage (``CodecError`` when invalid).

    With ``max_pixels`` an Image declaring more pixels raises :class:`FrameSizeError` before
    any conversion, and a compressed stream whose header declares more is refused before
    decoding (``CodecError`` naming the limit).
    """
    if isinstance(msg, CompressedImage):
        if max_pixels is None:
            return compressed_to_rgb(msg)
        return compressed_to_rgb(msg, max_pixels=int(max_pixels))
    if isinstance(msg, Image):
        if max_pixels is not None:
            check_pixel_count(int(msg.width), int(msg.height), max_pixels)
        return image_to_rgb(msg)
    raise TypeError(f'expected sensor_msgs Image or CompressedImage, got {type(msg).__name__}')


def check_pixel_count(width, height, max_pixels):
    """Raise :class:`FrameSizeError` when ``width x height`` exceeds ``max_pixels``."""
    if width * height > max_pixels:
        raise FrameSizeError(
            f'image is {width}x{height} = {width * height / 1e6:.3g} Mpx, more than '
            f'max_input_pixels = {max_pixels} ({max_pixels / 1e6:.3g} Mpx); refused before '
            'decoding (lower the camera resolution or raise max_input_pixels)')


def check_frame_size(width, height, settings):
    """
    Raise :class:`FrameSizeError` when the model cannot take a ``width`` x ``height`` frame.

    The size at ``processing_resolution`` follows the model's rule (longest edge scaled to it,
    sides truncated: :func:`genpercept_ros.model.sizes.scaled_size`); each side must keep
    :data:`MIN_PROCESSING_SIDE` pixels.
    """
    if width <= 0 or height <= 0:
        raise FrameSizeError(f'zero-sized image ({width}x{height})')
    check_pixel_count(width, height, settings.max_input_pixels)
    resolution = settings.processing_resolution
    new_height, new_width = scaled_size(height, width, resolution)
    if min(new_width, new_height) < MIN_PROCESSING_SIDE:
        ratio = max(width, height) / min(width, height)
        raise FrameSizeError(
            f'image is {width}x{height} (aspect ratio {ratio:.4g}:1) and becomes '
            f'{new_width}x{new_height} at processing_resolution {resolution}; the model needs '
            f'at least {MIN_PROCESSING_SIDE} px per side there: frame refused (crop the image '
            'or raise processing_resolution)')


class FramePipeline:
    """
    Run the predictor on frames and build every wanted output message.

    Thread-safe: :meth:`add_reference` may be called from other threads while :meth:`process`
    runs. Per-camera state (metric references, scale tracking) lives here, so one pipeline
    serves several cameras.

    ``up_lookup`` is the node's TF lookup for the floor orientation, or None without TF: a
    callable ``(target_frame, source_frame, stamp) -> 3x3 rotation`` (float, taking source-frame
    vectors into the target frame; ``stamp`` a builtin_interfaces/Time) that raises
    ``LookupError`` with the reason when the transform is unavailable.
    """

    def __init__(self, predictor, settings=None, up_lookup=None):
        self.predictor = predictor
        self._settings = settings if settings is not None else PipelineSettings()
        self._lock = threading.Lock()
        self._cameras = {}
        self.up_lookup = up_lookup

    @property
    def settings(self):
        """Return the current :class:`PipelineSettings`."""
        return self._settings

    @settings.setter
    def settings(self, settings):
        with self._lock:
            self._settings = settings
            for state in self._cameras.values():
                state.configure(settings)

    @property
    def depth_kind(self):
        """Return 'relative_depth', 'relative_disparity' or None (no depth model)."""
        variant = self.predictor.depth_spec
        return None if variant is None else variant.output_kind

    @property
    def has_normals(self):
        """Return whether the predictor produces normals."""
        return self.predictor.normal_spec is not None

    def output_topics(self):
        """Return the relative topic names this predictor can produce, in publishing order."""
        return output_topics(self.depth_kind, self.has_normals)

    def add_reference(self, msg, camera='', camera_info=None):
        """
        Store a metric reference (depth Image or PointCloud2) for pairing by timestamp.

        ``camera_info`` describes a depth reference's own pinhole model (None: it covers the
        same view as the camera image). Messages stamped far earlier than the buffered ones
        (bag loop) restart the buffer.
        """
        with self._lock:
            self._camera_state(camera).add_reference(msg, camera_info)

    def scale_status(self, camera=''):
        """Return the last :class:`ScaleReport` of ``camera`` or None."""
        with self._lock:
            state = self._cameras.get(camera)
            return None if state is None else state.last_report

    def process(self, frames):
        """
        Predict all ``frames`` in one batch and return a :class:`FrameResult` per frame.

        Raises what the predictor raises (e.g. out of memory); per-frame problems with
        camera_info or references never raise but are listed in the results. Frames the model
        cannot take (:func:`check_frame_size`) get no outputs and an ``input_size`` problem,
        without disturbing the other frames of the batch.
        """
        frames = list(frames)
        if not frames:
            return []
        settings = self._settings
        results = [FrameResult(camera=frame.camera) for frame in frames]
        accepted = []
        for frame, result in zip(frames, results):
            try:
                check_frame_size(frame.rgb.shape[1], frame.rgb.shape[0], settings)
            except FrameSizeError as error:
                result.problems.append((INPUT_SIZE_PROBLEM, str(error)))
                continue
            accepted.append((frame, result))
        if accepted:
            self._process_checked([frame for frame, _ in accepted],
                                  [result for _, result in accepted], settings)
        return results

    def _process_checked(self, frames, results, settings):
        all_topics = self.output_topics()
        wanted = [all_topics if frame.wanted is None
                  else tuple(topic for topic in all_topics if topic in frame.wanted)
                  for frame in frames]
        tasks = topics_needing(set().union(*wanted), self.depth_kind, self.has_normals,
                               settings)
        if not tasks:
            return
        prediction = self.predictor.predict(
            [frame.rgb for frame in frames],
            processing_resolution=settings.processing_resolution,
            output_resolution=settings.output_resolution,
            tasks=tasks)
        for index, (frame, result) in enumerate(zip(frames, results)):
            with self._lock:
                state = self._camera_state(frame.camera)
            build_messages(
                frame, result, wanted[index], settings, state,
                relative=None if prediction.depth is None else prediction.depth[index],
                depth_kind=prediction.depth_kind,
                normals=None if prediction.normals is None else prediction.normals[index],
                up_lookup=self.up_lookup)

    def _camera_state(self, camera):
        state = self._cameras.get(camera)
        if state is None:
            state = CameraScaleState(self._settings)
            self._cameras[camera] = state
        return state
