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

"""Back-projection against the per-pixel pinhole model and analytic planes."""

from genpercept_ros.geometry import backproject
from genpercept_ros.geometry import decimate
from genpercept_ros.geometry import Intrinsics
import numpy as np
import pytest

INTRINSICS = Intrinsics(fx=40.0, fy=44.0, cx=9.5, cy=6.25, width=17, height=11)


def test_matches_per_pixel_pinhole():
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.3, 9.0, size=(11, 17)).astype(np.float32)
    xyz = backproject(depth, INTRINSICS)
    assert xyz.shape == (11, 17, 3) and xyz.dtype == np.float32
    for v in range(11):
        for u in range(17):
            z = float(depth[v, u])
            expected = [(u - 9.5) * z / 40.0, (v - 6.25) * z / 44.0, z]
            np.testing.assert_allclose(xyz[v, u], expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf, 0.0, -1.0])
def test_invalid_depth_gives_nan_point(bad):
    depth = np.full((11, 17), 2.0)
    depth[4, 5] = bad
    xyz = backproject(depth, INTRINSICS)
    assert np.isnan(xyz[4, 5]).all()
    assert np.isfinite(xyz[np.arange(11) != 4]).all()


def test_tilted_plane_is_recovered():
    # Plane n . X = d with n = (0.2, -0.5, 0.84), d = 3: the depth along each pixel's ray
    # (x/z, y/z, 1) is z = d / (n . ray).
    normal, offset = np.array([0.2, -0.5, 0.84]), 3.0
    v, u = np.mgrid[0:11, 0:17]
    rays = np.dstack([(u - 9.5) / 40.0, (v - 6.25) / 44.0, np.ones(u.shape)])
    depth = offset / (rays @ normal)
    xyz = backproject(depth, INTRINSICS).astype(np.float64)
    np.testing.assert_allclose(xyz @ normal, offset, rtol=1e-5)


def test_decimation_commutes_with_backprojection():
    rng = np.random.default_rng(5)
    depth = rng.uniform(0.5, 4.0, size=(11, 17)).astype(np.float32)
    for factor in (1, 2, 3, 4):
        small = decimate(depth, factor)
        assert small.shape == (-(-11 // factor), -(-17 // factor))
        np.testing.assert_allclose(backproject(small, INTRINSICS.decimated(factor)),
                                   decimate(backproject(depth, INTRINSICS), factor),
                                   rtol=1e-6, atol=1e-7)


def test_decimate_keeps_channels_and_is_contiguous():
    image = np.arange(6 * 8 * 3).reshape(6, 8, 3)
    out = decimate(image, 2)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, image[::2, ::2])
    with pytest.raises(ValueError, match='cannot decimate'):
        decimate(np.arange(5), 2)


def test_size_mismatch_and_bad_input_are_refused():
    with pytest.raises(ValueError, match='17x11'):
        backproject(np.ones((10, 17)), INTRINSICS)
    with pytest.raises(ValueError, match='2-D'):
        backproject(np.ones((11, 17, 1)), INTRINSICS)
    with pytest.raises(ValueError, match='invalid intrinsics'):
        backproject(np.ones((11, 17)), Intrinsics(0.0, 1.0, 0.0, 0.0, 17, 11))
