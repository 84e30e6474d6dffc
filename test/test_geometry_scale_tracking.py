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

"""Scale over time: reference pairing, per-frame fits, holding the metric depth, falling back."""

import math

from genpercept_ros.geometry.scale import fit_scale_shift
from genpercept_ros.geometry.scale_tracking import MetricDepthTracker
from genpercept_ros.geometry.scale_tracking import ReferenceBuffer
from genpercept_ros.geometry.scale_tracking import UpTracker
from genpercept_ros.geometry.synthetic import plane_scene
import numpy as np
import pytest


@pytest.fixture(scope='module')
def plane_depth():
    return plane_scene(40, 30).depth.astype(np.float64)


def _frame(depth, stamp, buffer, tracker):
    """Run one frame the way the node does: pair a reference by stamp, fit, decide."""
    relative = (depth - 1.0) / 2.0
    paired = buffer.match(stamp)
    fit = None
    if paired is not None:
        fit = fit_scale_shift(relative, paired[0], None, 'depth')
    return tracker.update(stamp, relative, 'depth', fit)


def test_good_fit_then_missing_reference_holds_then_falls_back(plane_depth):
    buffer = ReferenceBuffer(tolerance_s=0.02)
    tracker = MetricDepthTracker(max_hold_s=0.5)
    buffer.add(10.0, plane_depth)

    decision = _frame(plane_depth, 10.01, buffer, tracker)
    assert decision.source == 'fitted'
    assert decision.status == 'fitted'
    assert decision.scale == pytest.approx(2.0, rel=1e-6)
    assert decision.shift == pytest.approx(1.0, rel=1e-6)

    decision = _frame(plane_depth, 10.3, buffer, tracker)  # reference too old to pair
    assert decision.source == 'held'
    assert decision.status.startswith('holding last good depth (age 0.29 s')
    assert 'no reference' in decision.status
    assert decision.scale == pytest.approx(2.0, rel=1e-6)
    assert decision.age_s == pytest.approx(0.29)

    decision = _frame(plane_depth, 10.6, buffer, tracker)
    assert decision.source == 'fallback'
    assert decision.status.startswith('fallback to range')
    assert decision.scale is None and not decision.ok


def test_late_reference_is_paired_when_it_arrives_within_tolerance(plane_depth):
    buffer = ReferenceBuffer(tolerance_s=0.05)
    assert buffer.match(5.0) is None
    buffer.add(5.03, plane_depth)  # the reference arrived after the image, stamped 30 ms later
    reference, offset = buffer.match(5.0)
    assert reference is plane_depth
    assert offset == pytest.approx(0.03)
    assert buffer.match(4.9) is None


def test_buffer_picks_the_closest_reference_and_respects_capacity():
    buffer = ReferenceBuffer(tolerance_s=1.0, capacity=3)
    for stamp in (1.0, 2.0, 3.0, 4.0):
        buffer.add(stamp, f'ref{stamp:g}')
    assert len(buffer) == 3
    assert buffer.match(2.4)[0] == 'ref2'
    assert buffer.match(2.6)[0] == 'ref3'
    assert buffer.match(1.0)[0] == 'ref2'  # ref1 was evicted; ref2 is within tolerance


def test_empty_reference_is_a_rejected_fit_and_holds_then_falls_back(plane_depth):
    tracker = MetricDepthTracker(max_hold_s=1.0)
    relative = (plane_depth - 1.0) / 2.0
    good = fit_scale_shift(relative, plane_depth, None, 'depth')
    empty = fit_scale_shift(relative, np.full(plane_depth.shape, np.nan), None, 'depth')
    assert tracker.update(0.0, relative, 'depth', good).source == 'fitted'
    held = tracker.update(0.5, relative, 'depth', empty)
    assert held.source == 'held'
    assert 'fit rejected: too few reference points' in held.status
    assert held.fit is empty
    fallback = tracker.update(1.5, relative, 'depth', empty)
    assert fallback.source == 'fallback'
    assert 'last good fit 1.50 s old' in fallback.status


def test_no_reference_ever_falls_back_immediately(plane_depth):
    decision = MetricDepthTracker(max_hold_s=10.0).update(3.0, plane_depth, 'depth', None)
    assert decision.source == 'fallback'
    assert decision.status == 'fallback to range (no reference)'


def test_time_going_backwards_resets_with_a_clear_status(plane_depth):
    tracker = MetricDepthTracker(max_hold_s=100.0)
    relative = (plane_depth - 1.0) / 2.0
    fit = fit_scale_shift(relative, plane_depth, None, 'depth')
    tracker.update(100.0, relative, 'depth', fit)
    decision = tracker.update(3.0, relative, 'depth', None)  # the bag looped
    assert decision.reset
    assert decision.source == 'fallback'  # the old depth is from the "future": not held
    assert decision.status.startswith('time went backwards by 97.000 s')
    assert 'scale state reset' in decision.status
    assert tracker.update(3.1, relative, 'depth', fit).source == 'fitted'


def _affine_frames(depth, space, count=8, seed=3):
    """Yield the same view through a different affine map per frame (up to 2x change)."""
    rng = np.random.default_rng(seed)
    target = depth if space == 'depth' else 1.0 / depth
    for _ in range(count):
        gain = rng.uniform(0.5, 2.0)
        offset = rng.uniform(-0.3, 0.3) * float(np.nanmedian(target))
        yield ((target - offset) / gain).astype(np.float32)


