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

"""Depth and cloud filters on analytic cases."""

from genpercept_ros.geometry import filters
from genpercept_ros.geometry.filters import apply_range_limits
from genpercept_ros.geometry.filters import decimate
from genpercept_ros.geometry.filters import mask_far_saturation
from genpercept_ros.geometry.filters import remove_flying_pixels
from genpercept_ros.geometry.filters import voxel_downsample
from genpercept_ros.geometry.synthetic import BACK_WALL
from genpercept_ros.geometry.synthetic import BOX_LABEL_START
from genpercept_ros.geometry.synthetic import box_room
import numpy as np
import pytest


def _sorted_rows(points):
    return points[np.lexsort(points.T[::-1])]


def test_range_limits_keep_the_closed_interval():
    depth = np.array([[0.1, 0.5, 1.0], [4.0, 4.5, np.nan]], dtype=np.float32)
    out = apply_range_limits(depth, 0.5, 4.0)
    np.testing.assert_array_equal(np.isnan(out), [[True, False, False], [False, True, True]])
    np.testing.assert_array_equal(out[~np.isnan(out)], [0.5, 1.0, 4.0])
    assert np.isnan(apply_range_limits(depth, None, 0.2)[0, 1])
    np.testing.assert_array_equal(apply_range_limits(depth)[0], depth[0])
    assert depth[0, 0] == np.float32(0.1)  # input untouched


@pytest.mark.parametrize('low, high, name', [(2.0, 1.0, 'min_m'), (-1.0, None, 'min_m'),
                                             (None, float('nan'), 'max_m')])
def test_range_limit_errors(low, high, name):
    with pytest.raises(ValueError, match=f'`{name}`'):
        apply_range_limits(np.ones((2, 2)), low, high)


def test_flying_pixels_removed_on_both_sides_of_a_step():
    depth = np.ones((6, 10), dtype=np.float32)
    depth[:, 5:] = 3.0
    depth[0, 0] = np.nan  # an invalid neighbour is no discontinuity
    depth[5, 1] = 0.0
    out = remove_flying_pixels(depth, threshold=0.1)
    removed = np.isnan(out) & ~np.isnan(depth)
    expected = np.zeros(depth.shape, dtype=bool)
    expected[:, 4:6] = True
    np.testing.assert_array_equal(removed, expected)
    assert out[5, 1] == 0.0 and out[5, 0] == 1.0 and out[5, 2] == 1.0


def test_smooth_slope_below_threshold_is_kept():
    # A plane z = 2 + 0.01 u: relative jumps between columns stay below 0.5 %.
    depth = np.tile(2.0 + 0.01 * np.arange(20, dtype=np.float32), (5, 1))
    np.testing.assert_array_equal(remove_flying_pixels(depth, 0.01), depth)
    assert np.isnan(remove_flying_pixels(depth, 0.001)).all()


def test_flying_pixels_on_box_room_follow_object_boundaries():
    scene = box_room(64, 48)
    out = remove_flying_pixels(scene.depth, threshold=0.1)
    removed = np.isnan(out)
    labels = scene.labels
    box = labels >= BOX_LABEL_START
    # Every box pixel next to a back-wall pixel sits on a depth step of more than 10 %.
    box_next_to_wall = box & (np.roll(labels, 1, axis=1) == BACK_WALL)
    box_next_to_wall[:, 0] = False
    assert box_next_to_wall.any()
    assert removed[box_next_to_wall].all()
    # Box front faces are fronto-parallel (constant depth): pixels whose 3x3 neighbourhood is
    # all the same front face stay.
    face = np.where(np.abs(scene.normals[..., 2] + 1.0) < 1e-6, labels, -1)
    same = np.ones(labels.shape, dtype=bool)
    for dv in (-1, 0, 1):
        for du in (-1, 0, 1):
            same &= np.roll(np.roll(face, dv, axis=0), du, axis=1) == face
    front_interior = box & same & (face >= 0)
    front_interior[[0, -1], :] = False
    front_interior[:, [0, -1]] = False
    assert front_interior.any()
    assert not removed[front_interior].any()


