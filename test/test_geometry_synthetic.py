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

"""Analytic scenes: ray-cast depth and normals against the surfaces' equations."""

import math

from genpercept_ros.geometry.intrinsics import Intrinsics
from genpercept_ros.geometry.synthetic import BACK_WALL
from genpercept_ros.geometry.synthetic import BOX_LABEL_START
from genpercept_ros.geometry.synthetic import box_room
from genpercept_ros.geometry.synthetic import CEILING
from genpercept_ros.geometry.synthetic import DEFAULT_BOXES
from genpercept_ros.geometry.synthetic import FLOOR
from genpercept_ros.geometry.synthetic import intrinsics_from_fov
from genpercept_ros.geometry.synthetic import LEFT_WALL
from genpercept_ros.geometry.synthetic import NO_HIT
from genpercept_ros.geometry.synthetic import plane_scene
from genpercept_ros.geometry.synthetic import RIGHT_WALL
import numpy as np
import pytest


def _points(scene):
    k = scene.intrinsics
    v, u = np.mgrid[0:k.height, 0:k.width].astype(np.float64)
    z = scene.depth.astype(np.float64)
    return np.stack([(u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z], axis=-1)


def test_intrinsics_from_fov():
    k = intrinsics_from_fov(640, 480, 90.0)
    assert isinstance(k, Intrinsics)
    assert k.fx == pytest.approx(320.0) and k.fy == pytest.approx(320.0)
    assert (k.cx, k.cy, k.width, k.height) == (319.5, 239.5, 640, 480)
    with pytest.raises(ValueError, match='fov_deg'):
        intrinsics_from_fov(64, 48, 180.0)


def test_plane_depth_satisfies_the_plane_equation():
    normal = np.array([0.3, -0.4, -1.0])
    point = np.array([0.2, 0.1, 2.0])
    scene = plane_scene(40, 30, normal=normal, point=point)
    assert scene.depth.shape == (30, 40) and scene.depth.dtype == np.float32
    assert np.isfinite(scene.depth).all() and (scene.labels == 0).all()
    unit = normal / np.linalg.norm(normal)
    residual = (_points(scene) - point) @ unit
    assert np.abs(residual).max() < 1e-5 * 4.0  # float32 depth
    np.testing.assert_allclose(scene.normals, np.broadcast_to(unit, scene.normals.shape),
                               atol=1e-6)
    # On the optical axis the depth is the axis crossing: z = n.p0 / n_z.
    k = intrinsics_from_fov(41, 31, 70.0)
    centre = plane_scene(41, 31, intrinsics=k, normal=normal, point=point).depth[15, 20]
    assert centre == pytest.approx(unit @ point / unit[2], rel=1e-6)


def test_plane_seen_edge_on_or_behind_is_nan():
    # The plane y = 1 (a floor) is only hit by rays pointing down (v > cy).
    scene = plane_scene(20, 21, normal=(0.0, 1.0, 0.0), point=(0.0, 1.0, 0.0))
    assert np.isnan(scene.depth[:11]).all()
    assert (scene.labels[:11] == NO_HIT).all() and (scene.rgb[:11] == 0).all()
    assert np.isfinite(scene.depth[11:]).all()
    np.testing.assert_allclose(scene.normals[11:], np.broadcast_to([0, -1.0, 0], (10, 20, 3)))
    with pytest.raises(ValueError, match='camera centre'):
        plane_scene(8, 8, normal=(0, 0, 1), point=(1.0, 0.0, 0.0))


def test_box_room_surfaces_lie_on_their_planes():
    room_w, room_h, room_d, cam_h = 4.0, 2.6, 6.0, 1.2
    scene = box_room(96, 72, room_size=(room_w, room_h, room_d), camera_height=cam_h)
    p = _points(scene)
    labels = scene.labels
    assert np.isfinite(scene.depth).all()
    tol = 1e-5 * room_d
    expectations = {
        FLOOR: (1, cam_h, [0, -1, 0]),
        CEILING: (1, cam_h - room_h, [0, 1, 0]),
        LEFT_WALL: (0, -room_w / 2, [1, 0, 0]),
        RIGHT_WALL: (0, room_w / 2, [-1, 0, 0]),
        BACK_WALL: (2, room_d, [0, 0, -1]),
    }
    for label, (axis, value, normal) in expectations.items():
        on = labels == label
        assert on.any(), label
        assert np.abs(p[on][:, axis] - value).max() < tol, label
        np.testing.assert_array_equal(scene.normals[on], np.broadcast_to(normal, (on.sum(), 3)))
    for index, (box_min, box_max) in enumerate(DEFAULT_BOXES):
        on = labels == BOX_LABEL_START + index
        assert on.any()
        q = p[on]
        inside = np.all((q >= np.array(box_min) - tol) & (q <= np.array(box_max) + tol), axis=1)
        assert inside.all()
        # Every box point sits on one face: a coordinate equals a face plane.
        on_face = np.min(np.abs(np.concatenate([q - box_min, q - box_max], axis=1)), axis=1)
        assert on_face.max() < tol
        n = scene.normals[on]
        assert (np.sum(n * q, axis=1) < 0).all()  # visible faces face the camera


def test_box_room_depth_is_the_nearest_surface():
    scene = box_room(64, 48)
    k = scene.intrinsics
    # The ray through the image centre column, bottom row, must hit the floor or a box; the
    # floor distance along it is h / ((v - cy) / fy).
    v = k.height - 1
    u = int(round(k.cx))
    floor_z = 1.2 / ((v - k.cy) / k.fy)
    assert scene.depth[v, u] <= floor_z * (1 + 1e-6)
    # Occlusion: wherever a box is seen, the room behind it is farther.
    empty = box_room(64, 48, boxes=())
    boxes = scene.labels >= BOX_LABEL_START
    assert (scene.depth[boxes] < empty.depth[boxes]).all()
    np.testing.assert_array_equal(scene.depth[~boxes], empty.depth[~boxes])


def test_box_room_rendering_is_textured_and_shaded():
    scene = box_room(96, 72)
    assert scene.rgb.shape == (72, 96, 3) and scene.rgb.dtype == np.uint8
    for label in (FLOOR, LEFT_WALL, BACK_WALL):
        values = scene.rgb[scene.labels == label].astype(float)
        assert values.std(axis=0).max() > 5.0, label  # checker texture, not a flat colour
    assert len(np.unique(scene.rgb.reshape(-1, 3), axis=0)) > 50


def test_scene_argument_errors():
    with pytest.raises(ValueError, match='room_size'):
        box_room(8, 8, room_size=(4.0, 0.0, 6.0))
    with pytest.raises(ValueError, match='camera_height'):
        box_room(8, 8, camera_height=3.0)
    with pytest.raises(ValueError, match='min < max'):
        box_room(8, 8, boxes=(((0, 0, 3), (1, 1, 2)),))
    with pytest.raises(ValueError, match='intrinsics'):
        box_room(8, 8, intrinsics=Intrinsics(10.0, 10.0, 3.5, 3.5, 16, 8))
    with pytest.raises(ValueError, match='normal'):
        plane_scene(8, 8, normal=(0.0, 0.0, math.nan))


def test_package_backprojection_recovers_the_room_geometry():
    from genpercept_ros.geometry.backproject import backproject
    from genpercept_ros.geometry.normals import angular_agreement
    from genpercept_ros.geometry.normals import normals_from_depth
    scene = box_room(80, 60)
    xyz = backproject(scene.depth, scene.intrinsics).astype(np.float64)
    np.testing.assert_allclose(xyz, _points(scene), rtol=1e-5, atol=1e-6)
    floor = scene.labels == FLOOR
    assert np.abs(xyz[floor][:, 1] - 1.2).max() < 1e-5
    back = scene.labels == BACK_WALL
    assert np.abs(xyz[back][:, 2] - 6.0).max() < 1e-5
    stats = angular_agreement(normals_from_depth(xyz), scene.normals)
    assert stats['median_deg'] < 0.1 and stats['within_11_25'] > 0.85
