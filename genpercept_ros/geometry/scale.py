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
Relative-to-metric conversion and robust scale/shift fitting.

GenPercept depth is affine-invariant: depth variants are linear in metric depth (far = 1),
disparity variants are linear in inverse depth (near = 1). Both need a per-frame scale and
shift, fitted in the space the model is linear in (depth space for depth variants, disparity
space for disparity variants), exactly as the reference evaluation aligns them.

The MSAC fit is hand-written on purpose: no kept numpy-only library offers a robust 1-D affine
fit with a relative residual and a truncated-quadratic (MSAC) score. scikit-learn's
RANSACRegressor would take a custom loss but scores hypotheses by inlier count (plain RANSAC),
and would add scikit-learn and SciPy to a layer that is numpy only; OpenCV's robust estimators
are for 2-D/3-D point sets (``estimateAffine2D``) or orthogonal-distance lines (``fitLine``),
not ``y = s r + t`` with ``|s r + t - y| / y`` residuals.
"""

from dataclasses import dataclass
import math

import numpy as np

RELATIVE_KINDS = ('relative_depth', 'relative_disparity')
SCALE_MODES = ('range', 'fixed')
FIT_SPACES = ('depth', 'disparity')

# A relative map spanning less than this over the reference points carries no scale information.
_DEGENERATE_SPAN = 1e-6


def space_for_kind(kind):
    """Return the fitting space ('depth' or 'disparity') in which a relative output is linear."""
    _check_choice('kind', kind, RELATIVE_KINDS)
    return 'depth' if kind == 'relative_depth' else 'disparity'


def relative_to_metric(relative, kind, mode, near_m=None, far_m=None, scale=None, shift=None):
    """
    Convert a relative GenPercept output to metric depth in metres.

    ``mode='range'`` maps the relative output onto ``[near_m, far_m]``: depth kind
    ``d = near + r (far - near)``; disparity kind maps r onto inverse depth,
    ``1/d = 1/far + r (1/near - 1/far)``. ``mode='fixed'`` applies a given affine model: depth
    kind ``d = scale r + shift``; disparity kind ``d = 1 / (scale r + shift)``. Arguments that
    the chosen mode does not use are ignored.

    Returns a float32 array of the input's shape; non-finite or non-positive depths are NaN.
    Raises ``ValueError`` naming the offending argument.
    """
    _check_choice('kind', kind, RELATIVE_KINDS)
    _check_choice('mode', mode, SCALE_MODES)
    rel = np.asarray(relative, dtype=np.float32)
    if mode == 'range':
        space, s, t = range_affine(kind, near_m, far_m)
    else:
        space = space_for_kind(kind)
        s = _positive_finite('scale', scale)
        t = 0.0 if shift is None else _finite('shift', shift)
    return affine_to_metric(rel, space, s, t)


def range_affine(kind, near_m, far_m):
    """
    Return ``(space, scale, shift)`` of the range mapping of a ``kind`` output onto metres.

    Depth kind: ``d = near + r (far - near)`` (space 'depth'); disparity kind:
    ``1/d = 1/far + r (1/near - 1/far)`` (space 'disparity'), so r = 0 is ``far_m`` and r = 1
    ``near_m``. Raises ``ValueError`` naming the argument for non-positive or unordered ends.
    """
    space = space_for_kind(kind)
    near = _positive_finite('near_m', near_m)
    far = _positive_finite('far_m', far_m)
    if not near < far:
        raise ValueError(f'`near_m` ({near}) must be smaller than `far_m` ({far}).')
    if space == 'depth':
        return space, far - near, near
    return space, 1.0 / near - 1.0 / far, 1.0 / far


def affine_to_metric(relative, space, scale, shift):
    """
    Apply ``y = scale r + shift`` in ``space`` and return depth in metres (float32, NaN invalid).

    In disparity space ``y`` is inverse depth, so depth is ``1 / y``.
    """
    _check_choice('space', space, FIT_SPACES)
    rel = np.asarray(relative, dtype=np.float32)
    with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
        value = rel * np.float32(scale) + np.float32(shift)
        if space == 'disparity':
            value = np.float32(1.0) / value
    return np.where(np.isfinite(value) & (value > 0), value, np.float32(np.nan)).astype(
        np.float32, copy=False)


@dataclass(frozen=True)
class ScaleShiftFit:
    """
    Result of :func:`fit_scale_shift`.

    ``scale`` and ``shift`` define ``y = scale r + shift`` in ``space`` (y = depth in metres, or
    inverse depth in 1/m); they are NaN when nothing could be fitted and may be set while
    ``ok`` is False (e.g. a poor inlier ratio) for diagnostics only. ``inlier_ratio`` is
    inliers / ``n_points``; ``residual`` the root-mean-square relative residual
    ``|scale r + shift - y| / y`` over the inliers; ``n_points`` the usable reference points;
    ``n_ignored`` the masked-in points dropped because the reference or the relative value was
    non-finite or the reference was not positive.
    """

    scale: float
    shift: float
    inlier_ratio: float
    residual: float
    n_points: int
    ok: bool
    reason: str
    space: str = 'depth'
    n_ignored: int = 0

    def as_list(self):
        """Return ``[scale, shift, inlier_ratio, residual]`` (the `scale` topic layout)."""
        return [float(self.scale), float(self.shift), float(self.inlier_ratio),
                float(self.residual)]

    def to_metric(self, relative):
        """Apply this fit to a relative map; metres, float32, NaN invalid."""
        return affine_to_metric(relative, self.space, self.scale, self.shift)


def fit_scale_shift(relative, reference, valid_mask=None, space='depth', *, min_points=20,
                    min_inlier_ratio=0.5, inlier_threshold=0.05, iterations=128,
                    max_sample_points=4096, max_refine_points=65536, seed=0):
    """
    Robustly fit ``y ≈ scale relative + shift``; y = reference (depth) or 1/reference (disparity).

    ``relative`` and ``reference`` (metres, NaN/Inf/<=0 where missing) have the same shape;
    ``valid_mask`` (bool, same shape, optional) restricts the points used. The fit is MSAC on
    two-point minimal samples (deterministic for a given ``seed``) scored on at most
    ``max_sample_points`` points, then least squares on the inliers, repeated until the inlier
    set settles. Refinement, inlier ratio and residual use all points, or a random subset of
    ``max_refine_points`` of them for dense references (a statistically equivalent estimate at
    a fraction of the cost). A point is an inlier when its relative residual
    ``|scale r + shift - y| / y`` is at most ``inlier_threshold``.

    The fit is rejected (``ok=False`` with a reason) for fewer than ``min_points`` usable points,
    a constant relative map, an inlier ratio below ``min_inlier_ratio`` or a non-positive scale
    (checked in that order).
    """
    _check_choice('space', space, FIT_SPACES)
    rel = _as_float(relative)
    ref = _as_float(reference)
    if rel.shape != ref.shape:
        raise ValueError(
            f'`relative` {rel.shape} and `reference` {ref.shape} must have the same shape.')
    if valid_mask is None:
        mask = np.ones(rel.shape, dtype=bool)
    else:
        mask = np.asarray(valid_mask)
        if mask.shape != rel.shape:
            raise ValueError(
                f'`valid_mask` {mask.shape} must have the shape of `relative` {rel.shape}.')
        mask = mask.astype(bool, copy=False)
    if int(min_points) < 2:
        raise ValueError(f'`min_points` must be at least 2, got {min_points}.')
    if not 0.0 <= float(min_inlier_ratio) <= 1.0:
        raise ValueError(f'`min_inlier_ratio` must lie in [0, 1], got {min_inlier_ratio}.')
    threshold = _positive_finite('inlier_threshold', inlier_threshold)
    if int(iterations) < 1:
        raise ValueError(f'`iterations` must be at least 1, got {iterations}.')
    for name, value in (('max_sample_points', max_sample_points),
                        ('max_refine_points', max_refine_points)):
        if int(value) < 2:
            raise ValueError(f'`{name}` must be at least 2, got {value}.')

    with np.errstate(divide='ignore', invalid='ignore'):
        usable = mask & np.isfinite(rel) & np.isfinite(ref) & (ref > 0)
    n_ignored = int(np.count_nonzero(mask) - np.count_nonzero(usable))
    r = rel[usable].astype(np.float64)
    y = ref[usable].astype(np.float64)
    if space == 'disparity':
        y = 1.0 / y
    n = int(r.size)

    def failed(reason, scale=math.nan, shift=math.nan, inlier_ratio=0.0, residual=math.nan):
        return ScaleShiftFit(float(scale), float(shift), float(inlier_ratio), float(residual),
                             n, False, reason, space, n_ignored)

    if n < int(min_points):
        return failed(f'too few reference points ({n} < min_points {int(min_points)}; '
                      f'{n_ignored} non-finite or non-positive ignored)')
    if float(np.ptp(r)) < _DEGENERATE_SPAN:
        return failed('degenerate input: relative values are constant over the reference points')

    rng = np.random.default_rng(seed)
    if n > int(max_refine_points):
        subset = rng.choice(n, size=int(max_refine_points), replace=False)
        r, y = r[subset], y[subset]
    sample = np.arange(r.size)
    if r.size > int(max_sample_points):
        sample = rng.choice(r.size, size=int(max_sample_points), replace=False)
    s, t = _msac(r[sample], y[sample], threshold, int(iterations), rng)
    if not np.isfinite(s):
        return failed('degenerate input: no two reference points with distinct relative values')

    inliers = None
    for _ in range(10):
        new_inliers = _relative_residual(r, y, s, t) <= threshold
        if inliers is not None and np.array_equal(new_inliers, inliers):
            break
        inliers = new_inliers
        if np.count_nonzero(inliers) < 2 or float(np.ptp(r[inliers])) < _DEGENERATE_SPAN:
            return failed('degenerate input: inliers do not span distinct relative values',
                          s, t, np.count_nonzero(inliers) / r.size)
        s, t = _least_squares(r[inliers], y[inliers])

    inliers = _relative_residual(r, y, s, t) <= threshold
    inlier_ratio = np.count_nonzero(inliers) / r.size
    residual = math.nan
    if np.any(inliers):
        residual = float(np.sqrt(np.mean(_relative_residual(r[inliers], y[inliers], s, t) ** 2)))
    if inlier_ratio < float(min_inlier_ratio):
        return failed(f'poor inlier ratio ({inlier_ratio:.2f} < min_inlier_ratio '
                      f'{float(min_inlier_ratio):.2f})', s, t, inlier_ratio, residual)
    if not s > 0:
        return failed(f'non-positive scale ({s:.4g})', s, t, inlier_ratio, residual)
    return ScaleShiftFit(float(s), float(t), float(inlier_ratio), residual, n, True, 'ok', space,
                         n_ignored)


def _msac(r, y, threshold, iterations, rng):
    """Return the two-point hypothesis with the lowest truncated squared relative residual."""
    first = rng.integers(0, r.size, size=iterations)
    second = rng.integers(0, r.size, size=iterations)
    dr = r[second] - r[first]
    distinct = np.abs(dr) >= _DEGENERATE_SPAN
    if not np.any(distinct):
        return math.nan, math.nan
    first, second, dr = first[distinct], second[distinct], dr[distinct]
    scales = (y[second] - y[first]) / dr
    shifts = y[first] - scales * r[first]
    residual = np.abs(scales[:, None] * r[None, :] + shifts[:, None] - y[None, :]) / y[None, :]
    cost = np.minimum(residual, threshold) ** 2
    best = int(np.argmin(cost.sum(axis=1)))
    return float(scales[best]), float(shifts[best])


def _least_squares(r, y):
    """Solve ``y = s r + t`` in the least-squares sense (closed form, centred for stability)."""
    r_mean = r.mean()
    y_mean = y.mean()
    dr = r - r_mean
    # einsum rather than np.dot: BLAS dot spins up threads and is slower at these sizes.
    s = float(np.einsum('i,i->', dr, y - y_mean) / np.einsum('i,i->', dr, dr))
    return s, float(y_mean - s * r_mean)


def _as_float(values):
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array


def _relative_residual(r, y, s, t):
    return np.abs(s * r + t - y) / y


def _check_choice(name, value, choices):
    if value not in choices:
        allowed = ', '.join(map(repr, choices))
        raise ValueError(f'`{name}` must be one of {allowed}; got {value!r}.')


def _finite(name, value):
    if value is None:
        raise ValueError(f'`{name}` is required.')
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'`{name}` must be a number, got {value!r}.') from None
    if not math.isfinite(number):
        raise ValueError(f'`{name}` must be finite, got {number}.')
    return number


def _positive_finite(name, value):
    number = _finite(name, value)
    if number <= 0:
        raise ValueError(f'`{name}` must be positive, got {number}.')
    return number
