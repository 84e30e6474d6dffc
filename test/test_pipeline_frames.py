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
FramePipeline on analytic scenes: metric depth, reference fits, filters, clouds, problems.

A scripted predictor returns a relative map made from a known metric scene by a known affine
model, so every metric output has an exact independent expectation.
"""

import subprocess
import sys

from builtin_interfaces.msg import Time
from genpercept_ros.geometry.synthetic import plane_scene
from genpercept_ros.model.predictor import PredictionOutput
from genpercept_ros.model.registry import MODELS
from genpercept_ros.pipeline import decode_image
from genpercept_ros.pipeline import Frame
from genpercept_ros.pipeline import FramePipeline
from genpercept_ros.pipeline import PipelineSettings
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2
from sensor_msgs.msg import PointField
from std_msgs.msg import Header

WIDTH, HEIGHT = 64, 48
TRUE_SCALE, TRUE_SHIFT = 4.0, 0.5      # depth = 4 r + 0.5   (depth variant)


class ScriptedPredictor:
    """Return preset relative maps/normals; record what was asked (a stand-in for the model)."""

    def __init__(self, relative, normals=None, depth_model='depth-v2', normal_model='normal-v2'):
        self.relative = relative
        self.normals = normals
        self.depth_spec = MODELS[depth_model] if depth_model else None
        self.normal_spec = MODELS[normal_model] if normal_model else None
        self.calls = []

    def predict(self, images, processing_resolution, output_resolution, tasks):
        self.calls.append((len(images), tuple(tasks)))
        out = PredictionOutput()
        if 'depth' in tasks:
            out.depth = [self.relative.copy() for _ in images]
            out.depth_kind = self.depth_spec.output_kind
        if 'normal' in tasks:
            out.normals = [self.normals.copy() for _ in images]
        return out


def scene():
    """Return a tilted plane 1.5-3.5 m away and its intrinsics."""
    return plane_scene(WIDTH, HEIGHT, normal=(0.2, -0.3, -1.0), point=(0.0, 0.0, 2.5))


def info_for(intrinsics, width=WIDTH, height=HEIGHT):
    """Return a CameraInfo (K = P) describing ``intrinsics`` rescaled to width x height."""
    k = intrinsics.scaled(width, height) if (width, height) != (WIDTH, HEIGHT) else intrinsics
    info = CameraInfo(width=width, height=height)
    info.k = [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]
    info.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def header(seconds, frame_id='cam_optical'):
    """Return a Header stamped at ``seconds``."""
    return Header(stamp=Time(sec=int(seconds), nanosec=int(round(seconds % 1 * 1e9))),
                  frame_id=frame_id)


def floats(msg):
    """Return a 32FC1 image as (H, W) float32."""
    return np.frombuffer(bytes(msg.data), dtype='<f4').reshape(msg.height, msg.width)


def make_pipeline(relative, normals=None, **parameters):
    """Return (pipeline, predictor) with test-sized settings."""
    predictor = ScriptedPredictor(relative, normals)
    values = {'processing_resolution': 64}
    values.update(parameters)
    return FramePipeline(predictor, PipelineSettings.from_parameters(values)), predictor


def test_range_mode_maps_depth_and_disparity_variants():
    """Range mode: depth variants linear in depth, disparity variants linear in 1/depth."""
    relative = np.linspace(0, 1, WIDTH * HEIGHT, dtype=np.float32).reshape(HEIGHT, WIDTH)
    pipeline, _ = make_pipeline(relative, near_m=0.5, far_m=10.0)
    rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    [result] = pipeline.process([Frame(rgb, header(1.0), wanted=frozenset({'depth/image'}))])
    np.testing.assert_allclose(floats(result.outputs['depth/image']), 0.5 + relative * 9.5,
                               rtol=1e-5)
    assert result.scale.source == 'assumed'

    disparity = FramePipeline(ScriptedPredictor(relative, depth_model='disparity-v2'),
                              PipelineSettings(near_m=0.5, far_m=10.0))
    [result] = disparity.process([Frame(rgb, header(1.0), wanted=frozenset({'depth/image'}))])
    expected = 1.0 / (1.0 / 10.0 + relative * (1.0 / 0.5 - 1.0 / 10.0))
    np.testing.assert_allclose(floats(result.outputs['depth/image']), expected, rtol=1e-5)
    assert 'disparity_relative/image' in disparity.output_topics()
    assert 'depth_relative/image' not in disparity.output_topics()


def test_wanted_topics_limit_the_work():
    """Only wanted outputs are built, and only the tasks they need are predicted."""
    truth = scene()
    relative = ((truth.depth - TRUE_SHIFT) / TRUE_SCALE).astype(np.float32)
    pipeline, predictor = make_pipeline(relative, truth.normals)
    frame = Frame(truth.rgb, header(2.0), info_for(truth.intrinsics),
                  wanted=frozenset({'depth/image'}))
    [result] = pipeline.process([frame])
    assert set(result.outputs) == {'depth/image'}
    assert predictor.calls[-1] == (1, ('depth',))
    frame.wanted = frozenset({'normals/colored'})
    [result] = pipeline.process([frame])
    assert set(result.outputs) == {'normals/colored'} and predictor.calls[-1] == (1, ('normal',))
    frame.wanted = frozenset()
    assert pipeline.process([frame])[0].outputs == {} and len(predictor.calls) == 2


def test_fixed_mode_cloud_is_the_scene():
    """Fixed scale/shift recover the scene; the cloud is its pinhole back-projection."""
    truth = scene()
    relative = ((truth.depth - TRUE_SHIFT) / TRUE_SCALE).astype(np.float32)
    pipeline, _ = make_pipeline(relative, truth.normals, scale_mode='fixed',
                                depth_scale=TRUE_SCALE, depth_shift=TRUE_SHIFT, voxel_size=0.2)
    info = info_for(truth.intrinsics)
    [result] = pipeline.process([Frame(truth.rgb, header(3.0), info)])
    depth = floats(result.outputs['depth/image'])
    np.testing.assert_allclose(depth, truth.depth, rtol=1e-5)
    cloud = result.outputs['points']
    fields = {field.name: field.offset for field in cloud.fields}
    raw = np.frombuffer(bytes(cloud.data), dtype=np.uint8).reshape(HEIGHT, WIDTH,
                                                                   cloud.point_step)
    z = raw[..., fields['z']:fields['z'] + 4].copy().view('<f4')[..., 0]
    x = raw[..., fields['x']:fields['x'] + 4].copy().view('<f4')[..., 0]
    u = np.arange(WIDTH)[None, :]
    k = truth.intrinsics
    np.testing.assert_allclose(z, truth.depth, rtol=1e-5)
    np.testing.assert_allclose(x, (u - k.cx) * truth.depth / k.fx, rtol=1e-4, atol=1e-6)
    voxel = result.outputs['points_voxel']
    assert voxel.height == 1 and 0 < voxel.width < WIDTH * HEIGHT
    # With cloud_color on (default) the voxel cloud carries the mean colour of its points.
    assert [field.name for field in voxel.fields] == ['x', 'y', 'z', 'rgb']
    voxel_raw = np.frombuffer(bytes(voxel.data), dtype=np.uint8).reshape(-1, voxel.point_step)
    rgb_at = voxel.fields[3].offset
    packed = voxel_raw[:, rgb_at:rgb_at + 4].copy().view('<u4')[:, 0]
    voxel_rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1)
    low, high = truth.rgb.reshape(-1, 3).min(axis=0), truth.rgb.reshape(-1, 3).max(axis=0)
    assert ((voxel_rgb >= low) & (voxel_rgb <= high)).all() and voxel_rgb.std() > 0
    assert result.outputs['scale'].data[:2].tolist() == [TRUE_SCALE, TRUE_SHIFT]


def depth_reference(depth_m, frame_id, seconds, outliers=0.3, seed=0):
    """Return a 16UC1 millimetre reference Image with a share of wrong readings."""
    rng = np.random.default_rng(seed)
    noisy = depth_m.copy()
    wrong = rng.random(noisy.shape) < outliers
    noisy[wrong] *= rng.uniform(0.3, 3.0, size=int(wrong.sum()))
    millimetres = np.nan_to_num(noisy * 1000.0, nan=0.0).astype(np.uint16)
    msg = Image(height=depth_m.shape[0], width=depth_m.shape[1], encoding='16UC1',
                step=depth_m.shape[1] * 2, data=millimetres.tobytes())
    msg.header = header(seconds, frame_id)
    return msg


def test_reference_mode_fits_holds_and_falls_back():
    """30 % outliers in a half-resolution reference: < 1 % error; then hold, then fall back."""
    truth = scene()
    relative = ((truth.depth - TRUE_SHIFT) / TRUE_SCALE).astype(np.float32)
    pipeline, _ = make_pipeline(relative, scale_mode='reference', hold_last_fit_s=1.0,
                                near_m=0.5, far_m=10.0)
    half = plane_scene(WIDTH // 2, HEIGHT // 2, intrinsics=truth.intrinsics.scaled(
        WIDTH // 2, HEIGHT // 2), normal=(0.2, -0.3, -1.0), point=(0.0, 0.0, 2.5))
    pipeline.add_reference(depth_reference(half.depth, 'cam_optical', 10.0), camera='',
                           camera_info=info_for(truth.intrinsics, WIDTH // 2, HEIGHT // 2))
    info = info_for(truth.intrinsics)
    wanted = frozenset({'depth/image', 'scale'})
    [result] = pipeline.process([Frame(truth.rgb, header(10.01), info, wanted=wanted)])
    assert result.scale.source == 'fitted', result.scale
    depth = floats(result.outputs['depth/image'])
    error = np.abs(depth - truth.depth) / truth.depth
    assert np.nanmedian(error) < 0.01
    assert result.outputs['scale'].data[0] == pytest.approx(TRUE_SCALE, rel=0.01)

    [held] = pipeline.process([Frame(truth.rgb, header(10.5), info, wanted=wanted)])
    assert held.scale.source == 'held'
    np.testing.assert_allclose(floats(held.outputs['depth/image']), depth, rtol=1e-6)

    [fallback] = pipeline.process([Frame(truth.rgb, header(12.0), info, wanted=wanted)])
    assert fallback.scale.source == 'fallback'
    np.testing.assert_allclose(floats(fallback.outputs['depth/image']),
                               0.5 + relative * 9.5, rtol=1e-5)


def test_reference_points_and_foreign_frame():
    """A PointCloud2 reference is projected with K; one from another frame is refused."""
    truth = scene()
    relative = ((truth.depth - TRUE_SHIFT) / TRUE_SCALE).astype(np.float32)
    pipeline, _ = make_pipeline(relative, scale_mode='reference')
    k = truth.intrinsics
    v, u = np.mgrid[0:HEIGHT:3, 0:WIDTH:3]
    z = truth.depth[v, u]
    xyz = np.stack([(u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z], -1).reshape(-1, 3)
    cloud = PointCloud2(height=1, width=xyz.shape[0], point_step=12, row_step=12 * xyz.shape[0],
                        is_dense=True, data=xyz.astype('<f4').tobytes())
    cloud.fields = [PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                    for i, name in enumerate('xyz')]
    cloud.header = header(20.0)
    pipeline.add_reference(cloud)
    info = info_for(k)
    [result] = pipeline.process([Frame(truth.rgb, header(20.0), info,
                                       wanted=frozenset({'depth/image'}))])
    assert result.scale.source == 'fitted'
    assert result.scale.scale == pytest.approx(TRUE_SCALE, rel=1e-3)

    cloud.header = header(30.0, 'lidar')
    other, _ = make_pipeline(relative, scale_mode='reference')
    other.add_reference(cloud)
    [result] = other.process([Frame(truth.rgb, header(30.0), info,
                                    wanted=frozenset({'depth/image'}))])
    assert result.scale.source == 'fallback'
    assert any(kind == 'reference' and 'lidar' in message for kind, message in result.problems)


def test_filters_range_and_far_saturation():
    """Range limits and far-plane saturation turn pixels into NaN (never 0)."""
    relative = np.tile(np.linspace(0, 1, WIDTH, dtype=np.float32), (HEIGHT, 1))
    pipeline, _ = make_pipeline(relative, near_m=1.0, far_m=5.0, min_range_m=2.0,
                                max_range_m=4.0)
    rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    [result] = pipeline.process([Frame(rgb, header(1.0), wanted=frozenset({'depth/image'}))])
    depth = floats(result.outputs['depth/image'])
    metric = 1.0 + relative * 4.0
    inside = (metric >= 2.0) & (metric <= 4.0)
    np.testing.assert_allclose(depth[inside], metric[inside], rtol=1e-6)
    assert np.isnan(depth[~inside]).all()

    saturated, _ = make_pipeline(relative, far_saturation_nan=True)
    [result] = saturated.process([Frame(rgb, header(1.0), wanted=frozenset({'depth/image'}))])
    depth = floats(result.outputs['depth/image'])
    assert np.isnan(depth[:, -1]).all() and np.isfinite(depth[:, :-1]).all()


def test_camera_info_problems_keep_depth_drop_clouds():
    """Missing or all-zero camera_info: depth published, no camera_info/cloud, a problem."""
    truth = scene()
    relative = ((truth.depth - TRUE_SHIFT) / TRUE_SCALE).astype(np.float32)
    pipeline, _ = make_pipeline(relative, truth.normals)
    wanted = frozenset({'depth/image', 'depth/camera_info', 'points'})
    for info in (None, CameraInfo(width=WIDTH, height=HEIGHT)):
        [result] = pipeline.process([Frame(truth.rgb, header(1.0), info, wanted=wanted)])
        assert set(result.outputs) == {'depth/image'}
        assert [kind for kind, _ in result.problems] == ['camera_info']


def test_two_frames_one_batch_each_with_its_header():
    """Frames of two cameras share one predict call and keep their own headers."""
    truth = scene()
    relative = ((truth.depth - TRUE_SHIFT) / TRUE_SCALE).astype(np.float32)
    pipeline, predictor = make_pipeline(relative, truth.normals)
    frames = [Frame(truth.rgb, header(1.0, 'a'), info_for(truth.intrinsics), camera='a'),
              Frame(truth.rgb, header(2.0, 'b'), None, camera='b')]
    results = pipeline.process(frames)
    assert predictor.calls == [(2, ('depth', 'normal'))]
    assert results[0].outputs['points'].header.frame_id == 'a'
    assert 'points' not in results[1].outputs
    assert results[1].outputs['depth/image'].header.stamp.sec == 2


def test_settings_validation_and_decode_errors():
    """Bad settings name the parameter; decode_image refuses other message types."""
    with pytest.raises(ValueError, match='near_m'):
        PipelineSettings.from_parameters({'near_m': 3.0, 'far_m': 2.0})
    with pytest.raises(ValueError, match='cloud_decimation'):
        PipelineSettings.from_parameters({'cloud_decimation': 0})
    with pytest.raises(ValueError, match='output_resolution'):
        PipelineSettings(output_resolution='native')
    with pytest.raises(ValueError, match='Unknown parameter'):
        PipelineSettings.from_parameters({'near': 1.0})
    with pytest.raises(TypeError, match='Image'):
        decode_image(CameraInfo())


def float_reference(depth_m, seconds):
    """Return a 32FC1 metre reference Image."""
    msg = Image(height=depth_m.shape[0], width=depth_m.shape[1], encoding='32FC1',
                step=depth_m.shape[1] * 4, data=depth_m.astype('<f4').tobytes())
    msg.header = header(seconds)
    return msg


def test_reference_with_nan_inf_and_time_going_backwards():
    """NaN/Inf reference pixels are ignored; a bag loop resets the scale state and says so."""
    truth = scene()
    relative = ((truth.depth - TRUE_SHIFT) / TRUE_SCALE).astype(np.float32)
    pipeline, _ = make_pipeline(relative, scale_mode='reference')
    reference = truth.depth.copy()
    reference[::2] = np.nan
    reference[1::4, ::3] = np.inf
    reference[3::4, ::5] = -1.0
    info = info_for(truth.intrinsics)
    wanted = frozenset({'depth/image'})
    pipeline.add_reference(float_reference(reference, 50.0))
    [result] = pipeline.process([Frame(truth.rgb, header(50.0), info, wanted=wanted)])
    assert result.scale.source == 'fitted'
    np.testing.assert_allclose(floats(result.outputs['depth/image']), truth.depth, rtol=1e-3)

    pipeline.add_reference(float_reference(truth.depth, 5.0))
    [looped] = pipeline.process([Frame(truth.rgb, header(5.0), info, wanted=wanted)])
    assert looped.scale.source == 'fitted'
    assert 'backwards' in looped.scale.status

    pipeline.add_reference(float_reference(np.full_like(truth.depth, np.nan), 6.0))
    [empty] = pipeline.process([Frame(truth.rgb, header(6.0), info, wanted=wanted)])
    assert empty.scale.source == 'held' and 'rejected' in empty.scale.status


def test_pipeline_imports_without_rclpy():
    """The offline tools reuse the pipeline; importing it must not pull in rclpy."""
    code = ('import sys, genpercept_ros.pipeline, genpercept_ros.pipeline.parameters; '
            "sys.exit('rclpy' in sys.modules)")
    assert subprocess.run([sys.executable, '-c', code], timeout=120).returncode == 0


def test_depth_normals_check_agrees_on_a_plane():
    """Normals from the metric depth of a plane agree with the plane's true normals."""
    truth = scene()
    relative = ((truth.depth - TRUE_SHIFT) / TRUE_SCALE).astype(np.float32)
    pipeline, _ = make_pipeline(relative, truth.normals, scale_mode='fixed',
                                depth_scale=TRUE_SCALE, depth_shift=TRUE_SHIFT,
                                depth_normals_check=True)
    frame = Frame(truth.rgb, header(1.0), info_for(truth.intrinsics),
                  wanted=frozenset({'depth/image', 'normals/image'}))
    [result] = pipeline.process([frame])
    assert result.normals_agreement_deg < 1.0
    flipped, _ = make_pipeline(relative, -truth.normals, scale_mode='fixed',
                               depth_scale=TRUE_SCALE, depth_shift=TRUE_SHIFT,
                               depth_normals_check=True)
    [result] = flipped.process([frame])
    assert result.normals_agreement_deg > 179.0
