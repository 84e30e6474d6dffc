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

"""Property tests: the robust fit recovers any affine model under gross outliers."""

from genpercept_ros.geometry.scale import fit_scale_shift
from genpercept_ros.geometry.scale_tracking import ReferenceBuffer
from genpercept_ros.geometry.synthetic import box_room
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np

DEPTH = box_room(48, 36).depth.astype(np.float64)


@settings(max_examples=30, deadline=None)
@given(space=st.sampled_from(['depth', 'disparity']),
       scale=st.floats(0.2, 20.0), shift=st.floats(-0.5, 0.5),
       outliers=st.floats(0.0, 0.4), seed=st.integers(0, 2 ** 16))
def test_fit_recovers_metric_depth_under_outliers(space, scale, shift, outliers, seed):
    target = DEPTH if space == 'depth' else 1.0 / DEPTH
    relative = (target - shift) / scale
    rng = np.random.default_rng(seed)
    reference = DEPTH.copy()
    bad = rng.random(DEPTH.shape) < outliers
    reference[bad] = rng.uniform(0.2, 30.0, np.count_nonzero(bad))
    fit = fit_scale_shift(relative, reference, None, space)
    assert fit.ok, fit.reason
    metric = fit.to_metric(relative)
    assert np.nanmedian(np.abs(metric - DEPTH) / DEPTH) < 0.01
    assert abs(fit.scale / scale - 1.0) < 0.01


@settings(max_examples=30, deadline=None)
@given(stamps=st.lists(st.floats(0.0, 100.0), min_size=1, max_size=12),
       query=st.floats(0.0, 100.0), tolerance=st.floats(0.0, 5.0))
def test_buffer_match_is_the_closest_stamp_within_tolerance(stamps, query, tolerance):
    buffer = ReferenceBuffer(tolerance_s=tolerance, capacity=100)
    for stamp in sorted(stamps):
        buffer.add(stamp, stamp)
    match = buffer.match(query)
    closest = min(stamps, key=lambda s: abs(s - query))
    if abs(closest - query) > tolerance:
        assert match is None
    else:
        assert match is not None
        assert abs(match[0] - query) == abs(closest - query)
        assert match[1] == match[0] - query
