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
Per-pixel confidence of metric depth from what can be checked without ground truth.

Three checks, each a factor in [0, 1], multiplied:

- surface agreement: the angle between the normal of the metric depth's own surface (central
  differences of the back-projected cloud) and the model's predicted normal; 1 at 0 degrees,
  falling linearly to 0 at ``max_angle_deg``. A wrong scale/shift bends planes and lowers it;
  so do depth and normals that disagree about the shape. Pixels where the depth's normal cannot
  be formed (image border, invalid neighbour) and frames without normals are not penalised.
- discontinuities (flying pixels): how far the pixel's inverse depth departs from the mean of
  its two neighbours along a row or a column, relative to its own (zero on any plane, however
  slanted); 1 for a smooth surface, 0 at ``max_jump`` (points on a depth edge are interpolated
  between two surfaces and float in free space).
- far-end saturation: 0 where the relative output sits at its far end (sky, beyond the model's
  range), 1 elsewhere.

Invalid (NaN) depth has confidence 0. The value says how consistent a pixel is, not how
accurate it is: a consistently wrong depth (e.g. a wrong camera height) keeps a high score.
Hand-written: the checks are a few numpy expressions on the node's own arrays.
"""

import numpy as np

from .filters import mask_far_saturation
from .normals import normals_from_depth

FAR_SATURATION_MARGIN = 1e-3


def depth_confidence(depth_m, intrinsics, normals=None, relative=None, kind=None,
                     max_angle_deg=45.0, max_jump=0.1):
    """
    Return per-pixel confidence (H, W) float32 in [0, 1] of metric depth (see module docs).

    ``depth_m`` (H, W) metres, NaN invalid; ``intrinsics`` the camera model of that grid
    (anything with ``rays()``, pinhole or distorted); ``normals`` (H, W, 3) predicted
    unit normals in the optical frame or None; ``relative``/``kind`` the relative prediction and
    its kind ('relative_depth' or 'relative_disparity') for the saturation check, or None.
    Raises ``ValueError`` for mismatched shapes or non-positive limits.
    """
    depth = np.asarray(depth_m, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f'`depth_m` must be (H, W), got shape {depth.shape}.')
    if not max_angle_deg > 0 or not max_jump > 0:
        raise ValueError(f'`max_angle_deg` ({max_angle_deg}) and `max_jump` ({max_jump}) '
                         'must be positive.')
    valid = np.isfinite(depth) & (depth > 0)
    confidence = valid.astype(np.float32)
    confidence *= _smoothness(depth, float(max_jump))
    if normals is not None:
        n = np.asarray(normals, dtype=np.float32)
        if n.shape != depth.shape + (3,):
            raise ValueError(f'`normals` must have shape {depth.shape + (3,)}, got {n.shape}.')
        rays = np.asarray(intrinsics.rays(), dtype=np.float32)
        if rays.shape != n.shape:
            raise ValueError(f'`intrinsics` rays {rays.shape} do not match the depth grid '
                             f'{depth.shape}.')
        with np.errstate(invalid='ignore'):
            xyz = np.where(valid[..., None], depth[..., None] * rays, np.float32(np.nan))
        from_depth = normals_from_depth(xyz)
        with np.errstate(invalid='ignore'):
            cosine = np.clip(from_depth[..., 0] * n[..., 0] + from_depth[..., 1] * n[..., 1]
                             + from_depth[..., 2] * n[..., 2], -1.0, 1.0)
            angle = np.degrees(np.arccos(cosine))
            agreement = np.clip(1.0 - angle / float(max_angle_deg), 0.0, 1.0)
        confidence *= np.where(np.isfinite(agreement), agreement, 1.0).astype(np.float32)
    if relative is not None and kind is not None:
        rel = np.asarray(relative, dtype=np.float32)
        if rel.shape != depth.shape:
            raise ValueError(f'`relative` must have shape {depth.shape}, got {rel.shape}.')
        saturated = np.isnan(mask_far_saturation(rel, kind, FAR_SATURATION_MARGIN)) & np.isfinite(
            rel)
        confidence[saturated] = 0.0
    confidence[~valid] = 0.0
    return confidence


def _smoothness(depth, max_jump):
    """
    Return ``1 - kink / max_jump`` clipped to [0, 1], NaN-free.

    ``kink`` is the largest, over rows and columns, of ``|z / z_prev + z / z_next - 2|``: the
    second difference of inverse depth relative to the pixel's own, which is zero on any plane
    (inverse depth is affine in pixel coordinates there) and of the order of the depth ratio
    across a discontinuity. Border and invalid neighbours do not count.
    """
    kink = np.zeros(depth.shape, dtype=np.float32)
    with np.errstate(invalid='ignore', divide='ignore'):
        centre = depth[1:-1, :]
        rows = np.abs(centre / depth[:-2, :] + centre / depth[2:, :] - 2.0)
        centre = depth[:, 1:-1]
        cols = np.abs(centre / depth[:, :-2] + centre / depth[:, 2:] - 2.0)
    kink[1:-1, :] = np.nan_to_num(rows, nan=0.0, posinf=0.0)
    np.maximum(kink[:, 1:-1], np.nan_to_num(cols, nan=0.0, posinf=0.0), out=kink[:, 1:-1])
    return np.clip(1.0 - kink / np.float32(max_jump), 0.0, 1.0).astype(np.float32)
