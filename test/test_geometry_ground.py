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

"""Metric scale from the floor, against ray-cast rooms seen from known heights and angles."""

import math

from genpercept_ros.geometry import fit_ground_scale
from genpercept_ros.geometry import fit_scale_shift
from genpercept_ros.geometry import ScaleShiftFit
from genpercept_ros.geometry.ground import estimate_up
from genpercept_ros.geometry.ground import floor_depth
from genpercept_ros.geometry.ground import height_above_floor
from genpercept_ros.geometry.ground import rotation_from_quaternion
from genpercept_ros.geometry.ground import up_from_pitch_roll
from genpercept_ros.geometry.ground import up_from_rotation
from genpercept_ros.geometry.intrinsics import Intrinsics
from genpercept_ros.geometry.synthetic import box_room
from genpercept_ros.geometry.synthetic import FLOOR
from genpercept_ros.geometry.synthetic import plane_scene
import numpy as np
import pytest


def camera_orientation(pitch_deg, roll_deg):
    """Columns: the camera's optical axes in the room (level optical) frame, built by hand."""
    pitch, roll = math.radians(pitch_deg), math.radians(roll_deg)
    # Tilting the optical axis down (towards the room's +y) is a rotation of -pitch about x.
    rot_x = np.array([[1.0, 0.0, 0.0],
                      [0.0, math.cos(-pitch), -math.sin(-pitch)],
                      [0.0, math.sin(-pitch), math.cos(-pitch)]])
    # Then roll about the camera's own z: x (right) turns towards y (down).
    rot_z = np.array([[math.cos(roll), -math.sin(roll), 0.0],
                      [math.sin(roll), math.cos(roll), 0.0],
                      [0.0, 0.0, 1.0]])
    return rot_x @ rot_z


def room(pitch_deg=0.0, roll_deg=0.0, height=1.2, table=True, size=(128, 96)):
    """Render a room with a box on the floor and a table top (a horizontal slab) above it."""
    boxes = [((-1.6, height - 0.5, 2.4), (-0.8, height, 3.2))]
    if table:
        boxes.append(((0.2, height - 0.78, 2.2), (1.4, height - 0.72, 3.0)))
    return box_room(size[0], size[1], fov_deg=75.0, room_size=(6.0, 3.0, 8.0),
                    camera_height=height, boxes=tuple(boxes),
                    orientation=camera_orientation(pitch_deg, roll_deg))


def corrupt(scene, space, rng, wrong_normals=0.25, noise=0.005):
    """Return (relative, normals): an affine map of the truth with noise; some normals random."""
    depth = scene.depth.astype(np.float64)
    if space == 'depth':
        relative = (depth - 0.4) / 7.3
    else:
        relative = 0.9 / depth - 0.05
    relative = relative * (1.0 + noise * rng.standard_normal(relative.shape))
    normals = scene.normals.copy()
    wrong = rng.random(normals.shape[:2]) < wrong_normals
    random_dirs = rng.standard_normal(normals.shape)
    random_dirs /= np.linalg.norm(random_dirs, axis=-1, keepdims=True)
    normals[wrong] = random_dirs[wrong]
    return relative.astype(np.float32), normals


def median_error(fit, relative, truth):
    metric = fit.to_metric(relative)
    valid = np.isfinite(truth)
    return float(np.nanmedian(np.abs(metric[valid] - truth[valid]) / truth[valid]))


CAMERAS = [(0.0, 0.0, 1.2), (15.0, 0.0, 0.4), (25.0, 8.0, 1.0), (10.0, -12.0, 2.0),
           (35.0, 5.0, 0.8)]


@pytest.mark.parametrize('pitch,roll,height', CAMERAS)
@pytest.mark.parametrize('space', ['depth', 'disparity'])
@pytest.mark.parametrize('up_known', [True, False])
def test_metric_error_below_one_percent(pitch, roll, height, space, up_known):
    scene = room(pitch, roll, height)
    rng = np.random.default_rng(int(pitch * 10 + height * 100))
    relative, normals = corrupt(scene, space, rng)
    up = up_from_pitch_roll(pitch, roll) if up_known else None
    fit = fit_ground_scale(relative, normals, scene.intrinsics, height, space=space, up=up)
    assert fit.ok, fit.reason
    assert isinstance(fit, ScaleShiftFit)
    assert fit.space == space
    assert fit.up_source == ('given' if up_known else 'estimated')
    # The true up: the room's -y axis seen from the camera.
    true_up = camera_orientation(pitch, roll).T @ np.array([0.0, -1.0, 0.0])
    assert math.degrees(math.acos(min(1.0, float(fit.up @ true_up)))) < 1.0
    assert median_error(fit, relative, scene.depth) < 0.01