@pytest.mark.parametrize('space', ['depth', 'disparity'])
@pytest.mark.parametrize('smoothing', [0.0, 0.5, 0.9])
def test_changing_affine_map_never_leaks_between_frames(plane_depth, space, smoothing):
    """Per-frame fits stay exact whatever the smoothing; the old (scale, shift) EMA did not."""
    tracker = MetricDepthTracker(max_hold_s=1.0, smoothing=smoothing)
    for index, relative in enumerate(_affine_frames(plane_depth, space)):
        fit = fit_scale_shift(relative, plane_depth, None, space)
        decision = tracker.update(index * 0.1, relative, space, fit)
        assert decision.source == 'fitted'
        metric = np.asarray(
            (relative * decision.scale + decision.shift) if space == 'depth'
            else 1.0 / (relative * decision.scale + decision.shift))
        np.testing.assert_allclose(metric, plane_depth, rtol=1e-3)


@pytest.mark.parametrize('space', ['depth', 'disparity'])
def test_held_depth_is_refitted_to_each_new_normalisation(plane_depth, space):
    tracker = MetricDepthTracker(max_hold_s=5.0)
    frames = list(_affine_frames(plane_depth, space, count=5, seed=7))
    tracker.update(0.0, frames[0], space, fit_scale_shift(frames[0], plane_depth, None, space))
    for index, relative in enumerate(frames[1:], start=1):
        decision = tracker.update(index * 0.5, relative, space, None)  # no reference any more
        assert decision.source == 'held', decision.status
        y = decision.scale * relative + decision.shift
        metric = y if space == 'depth' else 1.0 / y
        np.testing.assert_allclose(metric, plane_depth, rtol=1e-3)


def test_held_depth_that_no_longer_matches_falls_back(plane_depth):
    tracker = MetricDepthTracker(max_hold_s=5.0)
    relative = (plane_depth - 1.0) / 2.0
    tracker.update(0.0, relative, 'depth', fit_scale_shift(relative, plane_depth))
    scrambled = np.random.default_rng(0).permutation(relative.ravel()).reshape(relative.shape)
    decision = tracker.update(0.1, scrambled, 'depth', None)
    assert decision.source == 'fallback'
    assert 'does not match this frame' in decision.status


def test_up_tracker_smooths_holds_and_forgets():
    tracker = UpTracker(max_hold_s=1.0, smoothing=0.5)
    up, age = tracker.update(0.0, (0.0, -1.0, 0.0))
    assert age == 0.0 and np.allclose(up, (0.0, -1.0, 0.0))
    tilted = np.array([0.0, -math.cos(0.2), -math.sin(0.2)])
    up, _ = tracker.update(0.1, tilted)
    assert math.acos(up @ tilted) == pytest.approx(0.1, abs=1e-9)  # halfway, renormalised
    held, age = tracker.update(0.9, None)
    assert np.array_equal(held, up) and age == pytest.approx(0.8)
    assert tracker.update(1.2, None) == (None, None)
    assert tracker.update(0.5, None) == (None, None)  # time went back: forgotten


def test_trackers_and_buffer_reject_bad_parameters(plane_depth):
    with pytest.raises(ValueError, match='max_hold_s'):
        MetricDepthTracker(max_hold_s=-1.0)
    with pytest.raises(ValueError, match='smoothing'):
        MetricDepthTracker(smoothing=1.0)
    with pytest.raises(ValueError, match='smoothing'):
        UpTracker(smoothing=-0.1)
    with pytest.raises(ValueError, match='tolerance_s'):
        ReferenceBuffer(tolerance_s=float('nan'))
    with pytest.raises(ValueError, match='stamp_s'):
        MetricDepthTracker().update(float('inf'), plane_depth, 'depth', None)


def test_buffer_forgets_references_from_before_a_bag_loop():
    buffer = ReferenceBuffer(tolerance_s=0.1)
    buffer.add(50.0, 'late')
    buffer.add(50.1, 'later')
    buffer.add(0.05, 'after loop')  # far older than anything buffered: the source restarted
    assert len(buffer) == 1
    assert buffer.match(0.0)[0] == 'after loop'
    assert buffer.match(50.0) is None
    buffer.add(0.0, 'slightly out of order')  # within a second: just reordered
    assert len(buffer) == 2


def test_smoothing_reduces_frame_to_frame_jitter_of_the_metric_depth(plane_depth):
    """Noisy per-frame fits of a still view: smoothing the metric depth steadies it."""
    spreads = {}
    for smoothing in (0.0, 0.8):
        tracker = MetricDepthTracker(max_hold_s=1.0, smoothing=smoothing)
        rng = np.random.default_rng(11)
        medians = []
        for index, relative in enumerate(_affine_frames(plane_depth, 'depth', count=30)):
            # This frame's own fit is off by up to +-3 % (a noisy reference).
            noisy = plane_depth * (1.0 + rng.uniform(-0.03, 0.03))
            fit = fit_scale_shift(relative, noisy, None, 'depth')
            decision = tracker.update(index * 0.1, relative, 'depth', fit)
            metric = decision.scale * relative + decision.shift
            medians.append(float(np.median(metric / plane_depth)))
        spreads[smoothing] = float(np.std(medians[5:]))
    assert spreads[0.8] < 0.6 * spreads[0.0]
