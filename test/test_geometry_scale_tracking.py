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

"""Scale over time: reference pairing, smoothing, holding the last fit and falling back."""

import math

from genpercept_ros.geometry.scale import fit_scale_shift
from genpercept_ros.geometry.scale_tracking import ReferenceBuffer
from genpercept_ros.geometry.scale_tracking import ScaleSmoother
from genpercept_ros.geometry.scale_tracking import ScaleTracker
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
    return tracker.update(stamp, fit)


def test_good_fit_then_missing_reference_holds_then_falls_back(plane_depth):
    buffer = ReferenceBuffer(tolerance_s=0.02)
    tracker = ScaleTracker(max_hold_s=0.5, smoother=ScaleSmoother(alpha=1.0))
    buffer.add(10.0, plane_depth)

    decision = _frame(plane_depth, 10.01, buffer, tracker)
    assert decision.source == 'fitted'
    assert decision.status == 'fitted'
    assert decision.scale == pytest.approx(2.0, rel=1e-6)
    assert decision.shift == pytest.approx(1.0, rel=1e-6)

    decision = _frame(plane_depth, 10.3, buffer, tracker)  # reference too old to pair
    assert decision.source == 'held'
    assert decision.status.startswith('holding last good fit (age 0.29 s')
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
    tracker = ScaleTracker(max_hold_s=1.0)
    relative = (plane_depth - 1.0) / 2.0
    good = fit_scale_shift(relative, plane_depth, None, 'depth')
    empty = fit_scale_shift(relative, np.full(plane_depth.shape, np.nan), None, 'depth')
    assert tracker.update(0.0, good).source == 'fitted'
    held = tracker.update(0.5, empty)
    assert held.source == 'held'
    assert 'fit rejected: too few reference points' in held.status
    assert held.fit is empty
    fallback = tracker.update(1.5, empty)
    assert fallback.source == 'fallback'
    assert 'last good fit 1.50 s old' in fallback.status


def test_no_reference_ever_falls_back_immediately():
    decision = ScaleTracker(max_hold_s=10.0).update(3.0, None)
    assert decision.source == 'fallback'
    assert decision.status == 'fallback to range (no reference)'


def test_time_going_backwards_resets_with_a_clear_status(plane_depth):
    tracker = ScaleTracker(max_hold_s=100.0)
    fit = fit_scale_shift((plane_depth - 1.0) / 2.0, plane_depth, None, 'depth')
    tracker.update(100.0, fit)
    decision = tracker.update(3.0, None)  # the bag looped
    assert decision.reset
    assert decision.source == 'fallback'  # the old fit is from the "future": not held
    assert decision.status.startswith('time went backwards by 97.000 s')
    assert 'scale state reset' in decision.status
    assert tracker.update(3.1, fit).source == 'fitted'


def test_smoother_blends_in_log_scale_and_bounds_the_step():
    smoother = ScaleSmoother(alpha=0.5)
    assert smoother.update(1.0, 0.0) == (1.0, 0.0)
    scale, shift = smoother.update(4.0, 2.0)
    assert scale == pytest.approx(2.0)  # geometric mean of 1 and 4
    assert shift == pytest.approx(1.0)

    bounded = ScaleSmoother(alpha=1.0, max_log_step=math.log(1.5))
    bounded.update(1.0, 0.0)
    scale, shift = bounded.update(10.0, 9.0)
    assert scale == pytest.approx(1.5)
    # The shift moves by the same fraction of the way as the log-scale did.
    assert shift == pytest.approx(9.0 * math.log(1.5) / math.log(10.0))

    constant = ScaleSmoother(alpha=0.3, max_log_step=0.1)
    for _ in range(200):
        scale, shift = constant.update(3.0, -0.5)
    assert scale == pytest.approx(3.0) and shift == pytest.approx(-0.5)


@pytest.mark.parametrize('kwargs', [{'alpha': 0.0}, {'alpha': 1.5}, {'max_log_step': -1.0}])
def test_smoother_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        ScaleSmoother(**kwargs)


def test_tracker_and_buffer_reject_bad_parameters():
    with pytest.raises(ValueError, match='max_hold_s'):
        ScaleTracker(max_hold_s=-1.0)
    with pytest.raises(ValueError, match='tolerance_s'):
        ReferenceBuffer(tolerance_s=float('nan'))
    with pytest.raises(ValueError, match='stamp_s'):
        ScaleTracker().update(float('inf'), None)


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
