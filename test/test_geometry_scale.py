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

"""Relative-to-metric conversion and robust scale/shift fitting on analytic scenes."""

from genpercept_ros.geometry.scale import fit_scale_shift
from genpercept_ros.geometry.scale import relative_to_metric
from genpercept_ros.geometry.scale import space_for_kind
from genpercept_ros.geometry.synthetic import box_room
import numpy as np
import pytest


@pytest.fixture(scope='module')
def room_depth():
    depth = box_room(80, 60).depth.astype(np.float64)
    assert np.isfinite(depth).all()
    return depth


def _with_outliers(depth, fraction, seed):
    """Replace ``fraction`` of the pixels by gross errors (0.3..20 m) and add 0.2 % noise."""
    rng = np.random.default_rng(seed)
    reference = depth * (1.0 + 0.002 * rng.standard_normal(depth.shape))
    outliers = rng.random(depth.shape) < fraction
    reference[outliers] = rng.uniform(0.3, 20.0, np.count_nonzero(outliers))
    return reference


def _median_relative_error(estimate, truth):
    return float(np.nanmedian(np.abs(estimate - truth) / truth))


# ----------------------------------------------------------------------------- relative_to_metric

def test_range_depth_is_linear_between_near_and_far():
    relative = np.array([0.0, 0.25, 0.5, 1.0], dtype=np.float32)
    metric = relative_to_metric(relative, 'relative_depth', 'range', near_m=0.5, far_m=4.5)
    np.testing.assert_allclose(metric, [0.5, 1.5, 2.5, 4.5], rtol=1e-6)
    assert metric.dtype == np.float32


def test_range_disparity_is_linear_in_inverse_depth():
    relative = np.array([1.0, 0.5, 0.0], dtype=np.float32)
    metric = relative_to_metric(relative, 'relative_disparity', 'range', near_m=1.0, far_m=4.0)
    # near = 1 at r = 1, far at r = 0, and halfway in inverse depth: 1 / ((1 + 1/4) / 2) = 1.6 m.
    np.testing.assert_allclose(metric, [1.0, 1.6, 4.0], rtol=1e-6)


def test_fixed_modes_apply_the_affine_model_in_their_space():
    relative = np.array([0.0, 0.5, 1.0], dtype=np.float32)
    depth = relative_to_metric(relative, 'relative_depth', 'fixed', scale=3.0, shift=0.5)
    np.testing.assert_allclose(depth, [0.5, 2.0, 3.5], rtol=1e-6)
    disparity = relative_to_metric(relative, 'relative_disparity', 'fixed', scale=0.8, shift=0.2)
    np.testing.assert_allclose(disparity, [5.0, 1.0 / 0.6, 1.0], rtol=1e-6)


def test_invalid_and_non_positive_results_are_nan():
    relative = np.array([np.nan, np.inf, 0.0, 1.0], dtype=np.float32)
    depth = relative_to_metric(relative, 'relative_depth', 'fixed', scale=2.0, shift=-1.0)
    assert np.isnan(depth[:3]).all()  # NaN, inf, and 2*0 - 1 < 0
    assert depth[3] == pytest.approx(1.0)
    disparity = relative_to_metric(np.array([0.0]), 'relative_disparity', 'fixed', scale=1.0)
    assert np.isnan(disparity[0])  # 1 / 0


@pytest.mark.parametrize('kwargs, name', [
    ({'mode': 'range', 'near_m': 2.0, 'far_m': 1.0}, 'near_m'),
    ({'mode': 'range', 'near_m': -1.0, 'far_m': 1.0}, 'near_m'),
    ({'mode': 'range', 'near_m': 1.0, 'far_m': float('inf')}, 'far_m'),
    ({'mode': 'range', 'near_m': 1.0}, 'far_m'),
    ({'mode': 'fixed'}, 'scale'),
    ({'mode': 'fixed', 'scale': 0.0}, 'scale'),
    ({'mode': 'fixed', 'scale': 1.0, 'shift': float('nan')}, 'shift'),
    ({'mode': 'metric'}, 'mode'),
])
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f'`{name}`'):
        relative_to_metric(np.zeros(3), 'relative_depth', **kwargs)


def test_bad_kind_is_rejected():
    with pytest.raises(ValueError, match='`kind`'):
        relative_to_metric(np.zeros(3), 'normal', 'range', near_m=1.0, far_m=2.0)
    assert space_for_kind('relative_disparity') == 'disparity'


# ----------------------------------------------------------------------------- fit_scale_shift

def test_depth_fit_recovers_scale_and_depth_with_30_percent_outliers(room_depth):
    scale, shift = 4.0, 1.5
    relative = (room_depth - shift) / scale
    reference = _with_outliers(room_depth, 0.3, seed=1)
    fit = fit_scale_shift(relative, reference, None, 'depth')
    assert fit.ok, fit.reason
    assert fit.scale == pytest.approx(scale, rel=0.01)
    assert fit.shift == pytest.approx(shift, rel=0.01)
    assert 0.6 < fit.inlier_ratio < 0.8
    assert fit.n_points == room_depth.size
    assert _median_relative_error(fit.to_metric(relative), room_depth) < 0.01


