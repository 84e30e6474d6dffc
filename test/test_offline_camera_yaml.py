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

"""The camera_calibration YAML reader against a hand-written file."""

from genpercept_ros.offline.camera_yaml import camera_info_to_yaml
from genpercept_ros.offline.camera_yaml import CameraYamlError
from genpercept_ros.offline.camera_yaml import load_camera_yaml
import numpy as np
import pytest

# Written by hand in the layout camera_calibration_parsers produces (ost.yaml).
HAND_WRITTEN = """\
image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [615.5, 0.0, 321.25, 0.0, 616.75, 238.5, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.125, -0.25, 0.001, -0.002, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
projection_matrix:
  rows: 3
  cols: 4
  data: [610.0, 0.0, 320.0, 0.0, 0.0, 612.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def test_reads_every_field(tmp_path):
    path = tmp_path / 'ost.yaml'
    path.write_text(HAND_WRITTEN)
    calib = load_camera_yaml(path)
    info = calib.camera_info
    assert calib.camera_name == 'narrow_stereo'
    assert (info.width, info.height) == (640, 480)
    assert info.distortion_model == 'plumb_bob'
    np.testing.assert_array_equal(info.k, [615.5, 0, 321.25, 0, 616.75, 238.5, 0, 0, 1])
    np.testing.assert_array_equal(info.d, [0.125, -0.25, 0.001, -0.002, 0.0])
    np.testing.assert_array_equal(info.r, np.eye(3).ravel())
    np.testing.assert_array_equal(info.p, [610, 0, 320, 0, 0, 612, 240, 0, 0, 0, 1, 0])


def test_minimal_file_gets_ideal_camera_defaults(tmp_path):
    path = tmp_path / 'minimal.yaml'
    path.write_text('image_width: 64\nimage_height: 48\ncamera_matrix: {rows: 3, cols: 3, '
                    'data: [50, 0, 31.5, 0, 50, 23.5, 0, 0, 1]}\n')
    info = load_camera_yaml(path).camera_info
    assert list(info.d) == []
    np.testing.assert_array_equal(info.r, np.eye(3).ravel())
    np.testing.assert_array_equal(info.p, [50, 0, 31.5, 0, 0, 50, 23.5, 0, 0, 0, 1, 0])


def test_round_trip_through_writer(tmp_path):
    src = tmp_path / 'ost.yaml'
    src.write_text(HAND_WRITTEN)
    original = load_camera_yaml(src)
    copy = tmp_path / 'copy.yaml'
    copy.write_text(camera_info_to_yaml(original.camera_info, original.camera_name))
    again = load_camera_yaml(copy)
    assert again.camera_name == original.camera_name
    for field in ('k', 'd', 'r', 'p'):
        np.testing.assert_array_equal(getattr(again.camera_info, field),
                                      getattr(original.camera_info, field))


@pytest.mark.parametrize('text, fragment', [
    ('image_width: 64\ncamera_matrix: {rows: 3, cols: 3, data: [1,0,0,0,1,0,0,0,1]}\n',
     'image_height'),
    ('image_width: 64\nimage_height: 48\n', 'camera_matrix'),
    ('image_width: 64\nimage_height: 48\ncamera_matrix: {rows: 3, cols: 3, data: [1, 2]}\n',
     '2 values'),
    ('image_width: 64\nimage_height: 48\ncamera_matrix: {rows: 3, cols: 3, '
     'data: [0,0,0,0,0,0,0,0,1]}\n', 'focal'),
    ('image_width: -3\nimage_height: 48\n', 'positive integer'),
    ('[1, 2, 3]\n', 'mapping'),
    ('image_width: 64\n  bad: [\n', 'YAML'),
])
def test_bad_files_name_the_problem(tmp_path, text, fragment):
    path = tmp_path / 'bad.yaml'
    path.write_text(text)
    with pytest.raises(CameraYamlError, match=fragment):
        load_camera_yaml(path)


def test_missing_file(tmp_path):
    with pytest.raises(CameraYamlError, match='cannot read'):
        load_camera_yaml(tmp_path / 'nope.yaml')
