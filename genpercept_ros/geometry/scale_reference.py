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
Bring a metric reference (points or a depth image) onto the prediction's pixel grid.

Both references must already be expressed in the camera's optical frame (x right, y down,
z forward); only the camera models may differ. A camera is an ``Intrinsics`` (pinhole) or a
``CameraModel`` (raw images with lens distortion: points are projected through the
distortion, so a reference point lands on the raw pixel that sees it). Pixels follow the
centre convention: pixel ``(v, u)`` covers ``[u - 0.5, u + 0.5) x [v - 0.5, v + 0.5)``.
"""

import numpy as np


def reference_from_points(xyz_optical, intrinsics):
    """
    Project optical-frame points into an (H, W) float32 depth image, NaN where no point lands.

    ``intrinsics`` is the camera of the (H, W) grid (``Intrinsics`` or ``CameraModel``).

    Points behind the camera, non-finite or outside the image are dropped; when several points
    fall in one pixel the nearest (smallest z) wins, so occluded LiDAR returns never overwrite
    the surface in front of them.
    """
    points = np.asarray(xyz_optical, dtype=np.float64)
    if points.ndim < 2 or points.shape[-1] != 3:
        raise ValueError(f'`xyz_optical` must have shape (N, 3), got {points.shape}.')
    points = points.reshape(-1, 3)
    width, height = _size(intrinsics)
    depth = np.full(height * width, np.nan, dtype=np.float32)
    pixels = intrinsics.project(points)
    keep = np.isfinite(pixels).all(axis=1)
    z = points[keep, 2]
    u = np.floor(pixels[keep, 0] + 0.5)
    v = np.floor(pixels[keep, 1] + 0.5)
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    flat = v[inside].astype(np.int64) * width + u[inside].astype(np.int64)
    z = z[inside]
    if flat.size:
        order = np.lexsort((z, flat))
        flat, z = flat[order], z[order]
        first = np.ones(flat.size, dtype=bool)
        first[1:] = flat[1:] != flat[:-1]
        depth[flat[first]] = z[first]
    return depth.reshape(height, width)


def reference_from_depth_image(ref_depth, ref_intrinsics, intrinsics):
    """
    Resample a metric depth image of another camera model onto our pixel grid.

    Each of our pixels looks up the reference pixel its ray passes through (nearest, so no
    depth is ever blended across an edge); z is unchanged because both share the optical
    frame. Either camera may be an ``Intrinsics`` or a (distorted) ``CameraModel``: our rays
    come from ``intrinsics.rays()`` and are projected with ``ref_intrinsics.project``.
    Reference pixels that are non-finite or <= 0 and rays leaving the reference image give
    NaN. Returns (H, W) float32 metres.
    """
    ref = np.asarray(ref_depth)
    if ref.ndim != 2:
        raise ValueError(f'`ref_depth` must be a 2-D depth image (metres), got {ref.shape}.')
    ref_width, ref_height = _size(ref_intrinsics)
    if ref.shape != (ref_height, ref_width):
        raise ValueError(f'`ref_depth` has shape {ref.shape} but `ref_intrinsics` describes '
                         f'{ref_height}x{ref_width} (HxW).')
    width, height = _size(intrinsics)
    ours, theirs = intrinsics.pinhole(), ref_intrinsics.pinhole()
    if ours is None or theirs is None:
        return _resample_along_rays(ref, ref_intrinsics, intrinsics)
    intrinsics, ref_intrinsics = ours, theirs
    ray_x = (np.arange(width, dtype=np.float64) - intrinsics.cx) / intrinsics.fx
    ray_y = (np.arange(height, dtype=np.float64) - intrinsics.cy) / intrinsics.fy
    ref_u = np.floor(ref_intrinsics.fx * ray_x + ref_intrinsics.cx + 0.5)
    ref_v = np.floor(ref_intrinsics.fy * ray_y + ref_intrinsics.cy + 0.5)
    valid_u = (ref_u >= 0) & (ref_u < ref_width)
    valid_v = (ref_v >= 0) & (ref_v < ref_height)
    ref_u = np.where(valid_u, ref_u, 0).astype(np.intp)
    ref_v = np.where(valid_v, ref_v, 0).astype(np.intp)
    sampled = ref[ref_v[:, None], ref_u[None, :]].astype(np.float32)
    with np.errstate(invalid='ignore'):
        good = valid_v[:, None] & valid_u[None, :] & np.isfinite(sampled) & (sampled > 0)
    return np.where(good, sampled, np.float32(np.nan))


def _resample_along_rays(ref, ref_camera, camera):
    """Nearest-pixel lookup of ``ref`` along every ray of ``camera`` (any camera model)."""
    ref_height, ref_width = ref.shape
    rays = camera.rays()
    pixels = ref_camera.project(rays.reshape(-1, 3))
    with np.errstate(invalid='ignore'):
        ref_u = np.floor(pixels[:, 0] + 0.5)
        ref_v = np.floor(pixels[:, 1] + 0.5)
        valid = (ref_u >= 0) & (ref_u < ref_width) & (ref_v >= 0) & (ref_v < ref_height)
    flat = np.where(valid, ref_v * ref_width + ref_u, 0).astype(np.intp)
    sampled = ref.reshape(-1)[flat].astype(np.float32)
    with np.errstate(invalid='ignore'):
        good = valid & np.isfinite(sampled) & (sampled > 0)
    return np.where(good, sampled, np.float32(np.nan)).reshape(rays.shape[:2])


def _size(intrinsics):
    width, height = int(intrinsics.width), int(intrinsics.height)
    if width <= 0 or height <= 0:
        raise ValueError(f'intrinsics must have a positive image size, got {width}x{height}.')
    pinhole = getattr(intrinsics, 'intrinsics', intrinsics)   # a CameraModel's own matrix
    if not (np.isfinite([pinhole.fx, pinhole.fy]).all() and pinhole.fx > 0
            and pinhole.fy > 0):
        raise ValueError(f'intrinsics must have positive finite focal lengths, got '
                         f'fx={pinhole.fx}, fy={pinhole.fy}.')
    return width, height
