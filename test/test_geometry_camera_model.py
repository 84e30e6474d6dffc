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

"""
Camera models against analytic geometry: a plane seen by distorted raw cameras.

The expected values come from the distortion formulas as ROS / OpenCV document them, written
out here in numpy (``distort``) and inverted by this file's own Newton iteration, never from
OpenCV or the package: the package's rays must agree with them.
"""

from genpercept_ros.geometry import backproject
from genpercept_ros.geometry import CameraModel
from genpercept_ros.geometry import DistortionModelError
from genpercept_ros.geometry import Intrinsics
from genpercept_ros.geometry.camera_model import ROUND_TRIP_TOLERANCE_PX
from genpercept_ros.geometry.scale_reference import reference_from_depth_image
from genpercept_ros.geometry.scale_reference import reference_from_points
from genpercept_ros.messages import camera_model_to_camera_info
from genpercept_ros.messages import resolve_camera_model
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

# The failing camera of issue 14: 160x120, plumb_bob, K and P differ.
ISSUE_K = [150.0, 0.0, 80.3, 0.0, 151.0, 60.7, 0.0, 0.0, 1.0]
ISSUE_D = [-0.31, 0.11, 0.001, -0.002, 0.0]
ISSUE_P = [118.0, 0.0, 76.0, 0.0, 0.0, 120.0, 58.0, 0.0, 0.0, 0.0, 1.0, 0.0]

CAMERAS = {
    'plumb_bob': (ISSUE_K, ISSUE_D),
    'rational_polynomial': (ISSUE_K, [-0.28, 0.09, 0.001, -0.002, 0.01, 0.03, -0.01, 0.02]),
    'equidistant': ([100.0, 0.0, 80.3, 0.0, 101.0, 60.7, 0.0, 0.0, 1.0],
                    [0.05, -0.01, 0.003, -0.001]),
}

# Plane n . X = offset, tilted so that a wrong ray moves its point off the plane.
PLANE_NORMAL = np.array([0.2, -0.3, 1.0]) / np.linalg.norm([0.2, -0.3, 1.0])
PLANE_OFFSET = 2.5


def camera_info(model, k, d, p=ISSUE_P, width=160, height=120):
    msg = CameraInfo()
    msg.width, msg.height = width, height
    msg.distortion_model = model
    msg.k, msg.d, msg.p = list(k), list(d), list(p)
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    return msg


