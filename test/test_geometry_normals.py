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

"""Normals from depth on analytic scenes, angular agreement."""

from genpercept_ros.geometry.normals import angular_agreement
from genpercept_ros.geometry.normals import normals_from_depth
from genpercept_ros.geometry.synthetic import box_room
from genpercept_ros.geometry.synthetic import plane_scene
import numpy as np
import pytest


def _pinhole_cloud(scene):
    """Back-project with the textbook pinhole model (independent of the package's code)."""
    k = scene.intrinsics
    v, u = np.mgrid[0:k.height, 0:k.width].astype(np.float64)
    z = scene.depth.astype(np.float64)
    return np.stack([(u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z], axis=-1)


def _angles_deg(a, b):
    return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)))


def test_normals_from_depth_recover_a_tilted_plane():
    scene = plane_scene(48, 36, normal=(0.4, -0.5, -1.0), point=(0.0, 0.0, 2.5))
    normals = normals_from_depth(_pinhole_cloud(scene))
    assert normals.shape == (36, 48, 3) and normals.dtype == np.float32
    assert np.isnan(normals[0]).all() and np.isnan(normals[:, -1]).all()
    inner = normals[1:-1, 1:-1]
    expected = np.array([0.4, -0.5, -1.0]) / np.linalg.norm([0.4, -0.5, -1.0])
    # float32 depth and points limit the agreement to a few hundredths of a degree.
    assert _angles_deg(inner, expected).max() < 0.1
    np.testing.assert_allclose(scene.normals[5, 5], expected, atol=1e-6)


def test_normals_from_depth_face_the_camera_whatever_the_plane_sign():
    scene = plane_scene(20, 16, normal=(-0.2, 0.3, 1.0), point=(0.5, 0.0, 3.0))
    cloud = _pinhole_cloud(scene)
    normals = normals_from_depth(cloud)
    inner = (slice(1, -1), slice(1, -1))
    assert (np.sum(normals[inner] * cloud[inner], axis=-1) < 0).all()
    assert _angles_deg(normals[inner], scene.normals[inner]).max() < 0.1


def test_normals_from_depth_recover_the_box_room_faces():
    scene = box_room(96, 72)
    normals = normals_from_depth(_pinhole_cloud(scene))
    # Pixels whose 3x3 neighbourhood lies on one planar face have exact central differences.
    key = scene.labels * 8 + np.argmax(np.abs(scene.normals), axis=-1) * 2 + (
        np.sum(scene.normals, axis=-1) > 0)
    same = np.ones(key.shape, dtype=bool)
    for dv in (-1, 0, 1):
        for du in (-1, 0, 1):
            same &= np.roll(np.roll(key, dv, axis=0), du, axis=1) == key
    same[[0, -1], :] = False
    same[:, [0, -1]] = False
    assert same.mean() > 0.8
    assert np.isfinite(normals[same]).all()
    assert _angles_deg(normals[same], scene.normals[same]).max() < 0.1
    stats = angular_agreement(normals, scene.normals)
    assert stats['median_deg'] < 0.1
    assert stats['within_11_25'] > 0.85


def test_max_relative_jump_drops_normals_across_depth_edges():
    depth = np.full((10, 12), 2.0, dtype=np.float32)
    depth[:, 6:] = 4.0
    k_fx, k_cx = 10.0, 5.5
    v, u = np.mgrid[0:10, 0:12].astype(np.float32)
    cloud = np.stack([(u - k_cx) * depth / k_fx, (v - 4.5) * depth / k_fx, depth], axis=-1)
    plain = normals_from_depth(cloud)
    guarded = normals_from_depth(cloud, max_relative_jump=0.2)
    # Across the step the central differences mix both surfaces: a finite but wrong normal.
    assert np.isfinite(plain[1:-1, 5:7]).all()
    assert _angles_deg(plain[1:-1, 5:7], np.array([0.0, 0.0, -1.0])).min() > 10.0
    assert np.isnan(guarded[:, 5:7]).all()
    np.testing.assert_allclose(guarded[1:-1, 1:5], np.broadcast_to([0, 0, -1.0], (8, 4, 3)),
                               atol=1e-6)
    np.testing.assert_allclose(guarded[1:-1, 7:-1], np.broadcast_to([0, 0, -1.0], (8, 4, 3)),
                               atol=1e-6)
    with pytest.raises(ValueError, match='max_relative_jump'):
        normals_from_depth(cloud, max_relative_jump=0.0)


def test_invalid_depth_gives_nan_normals_around_it():
    scene = plane_scene(12, 10)
    cloud = _pinhole_cloud(scene)
    cloud[5, 5] = np.nan
    normals = normals_from_depth(cloud)
    for v, u in ((5, 5), (4, 5), (6, 5), (5, 4), (5, 6)):
        assert np.isnan(normals[v, u]).all()
    assert np.isfinite(normals[4, 4]).all()
    assert np.isnan(normals_from_depth(cloud[:2])).all()


def test_angular_agreement_statistics():
    angles = np.radians([0.0, 10.0, 20.0, 45.0])
    a = np.tile([0.0, 0.0, -1.0], (4, 1))
    b = np.stack([np.sin(angles), np.zeros(4), -np.cos(angles)], axis=-1) * 3.0  # not unit
    a = np.concatenate([a, [[np.nan, 0, 0], [0, 0, -1]]])
    b = np.concatenate([b, [[0, 0, -1], [0, 0, 0]]])
    stats = angular_agreement(a, b)
    assert stats['n'] == 4
    assert stats['mean_deg'] == pytest.approx(18.75)
    assert stats['median_deg'] == pytest.approx(15.0)
    assert stats['within_11_25'] == pytest.approx(0.5)
    assert stats['within_30'] == pytest.approx(0.75)
    masked = angular_agreement(a, b, mask=np.array([True, False, False, True, True, True]))
    assert masked['n'] == 2 and masked['mean_deg'] == pytest.approx(22.5)
    empty = angular_agreement(a[4:], b[4:])
    assert empty['n'] == 0 and np.isnan(empty['mean_deg'])
