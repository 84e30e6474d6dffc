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

"""Per-pixel depth confidence: surface agreement, discontinuities, far saturation."""

from genpercept_ros.geometry import depth_confidence
from genpercept_ros.geometry import Intrinsics
from genpercept_ros.geometry.synthetic import box_room
from genpercept_ros.geometry.synthetic import plane_scene
import numpy as np
import pytest


@pytest.fixture(scope='module')
def scene():
    return box_room(96, 72)


def test_true_depth_with_true_normals_is_confident_inside_surfaces(scene):
    confidence = depth_confidence(scene.depth, scene.intrinsics, scene.normals)
    assert confidence.dtype == np.float32 and confidence.shape == scene.depth.shape
    assert confidence.min() >= 0.0 and confidence.max() <= 1.0
    # Pixels whose 3x3 neighbourhood is one face of one surface are planar: full confidence.
    axis = np.argmax(np.abs(np.nan_to_num(scene.normals)), axis=-1)
    labels = scene.labels * 3 + axis
    interior = np.zeros(labels.shape, dtype=bool)
    centre = labels[1:-1, 1:-1]
    same = np.ones(centre.shape, dtype=bool)
    for dv in (-1, 0, 1):
        for du in (-1, 0, 1):
            same &= labels[1 + dv:labels.shape[0] - 1 + dv,
                           1 + du:labels.shape[1] - 1 + du] == centre
    interior[1:-1, 1:-1] = same
    assert np.all(confidence[interior] > 0.99)


def test_wrong_affine_map_bends_planes_and_lowers_confidence(scene):
    good = depth_confidence(scene.depth, scene.intrinsics, scene.normals)
    # A wrong shift keeps depth order but bends every slanted plane.
    bent = depth_confidence(scene.depth * 0.4 + 1.5, scene.intrinsics, scene.normals)
    assert np.median(bent) < np.median(good) - 0.2


def test_depth_edges_are_not_confident():
    # Two fronto-parallel planes, 2 m on the left and 3 m on the right of column 20.
    depth = np.full((30, 40), 2.0, dtype=np.float32)
    depth[:, 20:] = 3.0
    confidence = depth_confidence(depth, Intrinsics(40.0, 40.0, 19.5, 14.5, 40, 30))
    assert np.all(confidence[:, 19:21] == 0.0)  # both sides of the step
    assert np.all(confidence[:, :18] == 1.0) and np.all(confidence[:, 22:] == 1.0)


def test_slanted_plane_is_smooth_without_normals():
    plane = plane_scene(64, 48, normal=(0.0, -1.0, -0.3), point=(0.0, 0.5, 3.0))
    confidence = depth_confidence(plane.depth, plane.intrinsics)
    finite = np.isfinite(plane.depth)
    assert np.all(confidence[finite] > 0.99)


def test_invalid_and_saturated_pixels_have_zero_confidence(scene):
    depth = scene.depth.copy()
    depth[0, :] = np.nan
    relative = (depth - np.nanmin(depth)) / (np.nanmax(depth) - np.nanmin(depth))
    confidence = depth_confidence(depth, scene.intrinsics, scene.normals, relative,
                                  'relative_depth')
    assert np.all(confidence[0] == 0.0)
    assert np.all(confidence[relative >= 1.0 - 1e-3] == 0.0)
    disparity = 1.0 - relative
    confidence = depth_confidence(depth, scene.intrinsics, None, disparity,
                                  'relative_disparity')
    assert np.all(confidence[disparity <= 1e-3] == 0.0)


def test_mismatched_shapes_raise(scene):
    with pytest.raises(ValueError, match='normals'):
        depth_confidence(scene.depth, scene.intrinsics, scene.normals[:-1])
    with pytest.raises(ValueError, match='relative'):
        depth_confidence(scene.depth, scene.intrinsics, None, scene.depth[:-1], 'relative_depth')