def test_disparity_fit_works_in_inverse_depth_with_30_percent_outliers(room_depth):
    # A disparity model is affine in 1/d with near = 1: r = (1/d - 1/far) / (1/near - 1/far).
    near, far = float(room_depth.min()), float(room_depth.max())
    relative = (1.0 / room_depth - 1.0 / far) / (1.0 / near - 1.0 / far)
    reference = _with_outliers(room_depth, 0.3, seed=2)
    fit = fit_scale_shift(relative, reference, None, 'disparity')
    assert fit.ok, fit.reason
    assert fit.space == 'disparity'
    assert fit.scale == pytest.approx(1.0 / near - 1.0 / far, rel=0.01)
    metric = relative_to_metric(relative, 'relative_disparity', 'fixed', scale=fit.scale,
                                shift=fit.shift)
    assert _median_relative_error(metric, room_depth) < 0.01
    # The same data fitted in the wrong (depth) space cannot be matched as well.
    wrong = fit_scale_shift(relative, reference, None, 'depth', min_inlier_ratio=0.0)
    assert _median_relative_error(wrong.to_metric(relative), room_depth) > 0.01


def test_sparse_lidar_like_reference_through_valid_mask(room_depth):
    relative = (room_depth - 0.7) / 5.0
    reference = _with_outliers(room_depth, 0.3, seed=3)
    mask = np.zeros(room_depth.shape, dtype=bool)
    mask[::6, :] = True  # scan lines
    reference[~mask] = np.nan
    fit = fit_scale_shift(relative, reference, mask, 'depth')
    assert fit.ok, fit.reason
    assert fit.n_points == np.count_nonzero(mask)
    assert fit.n_ignored == 0
    assert _median_relative_error(fit.to_metric(relative), room_depth) < 0.01


def test_non_finite_and_non_positive_reference_points_are_ignored_and_counted(room_depth):
    relative = (room_depth - 1.0) / 3.0
    reference = room_depth.copy()
    reference.flat[::7] = np.nan
    reference.flat[1::7] = np.inf
    reference.flat[2::7] = 0.0
    n_bad = len(range(0, reference.size, 7)) + len(range(1, reference.size, 7)) + len(
        range(2, reference.size, 7))
    fit = fit_scale_shift(relative, reference, None, 'depth')
    assert fit.ok
    assert fit.n_ignored == n_bad
    assert fit.n_points == reference.size - n_bad
    assert fit.scale == pytest.approx(3.0, rel=1e-6)
    assert fit.shift == pytest.approx(1.0, rel=1e-6)
    assert fit.residual < 1e-6


def test_fit_is_deterministic_for_a_seed(room_depth):
    relative = (room_depth - 1.0) / 3.0
    reference = _with_outliers(room_depth, 0.4, seed=4)
    first = fit_scale_shift(relative, reference, None, 'depth', seed=7)
    second = fit_scale_shift(relative, reference, None, 'depth', seed=7)
    assert first == second


def test_too_few_points_is_rejected(room_depth):
    mask = np.zeros(room_depth.shape, dtype=bool)
    mask.flat[:5] = True
    fit = fit_scale_shift(room_depth / 6.0, room_depth, mask, 'depth', min_points=20)
    assert not fit.ok
    assert 'too few' in fit.reason
    assert fit.n_points == 5


def test_empty_reference_is_rejected(room_depth):
    fit = fit_scale_shift(room_depth, np.full(room_depth.shape, np.nan), None, 'disparity')
    assert not fit.ok
    assert 'too few' in fit.reason
    assert fit.n_points == 0
    assert fit.n_ignored == room_depth.size
    assert np.isnan(fit.scale)


def test_constant_relative_map_is_degenerate(room_depth):
    fit = fit_scale_shift(np.full(room_depth.shape, 0.5), room_depth, None, 'depth')
    assert not fit.ok
    assert 'degenerate' in fit.reason


def test_unrelated_reference_gives_poor_inlier_ratio(room_depth):
    rng = np.random.default_rng(5)
    reference = rng.uniform(0.5, 10.0, room_depth.shape)
    fit = fit_scale_shift(room_depth / 6.0, reference, None, 'depth', min_inlier_ratio=0.5)
    assert not fit.ok
    assert 'inlier ratio' in fit.reason
    assert fit.inlier_ratio < 0.5


def test_inverted_relative_map_gives_non_positive_scale(room_depth):
    relative = 1.0 - room_depth / room_depth.max()  # near = 1 fed as if it were depth
    fit = fit_scale_shift(relative, room_depth, None, 'depth')
    assert not fit.ok
    assert 'non-positive scale' in fit.reason
    assert fit.scale < 0


def test_fit_argument_errors(room_depth):
    with pytest.raises(ValueError, match='same shape'):
        fit_scale_shift(room_depth, room_depth[:-1], None, 'depth')
    with pytest.raises(ValueError, match='`valid_mask`'):
        fit_scale_shift(room_depth, room_depth, np.ones(3, bool), 'depth')
    with pytest.raises(ValueError, match='`space`'):
        fit_scale_shift(room_depth, room_depth, None, 'metric')
    with pytest.raises(ValueError, match='`inlier_threshold`'):
        fit_scale_shift(room_depth, room_depth, None, 'depth', inlier_threshold=0.0)