def test_table_top_is_an_outlier_not_the_floor():
    scene = room(20.0, 0.0, 1.0)
    relative = (scene.depth - 0.4) / 7.3
    fit = fit_ground_scale(relative, scene.normals, scene.intrinsics, 1.0,
                           up=up_from_pitch_roll(20.0, 0.0))
    # The table top faces up and is a floor candidate, but the fit does not use it.
    table = scene.labels == 6
    assert np.count_nonzero(fit.floor_mask & table) > 50
    assert fit.inlier_ratio < 1.0
    assert fit.scale == pytest.approx(7.3, rel=1e-4)
    assert fit.shift == pytest.approx(0.4, abs=1e-4)


def test_floor_mask_is_the_floor_and_lids_facing_up():
    scene = room(15.0, 5.0, 1.2, table=False)
    fit = fit_ground_scale((scene.depth - 0.4) / 7.3, scene.normals, scene.intrinsics, 1.2)
    lid = (scene.labels == 5) & (np.abs(scene.normals[..., 1]) > 0.5)
    assert np.array_equal(fit.floor_mask & ~lid, scene.labels == FLOOR)
    assert fit.n_floor == np.count_nonzero(fit.floor_mask)


def test_camera_looking_up_at_a_wall_sees_no_floor():
    pitch = -30.0  # looking up
    orientation = camera_orientation(pitch, 0.0)
    wall_normal = orientation.T @ np.array([0.0, 0.0, -1.0])
    wall_point = orientation.T @ np.array([0.0, 0.0, 2.5])
    scene = plane_scene(96, 72, normal=wall_normal, point=wall_point)
    assert np.isfinite(scene.depth).mean() > 0.99
    relative = (scene.depth - 0.4) / 7.3
    for up in (up_from_pitch_roll(pitch, 0.0), None):
        fit = fit_ground_scale(relative, scene.normals, scene.intrinsics, 1.2, up=up)
        assert not fit.ok
        assert 'floor' in fit.reason
        assert math.isnan(fit.scale)


def test_too_little_floor_is_refused():
    scene = room(0.0, 0.0, 1.2, table=False, size=(64, 48))
    relative = (scene.depth - 0.4) / 7.3
    fit = fit_ground_scale(relative, scene.normals, scene.intrinsics, 1.2,
                           up=up_from_pitch_roll(0.0, 0.0), min_points=5000)
    assert not fit.ok
    assert fit.reason.startswith('too little floor in view')
    assert math.isnan(fit.scale)


def test_pitch_convention_positive_looks_down():
    level = room(0.0, 0.0, 1.2, table=False)
    down = room(20.0, 0.0, 1.2, table=False)
    assert np.mean(down.labels == FLOOR) > np.mean(level.labels == FLOOR) + 0.1
    up = up_from_pitch_roll(20.0, 0.0)
    assert up[2] < 0  # up leans back towards the camera when it looks down
    assert up @ np.array([0.0, -1.0, 0.0]) == pytest.approx(math.cos(math.radians(20.0)))


def test_roll_convention_horizon_rises_to_the_right():
    scene = room(10.0, 15.0, 1.2, table=False)
    floor = scene.labels == FLOOR
    first_floor_row = [int(np.argmax(floor[:, u])) for u in (5, floor.shape[1] - 6)]
    assert first_floor_row[1] < first_floor_row[0]  # floor reaches higher on the right
    # The analytic horizon: rays with up . r = 0 go through the same sides.
    up = up_from_pitch_roll(10.0, 15.0)
    rays = scene.intrinsics.rays()
    depth = floor_depth(scene.intrinsics, up, 1.2)
    assert np.isfinite(depth[floor]).all()
    assert not np.isfinite(depth[(rays @ up) > 0]).any()


def test_floor_depth_matches_rendered_floor():
    scene = room(25.0, -8.0, 0.9, table=False)
    depth = floor_depth(scene.intrinsics, up_from_pitch_roll(25.0, -8.0), 0.9)
    floor = scene.labels == FLOOR
    np.testing.assert_allclose(depth[floor], scene.depth[floor], rtol=1e-4)


def test_height_above_floor_is_zero_on_the_floor_and_box_height_on_lids():
    scene = room(15.0, 0.0, 1.2, table=False)
    xyz = scene.depth[..., None] * scene.intrinsics.rays()
    height = height_above_floor(xyz, up_from_pitch_roll(15.0, 0.0), 1.2)
    np.testing.assert_allclose(height[scene.labels == FLOOR], 0.0, atol=1e-4)
    lid = (scene.labels == 5) & (scene.normals[..., 1] < -0.9)
    np.testing.assert_allclose(height[lid], 0.5, atol=1e-3)


