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
FramePipeline with a distorted raw camera: every output follows the same camera model.

The scene is the analytic plane of test_geometry_camera_model seen by the issue's plumb_bob
camera (calibrated at 160x120, images at 64x48): true rays by this suite's own Newton inversion,
a scripted predictor returning the exact relative map, so points, the voxel cloud and the
reference fits have exact expectations.
"""

from genpercept_ros.pipeline import Frame
from genpercept_ros.pipeline import FramePipeline
from genpercept_ros.pipeline import PipelineSettings
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import PointCloud2
from sensor_msgs.msg import PointField

from test_geometry_camera_model import ISSUE_D
from test_geometry_camera_model import ISSUE_K
from test_geometry_camera_model import ISSUE_P
from test_geometry_camera_model import plane_depth
from test_geometry_camera_model import PLANE_NORMAL
from test_geometry_camera_model import PLANE_OFFSET
from test_geometry_camera_model import true_rays
from test_pipeline_frames import floats
from test_pipeline_frames import header
from test_pipeline_frames import ScriptedPredictor
from test_pipeline_frames import TRUE_SCALE
from test_pipeline_frames import TRUE_SHIFT

WIDTH, HEIGHT = 64, 48
SX, SY = WIDTH / 160, HEIGHT / 120
K = [ISSUE_K[0] * SX, 0.0, (ISSUE_K[2] + 0.5) * SX - 0.5, 0.0, ISSUE_K[4] * SY,
     (ISSUE_K[5] + 0.5) * SY - 0.5, 0.0, 0.0, 1.0]
X, Y = true_rays(K, 'plumb_bob', ISSUE_D, WIDTH, HEIGHT)
DEPTH = plane_depth(X, Y)
RELATIVE = ((DEPTH - TRUE_SHIFT) / TRUE_SCALE).astype(np.float32)
RGB = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)


def make_pipeline(relative, **parameters):
    """Return ``(pipeline, predictor)`` of a depth-only scripted predictor."""
    predictor = ScriptedPredictor(relative, normal_model='')
    settings = PipelineSettings.from_parameters({'processing_resolution': 64, **parameters})
    return FramePipeline(predictor, settings), predictor


def issue_info():
    info = CameraInfo(width=160, height=120, distortion_model='plumb_bob', d=ISSUE_D, k=ISSUE_K,
                      p=ISSUE_P, r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    return info


def cloud_xyz(cloud):
    offsets = {field.name: field.offset for field in cloud.fields}
    raw = np.frombuffer(bytes(cloud.data), dtype=np.uint8).reshape(cloud.height, cloud.width,
                                                                   cloud.point_step)
    return np.stack([raw[..., offsets[a]:offsets[a] + 4].copy().view('<f4')[..., 0]
                     for a in 'xyz'], axis=-1).astype(np.float64)


def points_message(xyz, seconds):
    cloud = PointCloud2(height=1, width=xyz.shape[0], point_step=12, row_step=12 * xyz.shape[0],
                        is_dense=True, data=xyz.astype('<f4').tobytes())
    cloud.fields = [PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                    for i, name in enumerate('xyz')]
    cloud.header = header(seconds)
    return cloud


@pytest.mark.parametrize('decimation', [1, 2])
def test_points_and_voxel_cloud_follow_the_undistorted_rays(decimation):
    pipeline, _ = make_pipeline(RELATIVE, scale_mode='fixed', depth_scale=TRUE_SCALE,
                                depth_shift=TRUE_SHIFT, voxel_size=0.1,
                                cloud_decimation=decimation)
    [result] = pipeline.process([Frame(RGB, header(1.0), issue_info())])
    assert not result.problems
    info = result.outputs['depth/camera_info']
    np.testing.assert_allclose(info.k, K, rtol=1e-12)
    assert list(info.d) == ISSUE_D and (info.width, info.height) == (WIDTH, HEIGHT)
    xyz = cloud_xyz(result.outputs['points'])
    d = DEPTH[::decimation, ::decimation]
    expected = np.stack([X[::decimation, ::decimation] * d, Y[::decimation, ::decimation] * d,
                         d], axis=-1)
    np.testing.assert_allclose(xyz, expected, rtol=1e-5, atol=1e-6)
    voxels = cloud_xyz(result.outputs['points_voxel'])[0]
    assert voxels.shape[0] > 20
    # Voxel centroids of points on a plane lie on the plane.
    np.testing.assert_allclose(voxels @ PLANE_NORMAL, PLANE_OFFSET, rtol=1e-5)


def test_reference_points_through_the_distorted_camera():
    """scale_mode reference: reference points land on the raw pixels that see them."""
    pipeline, _ = make_pipeline(RELATIVE, scale_mode='reference', fit_min_inlier_ratio=0.9)
    xyz = np.stack([X * DEPTH, Y * DEPTH, DEPTH], axis=-1)[::2, ::2].reshape(-1, 3)
    pipeline.add_reference(points_message(xyz, 5.0))
    [result] = pipeline.process([Frame(RGB, header(5.0), issue_info(),
                                       wanted=frozenset({'depth/image'}))])
    assert result.scale.source == 'fitted', result.problems
    assert result.scale.scale == pytest.approx(TRUE_SCALE, rel=1e-4)
    assert result.scale.shift == pytest.approx(TRUE_SHIFT, abs=1e-3)
    assert result.scale.residual < 1e-4
    np.testing.assert_allclose(floats(result.outputs['depth/image']), DEPTH, rtol=1e-4)


def test_input_rectified_true_takes_p_for_the_same_camera_info():
    pipeline, _ = make_pipeline(RELATIVE, scale_mode='fixed', depth_scale=TRUE_SCALE,
                                depth_shift=TRUE_SHIFT, input_rectified='true')
    [result] = pipeline.process([Frame(RGB, header(2.0), issue_info())])
    xyz = cloud_xyz(result.outputs['points'])
    fx, cx = ISSUE_P[0] * SX, (ISSUE_P[2] + 0.5) * SX - 0.5
    u = np.arange(WIDTH)[None, :]
    np.testing.assert_allclose(xyz[..., 0], (u - cx) * DEPTH / fx, rtol=1e-5, atol=1e-6)
    # depth/camera_info still carries everything (image_proc passes it along with image_rect).
    assert list(result.outputs['depth/camera_info'].d) == ISSUE_D


def test_unknown_model_publishes_depth_and_info_without_clouds():
    info = issue_info()
    info.distortion_model = 'kannala_brandt'
    pipeline, _ = make_pipeline(RELATIVE, scale_mode='fixed', depth_scale=TRUE_SCALE,
                                depth_shift=TRUE_SHIFT, voxel_size=0.1)
    [result] = pipeline.process([Frame(RGB, header(3.0), info)])
    assert {'depth/image', 'depth/camera_info'} <= set(result.outputs)
    assert 'points' not in result.outputs and 'points_voxel' not in result.outputs
    assert [kind for kind, _ in result.problems] == ['camera_info']
    assert "unknown distortion model 'kannala_brandt'" in result.problems[0][1]


def test_a_calibration_without_rays_for_most_pixels_is_reported():
    """A distortion that folds back leaves pixels without a ray: reported, never silent."""
    info = issue_info()
    info.d = [-5.0, 0.0, 0.0, 0.0, 0.0]
    pipeline, _ = make_pipeline(RELATIVE, scale_mode='fixed', depth_scale=TRUE_SCALE,
                                depth_shift=TRUE_SHIFT)
    [result] = pipeline.process([Frame(RGB, header(4.0), info)])
    xyz = cloud_xyz(result.outputs['points'])
    missing = np.isnan(xyz[..., 2]).mean()
    assert missing > 0.5        # the rays really are missing for most of this image
    messages = [message for kind, message in result.problems if kind == 'camera_info']
    assert len(messages) == 1 and 'no ray for' in messages[0], result.problems
    assert f'{100 * missing:.3g} %' in messages[0]
    # The issue's own (moderate) distortion finds every ray: nothing to report.
    [good] = pipeline.process([Frame(RGB, header(5.0), issue_info())])
    assert not [message for kind, message in good.problems if kind == 'camera_info']
