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
sensor_msgs/CameraInfo <-> Intrinsics / CameraModel, with binning, ROI and resizing as ROS does.

:func:`resolve_camera_model` decides whether an image is raw or rectified (``input_rectified``,
as image_geometry understands it), folds binning and ROI in and rescales to the image size;
:func:`camera_model_to_camera_info` writes the CameraInfo of a published image from its model.
"""

from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CameraInfo

from .errors import CodecError
from ..geometry.camera_model import CameraModel
from ..geometry.intrinsics import Intrinsics

INPUT_RECTIFIED_CHOICES = ('auto', 'true', 'false')


@dataclass(frozen=True)
class ResolvedCameraInfo:
    """
    Intrinsics for one image, and how they were derived from a CameraInfo.

    ``matrix`` is ``'P'`` (rectified) or ``'K'`` (raw); ``info_width`` x ``info_height`` is
    the image size the CameraInfo describes after binning and ROI; ``rescaled`` is True when
    that size differed from the actual image and the intrinsics were scaled to it (scale
    factors ``scale_x``, ``scale_y``; unequal factors mean the aspect ratio changed, which
    is worth a warning).
    """

    intrinsics: Intrinsics
    matrix: str
    info_width: int
    info_height: int
    rescaled: bool
    scale_x: float
    scale_y: float


def resolve_camera_info(msg, image_width, image_height, use_rectified=True):
    """
    Derive the intrinsics of an ``image_width`` x ``image_height`` image from a CameraInfo.

    Uses P (rectified image) when ``use_rectified`` and ``P[0] != 0``, else K. Binning
    (0 means 1) and ROI (in full-resolution unbinned pixels; all-zero means the full image)
    are applied as image_geometry.PinholeCameraModel does: ``f /= binning``,
    ``c = (c - roi_offset) / binning``, size ``roi_size // binning``. When that size differs
    from the image, the intrinsics are rescaled with the pixel-centre convention of
    ``Intrinsics.scaled`` and ``rescaled`` is set. Raises CodecError for an uncalibrated
    (all-zero K) or otherwise unusable message.
    """
    resolved = resolve_camera_model(msg, image_width, image_height,
                                    'true' if use_rectified else 'false')
    model = resolved.model
    return ResolvedCameraInfo(intrinsics=model.intrinsics,
                              matrix='P' if model.rectified else 'K',
                              info_width=resolved.info_width, info_height=resolved.info_height,
                              rescaled=resolved.rescaled, scale_x=resolved.scale_x,
                              scale_y=resolved.scale_y)


def camera_info_to_intrinsics(msg, image_width, image_height, use_rectified=True):
    """
    Return the Intrinsics of an ``image_width`` x ``image_height`` image from a CameraInfo.

    Shorthand for ``resolve_camera_info(...).intrinsics``; use ``resolve_camera_info`` to
    learn whether the intrinsics were rescaled to the image size.
    """
    return resolve_camera_info(msg, image_width, image_height, use_rectified).intrinsics


def intrinsics_to_camera_info(intrinsics, header, template=None):
    """
    Build the CameraInfo of an image with the given intrinsics (e.g. a published depth image).

    K and the left 3x3 of P are the intrinsics (P's Tx = Ty = 0, R identity, no binning or
    ROI), width/height are the intrinsics' size, so depth_image_proc back-projects exactly
    as this package does. ``distortion_model`` and ``D`` are copied from ``template`` when
    given (they are dimensionless, so resizing keeps them valid): D describes the raw,
    unrectified image, and is only meaningful when the intrinsics came from K. Without a
    template D is five zeros (plumb_bob).
    """
    if not intrinsics.is_valid():
        raise CodecError(f'cannot publish invalid intrinsics {intrinsics}')
    fx, fy = float(intrinsics.fx), float(intrinsics.fy)
    cx, cy = float(intrinsics.cx), float(intrinsics.cy)
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width = int(intrinsics.width)
    msg.height = int(intrinsics.height)
    msg.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    if template is not None:
        msg.distortion_model = template.distortion_model
        msg.d = [float(v) for v in template.d]
    else:
        msg.distortion_model = 'plumb_bob'
        msg.d = [0.0] * 5
    return msg


@dataclass(frozen=True)
class ResolvedCameraModel:
    """
    The camera model of one image, and how it was derived from a CameraInfo.

    ``model`` is a :class:`~genpercept_ros.geometry.camera_model.CameraModel` of exactly the
    image's size; ``model.rectified`` says whether P (rectified) or K and D (raw) describe the
    pixels; ``reason`` says why (e.g. ``'auto: every D coefficient is 0'``). The other fields
    are those of :class:`ResolvedCameraInfo`.
    """

    model: CameraModel
    reason: str
    info_width: int
    info_height: int
    rescaled: bool
    scale_x: float
    scale_y: float


def parse_input_rectified(value):
    """
    Return ``'auto'``, ``'true'`` or ``'false'`` for an ``input_rectified`` value.

    Accepts those strings (any case) and booleans (a YAML ``true`` arrives as a bool); raises
    ValueError naming the choices otherwise.
    """
    if isinstance(value, bool):
        return 'true' if value else 'false'
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in INPUT_RECTIFIED_CHOICES:
        raise ValueError(f'`input_rectified` must be one of {", ".join(INPUT_RECTIFIED_CHOICES)}, '
                         f'got {value!r}.')
    return text


def resolve_camera_model(msg, image_width, image_height, input_rectified='auto'):
    """
    Derive the camera model of an ``image_width`` x ``image_height`` image from a CameraInfo.

    ``input_rectified`` (see :func:`parse_input_rectified`): ``'auto'`` -> the image is
    rectified exactly when every D coefficient is 0 (or D is empty), then P describes it, as
    image_geometry assumes; ``'true'`` -> rectified (P, D ignored); ``'false'`` -> raw (K and
    D). A rectified image whose P is unset (``P[0] == 0``) falls back to K. K, P (Tx, Ty
    included), binning (0 means 1) and ROI (full-resolution pixels, all-zero = full image) are
    folded in as image_geometry does, then the model is rescaled to the image size with the
    pixel-centre convention (``CameraModel.scaled``). D, R and ``distortion_model`` are
    carried over unchanged (they are dimensionless). Raises CodecError for an uncalibrated
    (all-zero K) or unusable message; an unsupported distortion model is *not* an error here
    (the model carries it; ``CameraModel.check_distortion`` reports it when rays are needed).
    """
    mode = parse_input_rectified(input_rectified)
    image_width = _positive_int(image_width, 'image width')
    image_height = _positive_int(image_height, 'image height')
    k = _matrix(msg.k, 9, 'K')
    p = _matrix(msg.p, 12, 'P')
    r = _matrix(msg.r, 9, 'R')
    d = np.asarray(msg.d, dtype=np.float64).ravel()
    if not np.all(np.isfinite(d)):
        raise CodecError(f'camera_info D contains NaN or Inf: {d.tolist()}')
    if not np.any(k):
        raise CodecError('uncalibrated camera_info: K is all zero (no intrinsics to use)')
    if mode == 'auto':
        rectified = not np.any(d)
        reason = ('auto: every D coefficient is 0, so the image is taken as rectified'
                  if rectified else 'auto: D is non-zero, so the image is taken as raw')
    else:
        rectified = mode == 'true'
        reason = f'input_rectified: {mode}'
    if rectified and p[0] == 0.0:
        rectified = False
        reason += '; P is unset, so K is used'
    if not np.any(r):
        r = np.eye(3).ravel()
    model = CameraModel(width=1, height=1, k=k, p=p, r=r, d=d,
                        distortion_model=str(msg.distortion_model), rectified=rectified)
    pinhole = model.intrinsics
    if not (pinhole.fx > 0.0 and pinhole.fy > 0.0):
        matrix = 'P' if rectified else 'K'
        raise CodecError(f'camera_info {matrix} has non-positive focal lengths '
                         f'fx={pinhole.fx}, fy={pinhole.fy}')
    info_width, info_height, (x_offset, y_offset), (binning_x, binning_y) = _binned_roi(msg)
    k = k.copy()
    p = p.copy()
    for matrix in (k, p):
        stride = 3 if matrix is k else 4
        # Row 0 (u) and row 1 (v): c -= offset * w (w = last row, 1 for K and P), then / bin.
        matrix[0:stride] -= x_offset * matrix[2 * stride:3 * stride]
        matrix[stride:2 * stride] -= y_offset * matrix[2 * stride:3 * stride]
        matrix[0:stride] /= binning_x
        matrix[stride:2 * stride] /= binning_y
    model = CameraModel(width=info_width, height=info_height, k=k, p=p, r=r, d=d,
                        distortion_model=str(msg.distortion_model), rectified=rectified)
    rescaled = (info_width, info_height) != (image_width, image_height)
    if rescaled:
        model = model.scaled(image_width, image_height)
    if not model.is_valid():
        raise CodecError(f'camera_info gives invalid intrinsics {model.intrinsics}')
    return ResolvedCameraModel(model=model, reason=reason, info_width=info_width,
                               info_height=info_height, rescaled=rescaled,
                               scale_x=image_width / info_width,
                               scale_y=image_height / info_height)


def camera_model_to_camera_info(model, header=None):
    """
    Build the CameraInfo of an image described by ``model`` (e.g. a published depth image).

    K, D, R, P and ``distortion_model`` are the model's (already rescaled to the image, binning
    and ROI folded in), width/height its size, binning 0 and ROI empty: exactly what
    image_proc passes along with ``image_raw`` (raw model) or ``image_rect`` (rectified model),
    so depth_image_proc, rviz2's DepthCloud and this package agree on every pixel's ray.
    """
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width = int(model.width)
    msg.height = int(model.height)
    msg.distortion_model = model.distortion_model
    msg.d = [float(v) for v in model.d]
    msg.k = [float(v) for v in model.k]
    msg.r = [float(v) for v in model.r]
    msg.p = [float(v) for v in model.p]
    return msg


def _binned_roi(msg):
    """Return ``(width, height, (x_offset, y_offset), (binning_x, binning_y))`` of the image."""
    full_width, full_height = int(msg.width), int(msg.height)
    if full_width <= 0 or full_height <= 0:
        raise CodecError(f'camera_info size is {full_width}x{full_height}; a calibrated '
                         'camera_info must state the calibration resolution')
    binning_x = max(1, int(msg.binning_x))
    binning_y = max(1, int(msg.binning_y))
    roi = msg.roi
    x_offset, y_offset = int(roi.x_offset), int(roi.y_offset)
    roi_width, roi_height = int(roi.width), int(roi.height)
    if x_offset == 0 and y_offset == 0 and roi_width == 0 and roi_height == 0:
        roi_width, roi_height = full_width, full_height
    if (roi_width <= 0 or roi_height <= 0 or x_offset + roi_width > full_width
            or y_offset + roi_height > full_height):
        raise CodecError(
            f'camera_info ROI (x={x_offset}, y={y_offset}, {roi_width}x{roi_height}) does not '
            f'fit the {full_width}x{full_height} calibration image')
    info_width, info_height = roi_width // binning_x, roi_height // binning_y
    if info_width <= 0 or info_height <= 0:
        raise CodecError(f'camera_info binning {binning_x}x{binning_y} leaves no pixels of the '
                         f'{roi_width}x{roi_height} ROI')
    return info_width, info_height, (x_offset, y_offset), (binning_x, binning_y)


def _matrix(values, size, name):
    matrix = np.asarray(values, dtype=np.float64).ravel()
    if matrix.size != size:
        raise CodecError(f'camera_info {name} has {matrix.size} entries, expected {size}')
    if not np.all(np.isfinite(matrix)):
        raise CodecError(f'camera_info {name} contains NaN or Inf: {matrix.tolist()}')
    return matrix


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise CodecError(f'{what} must be a positive integer, got {value!r}')
    return int(value)
