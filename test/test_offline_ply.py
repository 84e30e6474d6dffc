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

"""The one PLY writer, read back with plyfile (an independent PLY implementation)."""

from genpercept_ros.offline.ply import write_ply
import numpy as np
from plyfile import PlyData
import pytest


def _organized_cloud():
    """(2, 3) organized cloud with one NaN point and one NaN normal, plus colours."""
    xyz = np.arange(18, dtype=np.float64).reshape(2, 3, 3) / 7.0
    xyz[0, 1, 2] = np.nan
    normals = np.zeros((2, 3, 3), dtype=np.float32)
    normals[..., 2] = -1.0
    normals[1, 2] = np.nan
    rgb = np.arange(18, dtype=np.uint8).reshape(2, 3, 3) * 13
    return xyz, rgb, normals


def test_points_colours_and_normals_read_back_exactly(tmp_path):
    xyz, rgb, normals = _organized_cloud()
    path = tmp_path / 'cloud.ply'
    assert write_ply(path, xyz, rgb, normals) == 5
    ply = PlyData.read(str(path))
    assert not ply.text and ply.byte_order == '<'
    vertex = ply['vertex']
    assert [(p.name, p.val_dtype) for p in vertex.properties] == [
        ('x', 'f4'), ('y', 'f4'), ('z', 'f4'), ('nx', 'f4'), ('ny', 'f4'), ('nz', 'f4'),
        ('red', 'u1'), ('green', 'u1'), ('blue', 'u1')]
    keep = np.isfinite(xyz.reshape(-1, 3)).all(axis=1)
    assert keep.sum() == 5 and vertex.count == 5
    points = np.stack([vertex[n] for n in ('x', 'y', 'z')], axis=-1)
    np.testing.assert_array_equal(points, xyz.reshape(-1, 3)[keep].astype(np.float32))
    colours = np.stack([vertex[n] for n in ('red', 'green', 'blue')], axis=-1)
    np.testing.assert_array_equal(colours, rgb.reshape(-1, 3)[keep])
    unit = np.stack([vertex[n] for n in ('nx', 'ny', 'nz')], axis=-1)
    expected = np.tile([0.0, 0.0, -1.0], (5, 1))
    expected[-1] = 0.0  # the NaN normal of a valid point becomes a zero vector
    np.testing.assert_array_equal(unit, expected)


@pytest.mark.parametrize('with_rgb, with_normals', [(False, False), (True, False),
                                                    (False, True)])
def test_optional_fields_are_left_out(tmp_path, with_rgb, with_normals):
    xyz, rgb, normals = _organized_cloud()
    path = tmp_path / 'cloud.ply'
    write_ply(path, xyz, rgb if with_rgb else None, normals if with_normals else None)
    names = [p.name for p in PlyData.read(str(path))['vertex'].properties]
    expected = ['x', 'y', 'z'] + (['nx', 'ny', 'nz'] if with_normals else []) \
        + (['red', 'green', 'blue'] if with_rgb else [])
    assert names == expected


def test_a_cloud_with_no_finite_point_is_a_valid_empty_file(tmp_path):
    path = tmp_path / 'empty.ply'
    assert write_ply(path, np.full((4, 4, 3), np.nan)) == 0
    assert PlyData.read(str(path))['vertex'].count == 0


def test_an_unwritable_path_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        write_ply(tmp_path / 'missing' / 'cloud.ply', np.zeros((1, 3)))
