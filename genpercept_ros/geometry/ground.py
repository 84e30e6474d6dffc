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
Metric scale from the floor: a camera at a known height fixes scale and shift in every frame.

Frames follow REP 103: the optical frame has x right, y down, z forward. ``up`` is the unit
vector, in the optical frame, pointing away from the floor; ``h`` > 0 the optical centre's
height above the floor. The floor is the plane ``{X : up . X = -h}``, so the floor point on the
ray ``r = (x_n, y_n, 1)`` of a pixel is at depth ``z = -h / (up . r)``, valid where
``up . r < 0`` (the ray points below the horizon). Floor pixels are those whose predicted normal
lies within a tolerance of ``up``; surfaces parallel to the floor that are not the floor (table
tops, box lids) pass that test too and are rejected as outliers by the robust fit
(:func:`~genpercept_ros.geometry.scale.fit_scale_shift`), so the floor must be the largest such
surface in view. This is the camera-height scale recovery of monocular visual odometry (Song &
Chandraker, CVPR 2014; Zhou et al., IV 2016) applied to one image with predicted normals.

Orientation conventions (:func:`up_from_pitch_roll`): ``pitch > 0`` looks down (a camera on a
robot tilted towards the floor in front of it); ``roll > 0`` turns the camera clockwise about its
optical axis as seen from behind it (its right side dips), so in the image the horizon rises
towards the right. Hand-written: no library provides floor fitting on predicted normals.
"""

from dataclasses import dataclass
import math

import numpy as np

from .scale import fit_scale_shift
from .scale import FIT_SPACES
from .scale import ScaleShiftFit

LEVEL_UP = (0.0, -1.0, 0.0)
UP_GIVEN = 'given'
UP_ESTIMATED = 'estimated'

# Rays closer to the horizon than this meet the floor too far away to be measured reliably.
_HORIZON_MARGIN_DEG = 1.0
# Normals this close to the cluster centre are averaged to refine the estimated up vector.
_REFINE_DEG = 5.0
_SEED_COUNT = 64
_SEED_SAMPLE = 8192
# Pixels an up estimate looks at (strided subsample of larger normal maps).
_ESTIMATE_PIXELS = 80000


@dataclass(frozen=True, eq=False)
class GroundScaleFit(ScaleShiftFit):
    """
    Result of :func:`fit_ground_scale`: a :class:`ScaleShiftFit` plus the floor it used.

    ``scale``/``shift``/``ok``/``reason``/``space`` mean what they mean for
    :func:`fit_scale_shift` (depth: ``d = scale r + shift``; disparity: ``1/d = scale r +
    shift``). ``up`` is the unit up vector (float64 (3,), optical frame) used, None when none
    could be estimated; ``up_source`` is ``'given'`` or ``'estimated'``; ``floor_mask`` (H, W)
    bool marks the floor candidates the fit saw (normal within tolerance of ``up``, ray below
    the horizon); ``n_floor`` counts them; ``camera_height_m`` is the height used.
    """

    up: np.ndarray = None
    up_source: str = ''
    floor_mask: np.ndarray = None
    n_floor: int = 0
    camera_height_m: float = math.nan


def up_from_pitch_roll(pitch_deg=0.0, roll_deg=0.0):
    """
    Return the up vector (float64 (3,), optical frame) of a camera pitched and rolled.

    ``pitch_deg > 0`` tilts the optical axis down towards the floor; ``roll_deg > 0`` turns the
    camera clockwise about its optical axis as seen from behind (right side down, horizon
    rising towards the right of the image). Yaw does not change up. With pitch θ and roll φ,
    ``up = R_z(φ)ᵀ (0, -cos θ, -sin θ) = (-sin φ cos θ, -cos φ cos θ, -sin θ)``; a level camera
    gives ``(0, -1, 0)``. Raises ``ValueError`` for non-finite angles.
    """
    pitch = _finite_angle('pitch_deg', pitch_deg)
    roll = _finite_angle('roll_deg', roll_deg)
    return np.array([-math.sin(roll) * math.cos(pitch), -math.cos(roll) * math.cos(pitch),
                     -math.sin(pitch)], dtype=np.float64)


def up_from_rotation(rotation_optical_from_base):
    """
    Return up in the optical frame from the rotation taking base-frame vectors to it.

    ``rotation_optical_from_base`` is the 3x3 rotation of a TF lookup with the image's
    optical frame as target and a base frame whose z axis points up (REP 103/105
    ``base_link``/``base_footprint``) as source: ``up = R (0, 0, 1)``. Raises ``ValueError``
    for anything that is not a finite 3x3 rotation.
    """
    rotation = np.asarray(rotation_optical_from_base, dtype=np.float64)
    if rotation.shape != (3, 3) or not np.isfinite(rotation).all():
        raise ValueError(f'`rotation_optical_from_base` must be a finite 3x3 matrix, got shape '
                         f'{rotation.shape}.')
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4):
        raise ValueError('`rotation_optical_from_base` is not a rotation (R Rᵀ != I).')
    return rotation[:, 2].copy()


def rotation_from_quaternion(x, y, z, w):
    """
    Return the 3x3 rotation matrix (float64) of the quaternion ``(x, y, z, w)``.

    Follows geometry_msgs/Quaternion (Hamilton convention, as tf2 uses); the quaternion is
    normalised first. Raises ``ValueError`` for a zero or non-finite quaternion.
    """
    q = np.array([x, y, z, w], dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if not np.isfinite(q).all() or norm < 1e-9:
        raise ValueError(f'quaternion must be finite and non-zero, got {tuple(q)}.')
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def estimate_up(normals, search_deg=50.0, tolerance_deg=10.0, min_points=50):
    """
    Estimate up (optical frame) as the dominant upward-facing cluster of predicted normals.

    ``normals`` (..., 3) unit vectors facing the camera, NaN invalid. Candidates lie within
    ``search_deg`` of a level camera's up ``(0, -1, 0)`` (so cameras pitched or rolled by more
    than about ``search_deg - tolerance_deg`` need up given). Seeds drawn from the candidates
    (deterministic) are scored by how many candidates lie within ``tolerance_deg``; the best
    is refined by averaging the normals within ``tolerance_deg`` of it, then within 5 degrees
    (mean shift). Returns ``(up float64 (3,), support)``, or ``(None, reason)`` when fewer than
    ``min_points`` normals support it. Maps larger than 80000 pixels are subsampled on a
    regular grid (counts are scaled back to full resolution).
    """
    n = _as_normals(normals)
    # A direction needs no full-resolution map: every stride-th row and column of a large one.
    stride = 1
    if n.ndim == 3:
        stride = max(1, math.ceil(math.sqrt(n.shape[0] * n.shape[1] / _ESTIMATE_PIXELS)))
        n = n[::stride, ::stride]
    weight = stride * stride
    n = n.reshape(-1, 3)
    with np.errstate(invalid='ignore'):
        # -n_y is the cosine to a level camera's up (0, -1, 0); NaN normals compare False.
        candidates = n[-n[:, 1] > math.cos(math.radians(float(search_deg)))]
    candidates = candidates[np.isfinite(candidates).all(axis=1)].astype(np.float32)
    if candidates.shape[0] * weight < int(min_points):
        return None, (f'no floor in view: {candidates.shape[0] * weight} normals face up within '
                      f'{float(search_deg):g} deg of a level camera (< {int(min_points)})')
    rng = np.random.default_rng(0)
    pool = candidates
    if pool.shape[0] > _SEED_SAMPLE:
        pool = pool[rng.choice(pool.shape[0], size=_SEED_SAMPLE, replace=False)]
    seeds = pool[rng.choice(pool.shape[0], size=min(_SEED_COUNT, pool.shape[0]), replace=False)]
    cos_tol = math.cos(math.radians(float(tolerance_deg)))
    # Component-wise (64, N) cosines: BLAS matmul with an inner size of 3 is slower here.
    cosines = (seeds[:, 0:1] * pool[None, :, 0] + seeds[:, 1:2] * pool[None, :, 1]
               + seeds[:, 2:3] * pool[None, :, 2])
    support = np.count_nonzero(cosines > cos_tol, axis=1)
    best = seeds[int(np.argmax(support))].astype(np.float64)
    # Mean shift: first over the seed's tolerance cone, then over a narrow one.
    windows = (float(tolerance_deg),) * 3 + (min(_REFINE_DEG, float(tolerance_deg)),) * 3
    for window in windows:
        near = candidates[_dot(candidates, best) > math.cos(math.radians(window))]
        if near.shape[0] == 0:
            break
        # Column sums (contiguous strides) are ~10x faster than an axis-0 mean here.
        total = np.array([near[:, axis].sum(dtype=np.float64) for axis in range(3)])
        best = total / np.linalg.norm(total)
    count = int(np.count_nonzero(_dot(candidates, best) > cos_tol)) * weight
    if count < int(min_points):
        return None, (f'no floor in view: the largest upward-facing surface has {count} '
                      f'pixels (< {int(min_points)})')
    return best, count


def floor_depth(intrinsics, up, camera_height_m):
    """
    Return the depth (H, W) float32 metres where each pixel's ray meets the floor plane.

    ``z = -h / (up . r)`` with ``r`` the pixel's ray from ``intrinsics.rays()`` (any camera
    model providing it); NaN where the ray points above, or within 1 degree of, the horizon.
    """
    up = _unit_up(up)
    height_m = _positive('camera_height_m', camera_height_m)
    rays = np.asarray(intrinsics.rays(), dtype=np.float32)
    dot = _dot(rays, up)
    below = _below_horizon(rays, dot)
    with np.errstate(divide='ignore', invalid='ignore'):
        depth = np.where(below, np.float32(-height_m) / dot, np.float32(np.nan))
    return depth.astype(np.float32, copy=False)


def floor_mask(normals, up, tolerance_deg, intrinsics=None):
    """
    Return (H, W) bool: normal within ``tolerance_deg`` of ``up`` (and ray below the horizon).

    The ray test is applied when ``intrinsics`` is given.
    """
    n = _as_normals(normals)
    up = _unit_up(up)
    with np.errstate(invalid='ignore'):
        mask = _dot(n, up) > math.cos(math.radians(float(tolerance_deg)))
    if intrinsics is not None:
        rays = np.asarray(intrinsics.rays(), dtype=np.float32)
        mask &= _below_horizon(rays, _dot(rays, up))
    return mask


def height_above_floor(xyz, up, camera_height_m):
    """
    Return the height (metres) of optical-frame points above the floor plane: ``up . X + h``.

    ``xyz`` (..., 3); NaN where a point is NaN.
    """
    up = _unit_up(up)
    points = np.asarray(xyz, dtype=np.float32)
    return _dot(points, up) + np.float32(_positive('camera_height_m', camera_height_m))


def fit_ground_scale(relative, normals, intrinsics, camera_height_m, space='depth', up=None, *,
                     tolerance_deg=10.0, search_deg=50.0, min_points=50, min_inlier_ratio=0.5,
                     inlier_threshold=0.05, seed=0):
    """
    Fit the affine map of a relative prediction to metric from the floor seen at a known height.

    ``relative`` (H, W): relative depth (``space='depth'``) or relative disparity
    (``space='disparity'``). ``normals`` (H, W, 3): unit normals in the optical frame facing the
    camera, NaN invalid. ``intrinsics``: the camera model of that grid; anything with
    ``width``, ``height`` and ``rays() -> (H, W, 3)`` (z = 1), so pinhole and distorted models
    both work. ``camera_height_m`` > 0: optical centre above the floor. ``up``: unit 3-vector
    in the optical frame pointing away from the floor (``(0, -1, 0)`` for a level camera; see
    :func:`up_from_pitch_roll`, :func:`up_from_rotation`) or None to estimate it
    (:func:`estimate_up`).

    Floor pixels (normal within ``tolerance_deg`` of up, ray below the horizon) get their
    metric depth from the ray-plane intersection (:func:`floor_depth`) and the fit is
    :func:`fit_scale_shift` on them (MSAC + least squares, ``min_points``,
    ``min_inlier_ratio``, ``inlier_threshold`` as there): raised tables and box lids are its
    outliers. Returns a :class:`GroundScaleFit`; ``ok=False`` with the reason when too little
    floor is in view (never a guess). Raises ``ValueError`` naming a bad argument.
    """
    if space not in FIT_SPACES:
        raise ValueError(f'`space` must be one of {FIT_SPACES}, got {space!r}.')
    rel = np.asarray(relative)
    if rel.ndim != 2:
        raise ValueError(f'`relative` must be a 2-D (H, W) map, got shape {rel.shape}.')
    n = _as_normals(normals)
    if n.shape != rel.shape + (3,):
        raise ValueError(f'`normals` must have shape {rel.shape + (3,)} to match `relative`, '
                         f'got {n.shape}.')
    if not callable(getattr(intrinsics, 'rays', None)):
        raise ValueError(f'`intrinsics` must provide rays() (an Intrinsics or camera model), '
                         f'got {type(intrinsics).__name__}.')
    size = (int(getattr(intrinsics, 'height', -1)), int(getattr(intrinsics, 'width', -1)))
    if size != rel.shape:
        raise ValueError(f'`intrinsics` describe a {size[1]}x{size[0]} image but `relative` is '
                         f'{rel.shape[1]}x{rel.shape[0]} (WxH).')
    height_m = _positive('camera_height_m', camera_height_m)
    if not 0.0 < float(tolerance_deg) < 90.0:
        raise ValueError(f'`tolerance_deg` must lie in (0, 90), got {tolerance_deg}.')
    if not 0.0 < float(search_deg) < 90.0:
        raise ValueError(f'`search_deg` must lie in (0, 90), got {search_deg}.')
    if int(min_points) < 2:
        raise ValueError(f'`min_points` must be at least 2, got {min_points}.')

    if up is None:
        estimated, support = estimate_up(n, search_deg, tolerance_deg, min_points)
        if estimated is None:
            return _failed(space, support, None, UP_ESTIMATED, rel.shape, height_m)
        up_vector, source = estimated, UP_ESTIMATED
    else:
        up_vector, source = _unit_up(up), UP_GIVEN

    mask = floor_mask(n, up_vector, tolerance_deg, intrinsics)
    n_floor = int(np.count_nonzero(mask))
    if n_floor < int(min_points):
        return _failed(space, f'too little floor in view: {n_floor} pixels face up within '
                       f'{float(tolerance_deg):g} deg below the horizon (< {int(min_points)})',
                       up_vector, source, rel.shape, height_m, mask)
    reference = floor_depth(intrinsics, up_vector, height_m)
    fit = fit_scale_shift(rel, reference, mask, space, min_points=min_points,
                          min_inlier_ratio=min_inlier_ratio, inlier_threshold=inlier_threshold,
                          seed=seed)
    reason = fit.reason if fit.ok else f'floor fit rejected: {fit.reason}'
    return GroundScaleFit(fit.scale, fit.shift, fit.inlier_ratio, fit.residual, fit.n_points,
                          fit.ok, reason, fit.space, fit.n_ignored, up_vector, source, mask,
                          n_floor, height_m)


def _dot(vectors, direction):
    """Return ``vectors (..., 3) . direction`` in float32 (component-wise: faster than @)."""
    x, y, z = (np.float32(value) for value in direction)
    with np.errstate(invalid='ignore', over='ignore'):
        return vectors[..., 0] * x + vectors[..., 1] * y + vectors[..., 2] * z


def _below_horizon(rays, dot):
    """Return where ``dot = up . ray`` points more than the horizon margin below the horizon."""
    with np.errstate(invalid='ignore', over='ignore'):
        length = np.sqrt(rays[..., 0] ** 2 + rays[..., 1] ** 2 + rays[..., 2] ** 2)
        return dot < np.float32(-math.sin(math.radians(_HORIZON_MARGIN_DEG))) * length


def _failed(space, reason, up, source, shape, height_m, mask=None):
    if mask is None:
        mask = np.zeros(shape, dtype=bool)
    count = int(np.count_nonzero(mask))
    return GroundScaleFit(math.nan, math.nan, 0.0, math.nan, count, False, reason, space, 0,
                          up, source, mask, count, height_m)


def _as_normals(normals):
    n = np.asarray(normals)
    if n.ndim < 1 or n.shape[-1] != 3:
        raise ValueError(f'`normals` must have shape (..., 3), got {n.shape}.')
    return n


def _unit_up(up):
    vector = np.asarray(up, dtype=np.float64)
    if vector.shape != (3,) or not np.isfinite(vector).all():
        raise ValueError(f'`up` must be a finite 3-vector, got {up!r}.')
    norm = float(np.linalg.norm(vector))
    if norm < 1e-6:
        raise ValueError(f'`up` must be non-zero, got {up!r}.')
    return vector / norm


def _positive(name, value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'`{name}` must be a number, got {value!r}.') from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f'`{name}` must be positive and finite, got {value!r}.')
    return number


def _finite_angle(name, value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'`{name}` must be a number of degrees, got {value!r}.') from None
    if not math.isfinite(number):
        raise ValueError(f'`{name}` must be finite, got {value!r}.')
    return math.radians(number)
