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

"""Intrinsics: validity, matrix, and rays preserved under resizing and decimation."""

import math

from genpercept_ros.geometry import Intrinsics
import numpy as np
import pytest

BASE = Intrinsics(fx=525.0, fy=520.0, cx=319.5, cy=239.25, width=640, height=480)


def ray(intrinsics, u, v):
    """Direction (x/z, y/z) through continuous pixel position (u, v), by the pinhole model."""
    return ((u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy)


def test_is_valid():
    assert BASE.is_valid()
    assert not Intrinsics(0.0, 1.0, 0.0, 0.0, 4, 4).is_valid()
    assert not Intrinsics(1.0, -1.0, 0.0, 0.0, 4, 4).is_valid()
    assert not Intrinsics(1.0, 1.0, math.nan, 0.0, 4, 4).is_valid()
    assert not Intrinsics(math.inf, 1.0, 0.0, 0.0, 4, 4).is_valid()
    assert not Intrinsics(1.0, 1.0, 0.0, 0.0, 0, 4).is_valid()


def test_scaled_by_hand():
    half = BASE.scaled(320, 240)
    assert (half.fx, half.fy, half.width, half.height) == (262.5, 260.0, 320, 240)
    assert half.cx == pytest.approx((319.5 + 0.5) * 0.5 - 0.5)
    assert half.cy == pytest.approx((239.25 + 0.5) * 0.5 - 0.5)
    assert BASE.scaled(640, 480) == BASE


@pytest.mark.parametrize('size', [(320, 240), (1280, 960), (768, 576), (500, 333)])
def test_scaled_intrinsics_keep_rays(size):
    scaled = BASE.scaled(*size)
    sx, sy = size[0] / 640, size[1] / 480
    # The image edges map onto each other: continuous position p (pixel centres at integers,
    # edges at -0.5 and W - 0.5) becomes (p + 0.5) s - 0.5 and must keep its ray.
    for u, v in [(-0.5, -0.5), (0.0, 0.0), (319.5, 239.25), (639.5, 479.5), (100.3, 7.9)]:
        u2, v2 = (u + 0.5) * sx - 0.5, (v + 0.5) * sy - 0.5
        np.testing.assert_allclose(ray(scaled, u2, v2), ray(BASE, u, v), atol=1e-12)


def test_halving_puts_new_pixel_centre_between_two_old_ones():
    half = BASE.scaled(320, 240)
    old_left, old_right = ray(BASE, 0, 0), ray(BASE, 1, 1)
    np.testing.assert_allclose(ray(half, 0, 0), np.add(old_left, old_right) / 2, atol=1e-12)


def test_decimated_samples_every_nth_pixel():
    decimated = BASE.decimated(3)
    assert (decimated.width, decimated.height) == (214, 160)
    for u, v in [(0, 0), (5, 7), (213, 159)]:
        np.testing.assert_allclose(ray(decimated, u, v), ray(BASE, 3 * u, 3 * v), atol=1e-12)
    assert BASE.decimated(1) == BASE


@pytest.mark.parametrize('factor', [0, -1, 1.5, True])
def test_bad_decimation_factor(factor):
    with pytest.raises(ValueError, match='decimation factor'):
        BASE.decimated(factor)


@pytest.mark.parametrize('size', [(0, 10), (10, -2)])
def test_bad_scaled_size(size):
    with pytest.raises(ValueError, match='cannot scale'):
        BASE.scaled(*size)


def test_rays_point_through_each_pixel():
    """A point at depth z on the ray of (u, v) projects back onto (u, v)."""
    intrinsics = Intrinsics(fx=100.0, fy=120.0, cx=30.5, cy=20.25, width=64, height=48)
    rays = intrinsics.rays()
    assert rays.shape == (48, 64, 3) and rays.dtype == np.float32
    point = 2.5 * rays[7, 11].astype(np.float64)
    u = intrinsics.fx * point[0] / point[2] + intrinsics.cx
    v = intrinsics.fy * point[1] / point[2] + intrinsics.cy
    np.testing.assert_allclose((u, v), (11.0, 7.0), atol=1e-4)
    np.testing.assert_array_equal(rays[..., 2], 1.0)