def distort(model, d, x, y):
    """Distort normalised coordinates by the documented formulas (plumb_bob, rational, fisheye)."""
    d = list(d) + [0.0] * 8
    if model == 'equidistant':
        r = np.hypot(x, y)
        theta = np.arctan(r)
        theta_d = theta * (1 + d[0] * theta**2 + d[1] * theta**4 + d[2] * theta**6
                           + d[3] * theta**8)
        scale = np.where(r > 0, theta_d / np.where(r > 0, r, 1.0), 1.0)
        return x * scale, y * scale
    k1, k2, p1, p2, k3, k4, k5, k6 = d[:8]
    r2 = x * x + y * y
    radial = ((1 + k1 * r2 + k2 * r2**2 + k3 * r2**3)
              / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd


def to_pixels(k, model, d, x, y):
    xd, yd = distort(model, d, x, y)
    return k[0] * xd + k[1] * yd + k[2], k[4] * yd + k[5]


def true_rays(k, model, d, width, height):
    """Invert ``to_pixels`` on the pixel grid with Newton's method (numerical Jacobian)."""
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    x, y = (u - k[2]) / k[0], (v - k[5]) / k[4]
    step = 1e-7
    for _ in range(60):
        pu, pv = to_pixels(k, model, d, x, y)
        ru, rv = pu - u, pv - v
        ux, vx = [(a - b) / step for a, b in zip(to_pixels(k, model, d, x + step, y), (pu, pv))]
        uy, vy = [(a - b) / step for a, b in zip(to_pixels(k, model, d, x, y + step), (pu, pv))]
        det = ux * vy - uy * vx
        x = x - (vy * ru - uy * rv) / det
        y = y - (-vx * ru + ux * rv) / det
    pu, pv = to_pixels(k, model, d, x, y)
    assert np.abs(pu - u).max() < 1e-9 and np.abs(pv - v).max() < 1e-9
    return x, y


def plane_depth(x, y):
    """Depth (z) where the ray (x, y, 1) meets the plane."""
    return PLANE_OFFSET / (PLANE_NORMAL[0] * x + PLANE_NORMAL[1] * y + PLANE_NORMAL[2])


@pytest.mark.parametrize('name', sorted(CAMERAS))
@pytest.mark.parametrize('size', [(160, 120), (80, 60), (200, 150)])
def test_plane_seen_by_distorted_raw_camera(name, size):
    k, d = CAMERAS[name]
    resolved = resolve_camera_model(camera_info(name, k, d), *size)
    model = resolved.model
    assert not model.rectified and resolved.reason.startswith('auto')
    published = camera_model_to_camera_info(model)
    assert (published.width, published.height) == size
    assert published.distortion_model == name and list(published.d) == list(d)
    pk = list(published.k)
    # The published K is the calibration K rescaled with the pixel-centre convention.
    sx, sy = size[0] / 160, size[1] / 120
    np.testing.assert_allclose(pk, [k[0] * sx, 0, (k[2] + 0.5) * sx - 0.5,
                                    0, k[4] * sy, (k[5] + 0.5) * sy - 0.5, 0, 0, 1])
    # The raw image: every pixel sees the plane along its true (independently inverted) ray.
    x, y = true_rays(pk, name, d, *size)
    depth = plane_depth(x, y).astype(np.float32)
    cloud = backproject(depth, model).astype(np.float64)
    assert np.isfinite(cloud).all()
    # Planar and at the true distance.
    distance = cloud @ PLANE_NORMAL
    np.testing.assert_allclose(distance, PLANE_OFFSET, rtol=1e-5)
    # Every point is depth times its undistorted ray.
    expected = np.stack([x * depth, y * depth, depth], axis=-1)
    np.testing.assert_allclose(cloud, expected, rtol=1e-5, atol=1e-6)
    # Projecting the cloud with the published camera_info lands on its own pixel.
    z = cloud[..., 2]
    pu, pv = to_pixels(pk, name, d, cloud[..., 0] / z, cloud[..., 1] / z)
    u, v = np.meshgrid(np.arange(size[0]), np.arange(size[1]))
    assert np.abs(pu - u).max() < 1e-3 and np.abs(pv - v).max() < 1e-3
    # And the package's own projection agrees.
    pixels = model.project(cloud.reshape(-1, 3))
    np.testing.assert_allclose(pixels, np.stack([u.ravel(), v.ravel()], 1), atol=1e-3)


@pytest.mark.parametrize('name', sorted(CAMERAS))
def test_undistortion_round_trip_below_a_micro_pixel(name):
    k, d = CAMERAS[name]
    model = resolve_camera_model(camera_info(name, k, d), 160, 120).model
    rays = model.rays().astype(np.float64)
    x, y = true_rays(k, name, d, 160, 120)
    # float32 rays hold ~1e-7 relative; the float64 undistortion itself round-trips within
    # ROUND_TRIP_TOLERANCE_PX (checked inside), so the rays match the true ones to float32.
    np.testing.assert_allclose(rays[..., 0], x, atol=2e-7 * max(1, np.abs(x).max()))
    np.testing.assert_allclose(rays[..., 1], y, atol=2e-7 * max(1, np.abs(y).max()))
    assert ROUND_TRIP_TOLERANCE_PX <= 1e-6
    assert model.rays() is model.rays()   # cached once per model
    assert not model.rays().flags.writeable


def test_rectified_camera_uses_p():
    """D = 0 (auto) and input_rectified true: the pixels follow P, as image_geometry does."""
    for msg, mode in ((camera_info('plumb_bob', ISSUE_K, [0.0] * 5), 'auto'),
                      (camera_info('plumb_bob', ISSUE_K, ISSUE_D), 'true')):
        model = resolve_camera_model(msg, 160, 120, mode).model
        assert model.rectified and not model.is_distorted
        assert model.intrinsics == Intrinsics(118.0, 120.0, 76.0, 58.0, 160, 120)
        depth = np.full((120, 160), 2.0, dtype=np.float32)
        u, v = np.meshgrid(np.arange(160), np.arange(120))
        cloud = backproject(depth, model)
        np.testing.assert_allclose(cloud[..., 0], (u - 76.0) / 118.0 * 2.0, rtol=1e-6)
        np.testing.assert_allclose(cloud[..., 1], (v - 58.0) / 120.0 * 2.0, rtol=1e-6)
        # The pinhole fast path stays bit-identical to plain intrinsics.
        assert np.array_equal(cloud, backproject(depth, model.intrinsics), equal_nan=True)


def test_issue_camera_published_info_is_consistent():
    """The issue's input: depth/camera_info keeps K (fx 150) with D, and P (fx 118)."""
    model = resolve_camera_model(camera_info('plumb_bob', ISSUE_K, ISSUE_D), 160, 120).model
    info = camera_model_to_camera_info(model)
    assert list(info.k) == ISSUE_K and list(info.d) == ISSUE_D and list(info.p) == ISSUE_P
    # The edge rays are the undistorted ones; P's pinhole rays (the old behaviour) miss them by
    # more than 10 % at the middle of the left edge.
    rays = model.rays()
    x, y = true_rays(ISSUE_K, 'plumb_bob', ISSUE_D, 160, 120)
    np.testing.assert_allclose(rays[..., 0], x, rtol=1e-6, atol=1e-7)
    u, v = np.meshgrid(np.arange(160.0), np.arange(120.0))
    pinhole_error = np.hypot((u - 76.0) / 118.0 - x, (v - 58.0) / 120.0 - y) / np.hypot(x, y)
    assert pinhole_error[60, 0] > 0.10


def test_binning_and_roi_are_folded_into_k_and_p():
    msg = camera_info('plumb_bob', ISSUE_K, ISSUE_D, width=160, height=120)
    msg.binning_x = msg.binning_y = 2
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = 20, 10, 120, 100
    msg.p = [118.0, 0.0, 76.0, -11.8, 0.0, 120.0, 58.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    model = resolve_camera_model(msg, 60, 50, 'false').model
    assert (model.width, model.height) == (60, 50)
    np.testing.assert_allclose(model.k, [75.0, 0, 30.15, 0, 75.5, 25.35, 0, 0, 1])
    np.testing.assert_allclose(model.p, [59.0, 0, 28.0, -5.9, 0, 60.0, 24.0, 0, 0, 0, 1, 0])
    # image_geometry's convention (c' = (c - offset) / binning): binned pixel (u, v) has the ray
    # of full-resolution pixel (20 + 2u, 10 + 2v).
    full = resolve_camera_model(camera_info('plumb_bob', ISSUE_K, ISSUE_D), 160, 120).model
    pixel = full.project(model.rays()[7, 9].astype(np.float64))[0]
    np.testing.assert_allclose(pixel, [20 + 2 * 9, 10 + 2 * 7], atol=1e-4)


def test_decimated_rays_are_every_nth_ray():
    model = resolve_camera_model(camera_info('plumb_bob', ISSUE_K, ISSUE_D), 160, 120).model
    decimated = model.decimated(3)
    assert (decimated.width, decimated.height) == (54, 40)
    np.testing.assert_allclose(decimated.rays(), model.rays()[::3, ::3], atol=1e-6)


def test_unknown_distortion_model_is_one_clear_error():
    msg = camera_info('kannala_brandt_8', ISSUE_K, ISSUE_D)
    model = resolve_camera_model(msg, 160, 120).model
    with pytest.raises(DistortionModelError, match="unknown distortion model 'kannala"):
        model.rays()
    with pytest.raises(DistortionModelError):
        backproject(np.ones((120, 160), np.float32), model)
    # Rectified, the unknown model does not matter: P describes the pixels.
    assert resolve_camera_model(msg, 160, 120, 'true').model.rays().shape == (120, 160, 3)
    too_many = camera_info('plumb_bob', ISSUE_K, ISSUE_D + [0.3, 0.1, 0.0])
    with pytest.raises(DistortionModelError, match='takes 5 coefficients'):
        resolve_camera_model(too_many, 160, 120).model.rays()


def test_fisheye_pixels_beyond_ninety_degrees_get_nan_rays():
    # f = 40 px on a 160x120 image: corners lie beyond 90 degrees, where no z = 1 ray exists.
    k = [40.0, 0.0, 79.5, 0.0, 40.0, 59.5, 0.0, 0.0, 1.0]
    model = resolve_camera_model(camera_info('equidistant', k, [0.01, 0, 0, 0]), 160, 120).model
    rays = model.rays()
    assert np.isnan(rays[0, 0, :2]).all()
    assert np.isfinite(rays[60, 80]).all()
    depth = np.ones((120, 160), np.float32)
    cloud = backproject(depth, model)
    assert np.isnan(cloud[0, 0]).all() and np.isfinite(cloud[60, 80]).all()


@pytest.mark.parametrize('name', sorted(CAMERAS))
def test_reference_points_land_on_the_raw_pixel(name):
    """scale_mode reference: a reference point seen through the distorted camera."""
    k, d = CAMERAS[name]
    model = resolve_camera_model(camera_info(name, k, d), 160, 120).model
    x, y = true_rays(k, name, d, 160, 120)
    depth = plane_depth(x, y)
    points = np.stack([x * depth, y * depth, depth], axis=-1)
    # One point per pixel, plus points far outside the field of view (must not fold back).
    outside = np.array([[40.0, 0.0, 1.0], [0.0, -30.0, 1.0], [25.0, 25.0, 1.0]])
    image = reference_from_points(np.concatenate([points.reshape(-1, 3), outside]), model)
    np.testing.assert_allclose(image, depth.astype(np.float32), rtol=1e-6)
    # The pinhole assumption (P) would put them elsewhere.
    wrong = reference_from_points(points.reshape(-1, 3), Intrinsics(118, 120, 76, 58, 160, 120))
    assert not np.allclose(wrong, depth, rtol=1e-3, equal_nan=True)


def test_reference_depth_image_resampled_along_distorted_rays():
    # A rectified reference (pinhole, 80x60) of the plane, looked up from the raw camera.
    ref = Intrinsics(70.0, 70.0, 39.5, 29.5, 80, 60)
    ref_u, ref_v = np.meshgrid(np.arange(80.0), np.arange(60.0))
    ref_depth = plane_depth((ref_u - ref.cx) / ref.fx, (ref_v - ref.cy) / ref.fy)
    model = resolve_camera_model(camera_info('plumb_bob', ISSUE_K, ISSUE_D), 160, 120).model
    x, y = true_rays(ISSUE_K, 'plumb_bob', ISSUE_D, 160, 120)
    got = reference_from_depth_image(ref_depth.astype(np.float32), ref, model)
    # Expected: the reference pixel nearest to where each true ray crosses the reference image.
    eu = np.floor(ref.fx * x + ref.cx + 0.5)
    ev = np.floor(ref.fy * y + ref.cy + 0.5)
    inside = (eu >= 0) & (eu < 80) & (ev >= 0) & (ev < 60)
    assert inside.sum() > 1000 and (~inside).sum() > 100
    expected = np.full((120, 160), np.nan, np.float32)
    expected[inside] = ref_depth[ev[inside].astype(int), eu[inside].astype(int)]
    np.testing.assert_array_equal(got, expected)


def test_from_intrinsics_and_scaling_match_intrinsics():
    base = Intrinsics(525.0, 520.0, 319.5, 239.25, 640, 480)
    model = CameraModel.from_intrinsics(base)
    assert model.intrinsics == base and model.pinhole() == base
    assert model.scaled(320, 240).intrinsics == base.scaled(320, 240)
    assert model.decimated(4).intrinsics == base.decimated(4)
    np.testing.assert_array_equal(model.rays(), base.rays())
