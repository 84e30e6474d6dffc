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

"""CameraInfo <-> Intrinsics: P/K choice, binning, ROI and rescaling, by hand computation."""

from genpercept_ros.geometry import Intrinsics
from genpercept_ros.messages import camera_info_to_intrinsics
from genpercept_ros.messages import CodecError
from genpercept_ros.messages import intrinsics_to_camera_info
from genpercept_ros.messages import resolve_camera_info
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

K_FULL = [1000.0, 0.0, 640.25, 0.0, 1010.0, 480.75, 0.0, 0.0, 1.0]
P_FULL = [990.0, 0.0, 630.0, 0.0, 0.0, 996.0, 470.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def camera_info(k=K_FULL, p=P_FULL, width=1280, height=960, binning=(0, 0), roi=(0, 0, 0, 0)):
    msg = CameraInfo(width=width, height=height, k=k, p=p, distortion_model='plumb_bob',
                     d=[0.1, -0.2, 0.001, 0.002, 0.03])
    msg.binning_x, msg.binning_y = binning
    msg.roi = RegionOfInterest(x_offset=roi[0], y_offset=roi[1], width=roi[2], height=roi[3])
    return msg


def assert_intrinsics(actual, fx, fy, cx, cy, width, height):
    np.testing.assert_allclose([actual.fx, actual.fy, actual.cx, actual.cy],
                               [fx, fy, cx, cy], rtol=0, atol=1e-9)
    assert (actual.width, actual.height) == (width, height)


def test_full_resolution_uses_p_by_default_and_k_on_request():
    assert_intrinsics(camera_info_to_intrinsics(camera_info(), 1280, 960),
                      990.0, 996.0, 630.0, 470.0, 1280, 960)
    assert_intrinsics(camera_info_to_intrinsics(camera_info(), 1280, 960, use_rectified=False),
                      1000.0, 1010.0, 640.25, 480.75, 1280, 960)
    # A zero P (some drivers leave it unset) falls back to K.
    assert_intrinsics(camera_info_to_intrinsics(camera_info(p=[0.0] * 12), 1280, 960),
                      1000.0, 1010.0, 640.25, 480.75, 1280, 960)


def test_binning_and_roi_like_image_geometry():
    # ROI 800x600 at (100, 60) in full-resolution pixels, then 2x2 binning -> 400x300 image:
    # fx = 990 / 2, fy = 996 / 2, cx = (630 - 100) / 2 = 265, cy = (470 - 60) / 2 = 205.
    msg = camera_info(binning=(2, 2), roi=(100, 60, 800, 600))
    resolved = resolve_camera_info(msg, 400, 300)
    assert_intrinsics(resolved.intrinsics, 495.0, 498.0, 265.0, 205.0, 400, 300)
    assert resolved.matrix == 'P' and not resolved.rescaled
    assert (resolved.info_width, resolved.info_height) == (400, 300)
    # Same with K: fx = 500, fy = 505, cx = (640.25 - 100) / 2, cy = (480.75 - 60) / 2.
    assert_intrinsics(camera_info_to_intrinsics(msg, 400, 300, use_rectified=False),
                      500.0, 505.0, 270.125, 210.375, 400, 300)


def test_binning_only_and_roi_only():
    # Binning 4 x 2 (x, y): 1280 / 4 = 320 wide, 960 / 2 = 480 high.
    assert_intrinsics(camera_info_to_intrinsics(camera_info(binning=(4, 2)), 320, 480),
                      247.5, 498.0, 157.5, 235.0, 320, 480)
    # Binning value 1 and 0 both mean "no binning".
    assert_intrinsics(camera_info_to_intrinsics(camera_info(binning=(1, 0)), 1280, 960),
                      990.0, 996.0, 630.0, 470.0, 1280, 960)
    assert_intrinsics(camera_info_to_intrinsics(camera_info(roi=(30, 20, 640, 480)), 640, 480),
                      990.0, 996.0, 600.0, 450.0, 640, 480)


def test_rescaled_to_the_image_with_pixel_centre_convention():
    # camera_info describes 400x300 (after ROI and binning); the image is 200x150:
    # s = 0.5: fx = 247.5, fy = 249, cx = (265 + 0.5) * 0.5 - 0.5 = 132.25, cy = 102.25.
    msg = camera_info(binning=(2, 2), roi=(100, 60, 800, 600))
    resolved = resolve_camera_info(msg, 200, 150)
    assert resolved.rescaled and (resolved.scale_x, resolved.scale_y) == (0.5, 0.5)
    assert (resolved.info_width, resolved.info_height) == (400, 300)
    assert_intrinsics(resolved.intrinsics, 247.5, 249.0, 132.25, 102.25, 200, 150)


@pytest.mark.parametrize('changes,problem', [
    ({'k': [0.0] * 9, 'p': [0.0] * 12}, 'uncalibrated'),
    ({'k': [0.0] * 9}, 'uncalibrated'),
    ({'k': [np.nan] + K_FULL[1:]}, 'NaN or Inf'),
    ({'p': [np.inf] + P_FULL[1:]}, 'NaN or Inf'),
    ({'p': [-990.0] + P_FULL[1:]}, 'non-positive focal'),
    ({'width': 0}, '0x960'),
    ({'roi': (1000, 0, 800, 600)}, 'does not fit'),
    ({'roi': (10, 10, 0, 0)}, 'does not fit'),
    ({'binning': (2000, 1)}, 'leaves no pixels'),
])
def test_unusable_camera_info_raises(changes, problem):
    with pytest.raises(CodecError, match=problem):
        camera_info_to_intrinsics(camera_info(**changes), 640, 480)


@pytest.mark.parametrize('size', [(0, 480), (640, -1), (640.0, 480), (True, 480)])
def test_bad_image_size_raises(size):
    with pytest.raises(CodecError, match='image (width|height)'):
        camera_info_to_intrinsics(camera_info(), *size)


def test_intrinsics_to_camera_info_fields():
    intrinsics = Intrinsics(fx=300.5, fy=301.5, cx=159.25, cy=119.75, width=320, height=240)
    header = Header(frame_id='camera_optical')
    msg = intrinsics_to_camera_info(intrinsics, header)
    assert (msg.width, msg.height) == (320, 240)
    assert msg.header.frame_id == 'camera_optical'
    np.testing.assert_array_equal(msg.k, [300.5, 0, 159.25, 0, 301.5, 119.75, 0, 0, 1])
    np.testing.assert_array_equal(msg.p, [300.5, 0, 159.25, 0, 0, 301.5, 119.75, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(msg.r, np.eye(3).ravel())
    assert (msg.binning_x, msg.binning_y) == (0, 0) and msg.roi.width == 0
    assert msg.distortion_model == 'plumb_bob' and list(msg.d) == [0.0] * 5
    assert camera_info_to_intrinsics(msg, 320, 240) == intrinsics


def test_intrinsics_to_camera_info_copies_distortion_from_template():
    template = camera_info()
    template.distortion_model = 'rational_polynomial'
    template.d = [0.5, 0.25, 0.0, 0.0, 0.125, 0.0, 0.0, 0.0]
    intrinsics = Intrinsics(fx=300.0, fy=300.0, cx=160.0, cy=120.0, width=320, height=240)
    msg = intrinsics_to_camera_info(intrinsics, Header(), template)
    assert msg.distortion_model == 'rational_polynomial'
    assert list(msg.d) == [0.5, 0.25, 0.0, 0.0, 0.125, 0.0, 0.0, 0.0]
    assert list(template.d) == [0.5, 0.25, 0.0, 0.0, 0.125, 0.0, 0.0, 0.0]


def test_intrinsics_to_camera_info_rejects_invalid_intrinsics():
    with pytest.raises(CodecError, match='invalid'):
        intrinsics_to_camera_info(Intrinsics(0.0, 1.0, 1.0, 1.0, 4, 4), Header())
