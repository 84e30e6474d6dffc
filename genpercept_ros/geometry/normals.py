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
Surface normals in the ROS optical frame: normals from depth, angular agreement.

(The model's own frame conversion, GenPercept's (x, y, z) -> optical (x, -y, -z), has one home:
``genpercept_ros.model.postprocess.normals_to_optical``.)
"""

import numpy as np

_MIN_NORM = 1e-6


def normals_from_depth(xyz, max_relative_jump=None):
    """
    Estimate unit normals (H, W, 3) float32 from an organized optical-frame cloud (H, W, 3).

    Central differences along rows and columns are crossed and the result is oriented toward
    the camera (``n . p < 0``). Border pixels and pixels with an invalid centre or neighbour
    are NaN. With ``max_relative_jump`` set, pixels whose neighbours differ in z from the
    centre by more than that fraction are NaN too (differences across a depth edge are not a
    surface).
    """
    points = np.asarray(xyz, dtype=np.float32)
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f'`xyz` must be an organized (H, W, 3) cloud, got {points.shape}.')
    height, width = points.shape[:2]
    normals = np.full(points.shape, np.nan, dtype=np.float32)
    if height < 3 or width < 3:
        return normals
    centre = points[1:-1, 1:-1]
    left, right = points[1:-1, :-2], points[1:-1, 2:]
    up, down = points[:-2, 1:-1], points[2:, 1:-1]
    along_u = right - left
    along_v = down - up
    # u x v points away from the camera for a surface seen from the front (x right, y down).
    # Written out per component: np.cross is several times slower on image-sized arrays.
    vx, vy, vz = along_v[..., 0], along_v[..., 1], along_v[..., 2]
    ux, uy, uz = along_u[..., 0], along_u[..., 1], along_u[..., 2]
    n = np.empty(centre.shape, dtype=np.float32)
    with np.errstate(invalid='ignore', over='ignore'):
        np.subtract(vy * uz, vz * uy, out=n[..., 0])
        np.subtract(vz * ux, vx * uz, out=n[..., 1])
        np.subtract(vx * uy, vy * ux, out=n[..., 2])
        facing = (n[..., 0] * centre[..., 0] + n[..., 1] * centre[..., 1]
                  + n[..., 2] * centre[..., 2])
    np.negative(n, out=n, where=(facing > 0)[..., None])
    invalid = ~np.isfinite(centre).all(axis=-1)
    if max_relative_jump is not None:
        limit = float(max_relative_jump)
        if not limit > 0:
            raise ValueError(f'`max_relative_jump` must be positive, got {max_relative_jump}.')
        with np.errstate(invalid='ignore', divide='ignore'):
            z = centre[..., 2]
            for neighbour in (left, right, up, down):
                invalid |= np.abs(neighbour[..., 2] - z) > limit * np.abs(z)
    n[invalid] = np.nan
    normals[1:-1, 1:-1] = _normalised(n)
    return normals


def angular_agreement(a, b, mask=None):
    """
    Compare two normal maps (..., 3) and return angular error statistics in degrees.

    Vectors are normalised first; pixels where either is non-finite or zero (or outside
    ``mask``) are skipped. Returns ``dict(mean_deg, median_deg, within_11_25, within_30, n)``
    where ``within_*`` are fractions in [0, 1] of pixels with an error below 11.25 / 30 degrees
    (NaN statistics when ``n`` is 0).
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.shape != b.shape or a.shape[-1:] != (3,):
        raise ValueError(f'normal maps must share a (..., 3) shape, got {a.shape} and {b.shape}.')
    a = _normalised(a).reshape(-1, 3)
    b = _normalised(b).reshape(-1, 3)
    cosine = a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1] + a[:, 2] * b[:, 2]
    usable = np.isfinite(cosine)  # NaN wherever either vector was invalid
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.size != a.shape[0]:
            raise ValueError(f'`mask` of shape {mask.shape} does not match the normal maps.')
        usable &= mask.reshape(-1)
    angles = np.degrees(np.arccos(np.clip(cosine[usable].astype(np.float64), -1.0, 1.0)))
    count = int(angles.size)
    if count == 0:
        return {'mean_deg': float('nan'), 'median_deg': float('nan'),
                'within_11_25': float('nan'), 'within_30': float('nan'), 'n': 0}
    return {'mean_deg': float(angles.mean()), 'median_deg': float(np.median(angles)),
            'within_11_25': float(np.mean(angles < 11.25)),
            'within_30': float(np.mean(angles < 30.0)), 'n': count}


def _normalised(vectors):
    """Return unit vectors (same dtype), NaN where the norm is zero, tiny or not finite."""
    with np.errstate(invalid='ignore', divide='ignore', over='ignore'):
        x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
        norm = np.sqrt(x * x + y * y + z * z)
        good = np.isfinite(norm) & (norm > _MIN_NORM)
        inverse = np.divide(1.0, norm, out=np.full(norm.shape, np.nan, dtype=norm.dtype),
                            where=good)
        return vectors * inverse[..., None]
