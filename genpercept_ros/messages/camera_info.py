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

"""sensor_msgs/CameraInfo <-> Intrinsics, with binning, ROI and resizing as ROS defines them."""

from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CameraInfo

from .errors import CodecError
from ..geometry.intrinsics import Intrinsics


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
    image_width = _positive_int(image_width, 'image width')
    image_height = _positive_int(image_height, 'image height')
    k = _matrix(msg.k, 9, 'K')
    p = _matrix(msg.p, 12, 'P')
    if not np.any(k):
        raise CodecError('uncalibrated camera_info: K is all zero (no intrinsics to use)')
    if use_rectified and p[0] != 0.0:
        matrix, fx, fy, cx, cy = 'P', *(float(p[i]) for i in (0, 5, 2, 6))
    else:
        matrix, fx, fy, cx, cy = 'K', *(float(k[i]) for i in (0, 4, 2, 5))
    if not (fx > 0.0 and fy > 0.0):
        raise CodecError(f'camera_info {matrix} has non-positive focal lengths fx={fx}, fy={fy}')
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
    intrinsics = Intrinsics(fx=fx / binning_x, fy=fy / binning_y,
                            cx=(cx - x_offset) / binning_x, cy=(cy - y_offset) / binning_y,
                            width=info_width, height=info_height)
    rescaled = (info_width, info_height) != (image_width, image_height)
    if rescaled:
        intrinsics = intrinsics.scaled(image_width, image_height)
    if not intrinsics.is_valid():
        raise CodecError(f'camera_info gives invalid intrinsics {intrinsics}')
    return ResolvedCameraInfo(intrinsics=intrinsics, matrix=matrix, info_width=info_width,
                              info_height=info_height, rescaled=rescaled,
                              scale_x=image_width / info_width,
                              scale_y=image_height / info_height)


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