def test_rotation_sources_give_the_same_up():
    pitch, roll = 22.0, -7.0
    orientation = camera_orientation(pitch, roll)
    # TF convention: base_link x forward, y left, z up; room frame: x right, y down, z forward.
    room_from_base = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    optical_from_base = orientation.T @ room_from_base
    np.testing.assert_allclose(up_from_rotation(optical_from_base),
                               up_from_pitch_roll(pitch, roll), atol=1e-12)
    quaternion = _quaternion(optical_from_base)
    np.testing.assert_allclose(rotation_from_quaternion(*quaternion), optical_from_base,
                               atol=1e-12)
    scene = room(pitch, roll, 1.1)
    relative = (scene.depth - 0.4) / 7.3
    direct = fit_ground_scale(relative, scene.normals, scene.intrinsics, 1.1,
                              up=up_from_pitch_roll(pitch, roll))
    via_tf = fit_ground_scale(relative, scene.normals, scene.intrinsics, 1.1,
                              up=up_from_rotation(rotation_from_quaternion(*quaternion)))
    assert (via_tf.scale, via_tf.shift) == pytest.approx((direct.scale, direct.shift),
                                                         rel=1e-6)


def _quaternion(matrix):
    """(x, y, z, w) of a rotation matrix (Shepperd's method, trace branch suffices here)."""
    w = math.sqrt(max(0.0, 1.0 + np.trace(matrix))) / 2.0
    return ((matrix[2, 1] - matrix[1, 2]) / (4 * w), (matrix[0, 2] - matrix[2, 0]) / (4 * w),
            (matrix[1, 0] - matrix[0, 1]) / (4 * w), w)


def test_same_fit_as_fit_scale_shift_on_the_analytic_floor():
    scene = room(20.0, 0.0, 1.2, table=False)
    relative = (scene.depth - 0.4) / 7.3
    up = up_from_pitch_roll(20.0, 0.0)
    fit = fit_ground_scale(relative, scene.normals, scene.intrinsics, 1.2, up=up)
    floor = scene.labels == FLOOR
    reference = fit_scale_shift(relative, scene.depth, floor)
    assert (fit.scale, fit.shift) == pytest.approx((reference.scale, reference.shift), rel=1e-4)


def test_estimate_up_refuses_without_an_upward_cluster():
    normals = np.tile(np.array([0.0, 0.0, -1.0], dtype=np.float32), (20, 20, 1))
    up, reason = estimate_up(normals)
    assert up is None and 'no floor' in reason


def test_distorted_camera_models_are_used_through_rays():
    scene = room(15.0, 0.0, 1.2, table=False)

    class WarpedCamera:
        """A camera model known only by its rays (what a distorted model provides)."""

        width, height = scene.intrinsics.width, scene.intrinsics.height

        def rays(self):
            return scene.intrinsics.rays()

    relative = (scene.depth - 0.4) / 7.3
    fit = fit_ground_scale(relative, scene.normals, WarpedCamera(), 1.2,
                           up=up_from_pitch_roll(15.0, 0.0))
    assert fit.ok and median_error(fit, relative, scene.depth) < 1e-3


@pytest.mark.parametrize('kwargs,name', [
    ({'camera_height_m': 0.0}, 'camera_height_m'),
    ({'camera_height_m': float('nan')}, 'camera_height_m'),
    ({'space': 'metres'}, 'space'),
    ({'up': (0.0, 0.0, 0.0)}, 'up'),
    ({'up': (1.0, 2.0)}, 'up'),
    ({'normals': np.zeros((4, 4, 3))}, 'normals'),
    ({'relative': np.zeros((6, 8, 1))}, 'relative'),
    ({'intrinsics': Intrinsics(10, 10, 4, 3, 9, 6)}, 'intrinsics'),
    ({'intrinsics': object()}, 'intrinsics'),
    ({'tolerance_deg': 95.0}, 'tolerance_deg'),
])
def test_bad_arguments_raise_naming_them(kwargs, name):
    arguments = {'relative': np.ones((6, 8)), 'normals': np.zeros((6, 8, 3)),
                 'intrinsics': Intrinsics(10, 10, 4, 3, 8, 6), 'camera_height_m': 1.0}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=f'`{name}`'):
        fit_ground_scale(**arguments)


def test_bad_angles_raise():
    with pytest.raises(ValueError, match='pitch_deg'):
        up_from_pitch_roll(float('inf'), 0.0)
    with pytest.raises(ValueError, match='rotation'):
        up_from_rotation(np.eye(3) * 2.0)