def test_far_saturation_masks_the_far_end_of_each_kind():
    relative = np.array([0.0, 0.01, 0.5, 0.985, 1.0], dtype=np.float32)
    depth = mask_far_saturation(relative, 'relative_depth', margin=0.02)
    np.testing.assert_array_equal(np.isnan(depth), [False, False, False, True, True])
    disparity = mask_far_saturation(relative, 'relative_disparity', margin=0.02)
    np.testing.assert_array_equal(np.isnan(disparity), [True, True, False, False, False])
    exact = mask_far_saturation(relative, 'relative_depth')
    np.testing.assert_array_equal(np.isnan(exact), [False, False, False, False, True])
    with pytest.raises(ValueError, match='`margin`'):
        mask_far_saturation(relative, 'relative_depth', margin=1.0)
    with pytest.raises(ValueError, match='`kind`'):
        mask_far_saturation(relative, 'normal')


def test_decimate_keeps_every_nth_pixel():
    image = np.arange(5 * 7 * 3).reshape(5, 7, 3)
    out = decimate(image, 3)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out[1, 2], image[3, 6])


def _clustered_cloud():
    """Points in tight clusters around integer centres, one cluster per 1 m voxel."""
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 1], [1, 0, 1], [0, 2, 3], [3, 1, 2]], dtype=np.float64)
    points = np.concatenate([c + rng.uniform(-0.2, 0.2, (50, 3)) for c in centres])
    expected = np.stack([points[i * 50:(i + 1) * 50].mean(axis=0) for i in range(4)])
    return points, expected


def test_numpy_voxel_downsample_averages_each_voxel():
    points, expected = _clustered_cloud()
    organized = np.concatenate([points, np.full((10, 3), np.nan)]).reshape(21, 10, 3)
    out = voxel_downsample(organized, 1.0)
    assert out.dtype == np.float32 and out.shape == (4, 3)
    np.testing.assert_allclose(_sorted_rows(out), _sorted_rows(expected), atol=1e-6)


def test_voxel_downsample_matches_a_per_point_reference_grid():
    # Reference: Open3D's documented grid (origin = min bound - half a voxel, cell = floor of the
    # offset over the size), one dict entry per cell, built point by point in plain Python.
    rng = np.random.default_rng(1)
    cloud = rng.uniform(-2.0, 2.0, (2000, 3))
    size = 0.3
    origin = cloud.min(axis=0) - 0.5 * size
    cells = {}
    for point in cloud:
        key = tuple(int(v) for v in np.floor((point - origin) / size))
        cells.setdefault(key, []).append(point)
    expected = np.array([np.mean(members, axis=0) for members in cells.values()])
    out = voxel_downsample(cloud, size)
    assert out.shape == expected.shape
    np.testing.assert_allclose(_sorted_rows(out), _sorted_rows(expected), atol=1e-5)


def test_voxel_downsample_edge_cases():
    assert voxel_downsample(np.full((3, 3), np.nan), 0.1).shape == (0, 3)
    with pytest.raises(ValueError, match='`voxel_size`'):
        voxel_downsample(np.zeros((3, 3)), 0.0)
    with pytest.raises(ValueError, match='`xyz`'):
        voxel_downsample(np.zeros((3, 2)), 0.1)


def test_voxel_downsample_rgb_averages_colours_with_the_points():
    points, expected = _clustered_cloud()
    rgb = np.zeros((200, 3), dtype=np.uint8)
    rgb[:, 0] = np.repeat([10, 20, 30, 40], 50)
    rgb[::2, 1] = 100  # half of each cluster: mean 50
    rgb[:, 2] = 255
    out, colours = filters.voxel_downsample_rgb(points, rgb, 1.0)
    assert colours.dtype == np.uint8 and colours.shape == (4, 3)
    order = np.argsort(colours[:, 0])
    np.testing.assert_allclose(out[order], expected, atol=1e-6)
    np.testing.assert_array_equal(colours[order], [[10, 50, 255], [20, 50, 255],
                                                   [30, 50, 255], [40, 50, 255]])
    with pytest.raises(ValueError, match='`rgb`'):
        filters.voxel_downsample_rgb(points, rgb[:10], 1.0)


def test_voxel_grid_too_large_for_one_integer_key_still_works():
    points = np.array([[0.0, 0.0, 0.0], [1e6, 1e6, 1e6], [1e6, 1e6, 1e6], [5.0, 1e6, 0.0]])
    out = voxel_downsample(points, 1e-4)
    np.testing.assert_allclose(_sorted_rows(out), _sorted_rows(points[[0, 1, 3]]))
