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

"""Back-projection of metric depth to organized camera-frame points, and decimation."""

import numpy as np

from .intrinsics import _check_factor
from .intrinsics import Intrinsics


def backproject(depth_m, intrinsics):
    """
    Back-project a metric depth image to organized points in the optical frame.

    ``depth_m`` is an (H, W) array of depth along the optical axis in metres; ``intrinsics``
    (an ``Intrinsics`` or a ``CameraModel``) must describe an image of exactly W x H pixels.
    Returns (H, W, 3) float32. Pinhole cameras give ``x = (u - cx) z / fx``,
    ``y = (v - cy) z / fy``, ``z = d`` evaluated in float32 in the same order as
    depth_image_proc (``(u - cx) * z * (1 / fx)``); a distorted raw camera gives
    ``z * ray`` with the undistorted ray of each pixel (``CameraModel.rays()``, NaN rays give
    NaN points). Pixels whose depth is not finite or <= 0 are NaN in all three coordinates
    (the point is kept, so the cloud stays organized). Raises ValueError for a size mismatch,
    invalid intrinsics or an unsupported distortion model.
    """
    x, y, z = backproject_planes(depth_m, intrinsics)
    xyz = np.empty(z.shape + (3,), dtype=np.float32)
    xyz[..., 0] = x
    xyz[..., 1] = y
    xyz[..., 2] = z
    return xyz


def backproject_planes(depth_m, intrinsics):
    """
    Return ``(x, y, z)``, three contiguous (H, W) float32 planes of ``backproject``.

    Same values as ``backproject``; planes are cheaper to produce than interleaved points and
    let a message builder interleave them once, straight into its buffer.
    """
    depth = np.asarray(depth_m)
    if depth.ndim != 2:
        raise ValueError(f'depth must be a 2-D (H, W) array, got shape {depth.shape}')
    height, width = depth.shape
    if (int(intrinsics.width), int(intrinsics.height)) != (width, height):
        raise ValueError(
            f'intrinsics are for a {intrinsics.width}x{intrinsics.height} image but the depth '
            f'image is {width}x{height}; use Intrinsics.scaled() or decimated() first')
    if not intrinsics.is_valid():
        raise ValueError(f'invalid intrinsics {intrinsics}')
    pinhole = intrinsics if isinstance(intrinsics, Intrinsics) else intrinsics.pinhole()
    depth = depth.astype(np.float32, copy=False)
    with np.errstate(invalid='ignore'):
        # NaN in z propagates to x and y, so one masked copy invalidates the whole point.
        z = np.where((depth > 0.0) & (depth < np.inf), depth, np.float32(np.nan))
    if pinhole is None:
        rays = intrinsics.rays()
        # rays[..., 2] is 1 (exact) or NaN where the pixel has no ray.
        return (np.multiply(z, rays[..., 0]), np.multiply(z, rays[..., 1]),
                np.multiply(z, rays[..., 2]))
    intrinsics = pinhole
    x_offsets = np.arange(width, dtype=np.float32) - np.float32(intrinsics.cx)
    y_offsets = np.arange(height, dtype=np.float32) - np.float32(intrinsics.cy)
    x = np.multiply(z, x_offsets[np.newaxis, :])
    x *= np.float32(1.0 / intrinsics.fx)
    y = np.multiply(z, y_offsets[:, np.newaxis])
    y *= np.float32(1.0 / intrinsics.fy)
    return x, y, z


def decimate(array, factor):
    """
    Keep every ``factor``-th row and column of an image-shaped array (H, W[, C]).

    The result stays organized: pixel ``(u', v')`` is pixel ``(factor u', factor v')`` of the
    input, which matches ``Intrinsics.decimated(factor)``. Returns a contiguous copy.
    """
    factor = _check_factor(factor)
    array = np.asarray(array)
    if array.ndim < 2:
        raise ValueError(f'cannot decimate an array of shape {array.shape}')
    if factor == 1:
        return np.ascontiguousarray(array)
    return np.ascontiguousarray(array[::factor, ::factor])
