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

"""Projection of metric references (points, depth images) onto the prediction's pixels."""

from genpercept_ros.geometry.intrinsics import Intrinsics
from genpercept_ros.geometry.scale import fit_scale_shift
from genpercept_ros.geometry.scale_reference import reference_from_depth_image
from genpercept_ros.geometry.scale_reference import reference_from_points
from genpercept_ros.geometry.synthetic import box_room
import numpy as np
import pytest

K = Intrinsics(fx=50.0, fy=48.0, cx=31.5, cy=23.0, width=64, height=48)


def _pinhole_points(us, vs, zs, intrinsics):
    """Back-project pixel centres with the textbook pinhole model (independent of the code)."""
    us, vs, zs = (np.asarray(a, dtype=np.float64) for a in (us, vs, zs))
    return np.stack([(us - intrinsics.cx) * zs / intrinsics.fx,
                     (vs - intrinsics.cy) * zs / intrinsics.fy, zs], axis=-1)


def test_points_land_on_the_pixels_they_came_from():
    us = np.array([0, 10, 63, 31, 5])
    vs = np.array([0, 20, 47, 23, 40])
    zs = np.array([1.0, 2.5, 7.0, 0.4, 3.3])
    depth = reference_from_points(_pinhole_points(us, vs, zs, K), K)
    assert depth.shape == (48, 64) and depth.dtype == np.float32
    np.testing.assert_allclose(depth[vs, us], zs, rtol=1e-6)
    assert np.count_nonzero(np.isfinite(depth)) == len(zs)


def test_nearest_point_wins_and_invalid_points_are_dropped():
    near = _pinhole_points([12], [7], [1.5], K)
    far = _pinhole_points([12], [7], [4.0], K)
    # A point 0.3 px off the centre still belongs to the same pixel (centre convention).
    off_centre = _pinhole_points([12.3], [6.8], [2.0], K)
    behind = _pinhole_points([20], [20], [-2.0], K)
    outside = _pinhole_points([64.6], [10], [2.0], K)
    points = np.concatenate([far, off_centre, near, behind, outside, [[np.nan, 0.0, 1.0]]])
    depth = reference_from_points(points, K)
    assert depth[7, 12] == pytest.approx(1.5)
    assert np.count_nonzero(np.isfinite(depth)) == 1
    reversed_depth = reference_from_points(points[::-1], K)
    np.testing.assert_array_equal(depth, reversed_depth)


def test_projected_scene_points_reproduce_the_scene_depth():
    scene = box_room(64, 48, intrinsics=K)
    vs, us = np.mgrid[0:48, 0:64]
    points = _pinhole_points(us, vs, scene.depth, K).reshape(-1, 3)
    depth = reference_from_points(points, K)
    np.testing.assert_allclose(depth, scene.depth, rtol=1e-5)


def test_depth_image_with_identical_intrinsics_is_unchanged():
    scene = box_room(64, 48, intrinsics=K)
    ref = scene.depth.copy()
    ref[3, 4] = 0.0
    ref[5, 6] = np.inf
    out = reference_from_depth_image(ref, K, K)
    assert np.isnan(out[3, 4]) and np.isnan(out[5, 6])
    finite = np.isfinite(out)
    np.testing.assert_array_equal(out[finite], scene.depth[finite])
    assert np.count_nonzero(~finite) == 2


def test_depth_image_of_other_resolution_is_sampled_at_the_nearest_reference_pixel():
    ref_k = K.scaled(32, 24)
    rng = np.random.default_rng(0)
    ref = rng.uniform(1.0, 5.0, (24, 32)).astype(np.float32)
    out = reference_from_depth_image(ref, ref_k, K)
    # Our pixel u sees the ray (u - cx) / fx; the reference pixel on that ray is
    # round(fx' (u - cx) / fx + cx'), with .5 rounding up (pixel-centre convention).
    u_ref = np.floor(ref_k.fx * (np.arange(64) - K.cx) / K.fx + ref_k.cx + 0.5).astype(int)
    v_ref = np.floor(ref_k.fy * (np.arange(48) - K.cy) / K.fy + ref_k.cy + 0.5).astype(int)
    assert u_ref.min() >= 0 and u_ref.max() < 32
    np.testing.assert_array_equal(out, ref[v_ref[:, None], u_ref[None, :]])


def test_narrower_reference_leaves_nan_outside_its_view():
    ref_k = Intrinsics(fx=50.0, fy=48.0, cx=15.5, cy=11.5, width=32, height=24)
    ref = np.full((24, 32), 2.0, dtype=np.float32)
    out = reference_from_depth_image(ref, ref_k, K)
    assert np.isnan(out[0, 0]) and np.isnan(out[-1, -1])
    assert out[int(K.cy), int(K.cx)] == pytest.approx(2.0)
    # Same focal length, half the size: half our field of view per axis, a quarter of the pixels.
    assert 0.2 < np.isfinite(out).mean() < 0.3


def test_resampled_reference_supports_a_scale_fit():
    scene = box_room(64, 48, intrinsics=K)
    big_k = K.scaled(128, 96)
    ref = box_room(128, 96, intrinsics=big_k).depth
    reference = reference_from_depth_image(ref, big_k, K)
    relative = (scene.depth - 1.0) / 4.0
    fit = fit_scale_shift(relative, reference, None, 'depth')
    assert fit.ok, fit.reason
    assert fit.scale == pytest.approx(4.0, rel=0.01)
    assert fit.shift == pytest.approx(1.0, rel=0.02)


def test_reference_argument_errors():
    with pytest.raises(ValueError, match='xyz_optical'):
        reference_from_points(np.zeros((4, 2)), K)
    with pytest.raises(ValueError, match='ref_depth'):
        reference_from_depth_image(np.zeros((10, 10)), K, K)
    with pytest.raises(ValueError, match='focal'):
        reference_from_points(np.zeros((4, 3)), Intrinsics(0.0, 1.0, 0.0, 0.0, 4, 4))
