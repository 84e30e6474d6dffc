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
Ground and reference modes over time with an oracle predictor in place of the model.

The oracle returns the scene's true depth through a different affine map every frame (up to 2x
between consecutive frames, like the model's per-image normalisation) and the true normals, so
every expectation is the rendered truth itself.
"""

import math

from builtin_interfaces.msg import Time
from genpercept_ros.geometry.ground import fit_ground_scale
from genpercept_ros.geometry.ground import up_from_pitch_roll
from genpercept_ros.geometry.intrinsics import Intrinsics
from genpercept_ros.geometry.synthetic import box_room
from genpercept_ros.geometry.synthetic import FLOOR
from genpercept_ros.messages.pointcloud import build_pointcloud
from genpercept_ros.model.predictor import PredictionOutput
from genpercept_ros.model.registry import MODELS
from genpercept_ros.pipeline import Frame
from genpercept_ros.pipeline import FramePipeline
from genpercept_ros.pipeline import PipelineSettings
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

WIDTH, HEIGHT = 96, 72
INTRINSICS = Intrinsics(fx=60.0, fy=60.0, cx=47.5, cy=35.5, width=WIDTH, height=HEIGHT)
PITCH, ROLL, CAMERA_HEIGHT = 20.0, 6.0, 0.9


def camera_orientation(pitch_deg, roll_deg):
    """Columns: the camera's optical axes in the room frame (see test_geometry_ground)."""
    pitch, roll = math.radians(pitch_deg), math.radians(roll_deg)
    rot_x = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(pitch), math.sin(pitch)],
                      [0.0, -math.sin(pitch), math.cos(pitch)]])
    rot_z = np.array([[math.cos(roll), -math.sin(roll), 0.0],
                      [math.sin(roll), math.cos(roll), 0.0], [0.0, 0.0, 1.0]])
    return rot_x @ rot_z


def render(pitch=PITCH, roll=ROLL, height=CAMERA_HEIGHT):
    boxes = (((-1.2, height - 0.5, 2.0), (-0.4, height, 2.8)),
             ((0.3, height - 0.78, 2.2), (1.3, height - 0.72, 3.0)))  # a box and a table top
    return box_room(WIDTH, HEIGHT, intrinsics=INTRINSICS, room_size=(5.0, 2.6, 7.0),
                    camera_height=height, boxes=boxes,
                    orientation=camera_orientation(pitch, roll))


class OraclePredictor:
    """The true depth through a new affine map per call (up to 2x change), true normals."""

    def __init__(self, scene, kind='relative_depth', seed=0):
        self.scene = scene
        self.kind = kind
        self.depth_spec = MODELS['depth-v2' if kind == 'relative_depth' else 'disparity-v2']
        self.normal_spec = MODELS['normal-v2']
        assert self.depth_spec.output_kind == kind
        self.rng = np.random.default_rng(seed)
        self.gain = 1.0
        self.maps = []

    def predict(self, images, processing_resolution, output_resolution, tasks):
        out = PredictionOutput()
        depth = self.scene.depth.astype(np.float64)
        target = depth if self.kind == 'relative_depth' else 1.0 / depth
        low, high = np.nanmin(target), np.nanmax(target)
        relatives = []
        for _ in images:
            self.gain *= self.rng.choice([0.5, 2.0]) * self.rng.uniform(0.9, 1.0)
            offset = self.rng.uniform(-0.2, 0.2)
            self.maps.append((self.gain, offset))
            relatives.append((offset + self.gain * (target - low) / (high - low)).astype(
                np.float32))
        if 'depth' in tasks:
            out.depth = relatives
            out.depth_kind = self.kind
        if 'normal' in tasks:
            out.normals = [self.scene.normals.copy() for _ in images]
        return out


def info():
    msg = CameraInfo(width=WIDTH, height=HEIGHT)
    k = INTRINSICS
    msg.k = [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]
    msg.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def header(seconds, frame_id='cam_optical'):
    return Header(stamp=Time(sec=int(seconds), nanosec=int(round(seconds % 1 * 1e9))),
                  frame_id=frame_id)


def floats(msg):
    return np.frombuffer(bytes(msg.data), dtype='<f4').reshape(msg.height, msg.width)


def cloud_xyz(msg):
    names = [field.name for field in msg.fields]
    data = np.frombuffer(bytes(msg.data), dtype='<f4').reshape(msg.height, msg.width, -1)
    return np.stack([data[..., names.index(axis)] for axis in 'xyz'], axis=-1), names


def pipeline_for(scene, kind='relative_depth', **parameters):
    values = {'processing_resolution': 96, 'scale_mode': 'ground',
              'camera_height_m': CAMERA_HEIGHT, 'ground_orientation': 'parameters',
              'camera_pitch_deg': PITCH, 'camera_roll_deg': ROLL}
    values.update(parameters)
    predictor = OraclePredictor(scene, kind)
    return FramePipeline(predictor, PipelineSettings.from_parameters(values)), predictor


def run(pipeline, scene, seconds, wanted=None):
    [result] = pipeline.process([Frame(scene.rgb, header(seconds), info(),
                                       wanted=None if wanted is None else frozenset(wanted))])
    return result


def relative_error(depth, truth):
    valid = np.isfinite(truth)
    assert np.isfinite(depth[valid]).mean() > 0.99
    return np.abs(depth[valid] - truth[valid]) / truth[valid]


@pytest.mark.parametrize('kind', ['relative_depth', 'relative_disparity'])
@pytest.mark.parametrize('orientation', ['parameters', 'normals'])
def test_ground_mode_is_metric_in_every_frame_although_the_map_changes(kind, orientation):
    scene = render()
    pipeline, predictor = pipeline_for(scene, kind, ground_orientation=orientation,
                                       scale_smoothing=0.5)
    for index in range(8):
        result = run(pipeline, scene, 10.0 + 0.1 * index, {'depth/image', 'scale'})
        assert result.scale.source == 'fitted', result.scale.status
        error = relative_error(floats(result.outputs['depth/image']), scene.depth)
        assert error.max() < 0.01, (index, predictor.maps[-1], float(error.max()))
    ratios = [b[0] / a[0] for a, b in zip(predictor.maps, predictor.maps[1:])]
    assert max(max(ratios), 1 / min(ratios)) > 1.7  # the map did change by ~2x per frame


def test_floor_outputs_mask_obstacles_and_confidence():
    scene = render()
    pipeline, _ = pipeline_for(scene, cloud_color=False)
    result = run(pipeline, scene, 5.0)
    outputs = result.outputs
    mask = outputs['ground/mask']
    assert mask.encoding == 'mono8' and mask.header.frame_id == 'cam_optical'
    floor = np.frombuffer(bytes(mask.data), dtype=np.uint8).reshape(HEIGHT, WIDTH)
    assert set(np.unique(floor)) <= {0, 255}
    np.testing.assert_array_equal(floor == 255, scene.labels == FLOOR)

    points, names = cloud_xyz(outputs['points'])
    obstacles, obstacle_names = cloud_xyz(outputs['points_obstacles'])
    assert obstacle_names == names
    cloud = outputs['points_obstacles']
    assert (cloud.height, cloud.width) == (HEIGHT, WIDTH)
    kept = np.isfinite(obstacles).all(axis=-1)
    assert not kept[scene.labels == FLOOR].any()  # no floor point
    np.testing.assert_allclose(obstacles[kept], points[kept], rtol=1e-6)
    up = up_from_pitch_roll(PITCH, ROLL)
    height = obstacles[kept] @ up + CAMERA_HEIGHT
    assert height.min() > 0.0  # nothing below the floor plane
    # Every box, table and wall point clearly above the floor is an obstacle; points within
    # 5 % of the camera height of the floor plane (box feet, wall bottoms) count as floor level.
    true_xyz = scene.depth[..., None] * INTRINSICS.rays()
    true_height = true_xyz @ up + CAMERA_HEIGHT
    margin = 0.05 * CAMERA_HEIGHT
    above = np.isfinite(true_height) & (true_height > 1.2 * margin)
    assert above[scene.labels >= 5].mean() > 0.8
    assert kept[above].all()
    assert not kept[np.isfinite(true_height) & (true_height < 0.8 * margin)].any()

    confidence = floats(outputs['depth/confidence'])
    assert outputs['depth/confidence'].encoding == '32FC1'
    assert confidence.min() >= 0.0 and confidence.max() <= 1.0
    assert np.median(confidence[np.isfinite(scene.depth)]) > 0.95


def test_min_confidence_drops_points_from_both_clouds():
    scene = render()
    pipeline, _ = pipeline_for(scene, min_confidence=0.9)
    result = run(pipeline, scene, 5.0)
    confidence = floats(result.outputs['depth/confidence'])
    for topic in ('points', 'points_obstacles'):
        points, _ = cloud_xyz(result.outputs[topic])
        kept = np.isfinite(points).all(axis=-1)
        assert kept.any()
        assert confidence[kept].min() >= 0.9
    points, _ = cloud_xyz(result.outputs['points'])
    low = (confidence < 0.9) & np.isfinite(scene.depth)
    assert low.any() and not np.isfinite(points[low]).any()


def test_orientation_sources_give_the_same_fit_as_up_passed_directly():
    scene = render()
    orientation = camera_orientation(PITCH, ROLL)
    # base_link (x forward, y left, z up) in the room frame (x right, y down, z forward).
    room_from_base = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    optical_from_base = orientation.T @ room_from_base
    lookups = []

    def lookup(target_frame, source_frame, stamp):
        lookups.append((target_frame, source_frame, stamp.sec))
        return optical_from_base

    scales = {}
    for source in ('parameters', 'tf'):
        pipeline, predictor = pipeline_for(scene, ground_orientation=source,
                                           base_frame='base_footprint')
        pipeline.up_lookup = lookup
        result = run(pipeline, scene, 7.0, {'depth/image', 'scale'})
        assert result.scale.up_source == source
        relative = predictor_relative(predictor, scene)
        direct = fit_ground_scale(relative, scene.normals, INTRINSICS, CAMERA_HEIGHT,
                                  up=up_from_pitch_roll(PITCH, ROLL))
        scales[source] = (result.scale.scale, result.scale.shift)
        assert scales[source] == pytest.approx((direct.scale, direct.shift), rel=1e-6)
    assert lookups == [('cam_optical', 'base_footprint', 7)]


def predictor_relative(predictor, scene):
    """Rebuild the relative map of the oracle's last call."""
    gain, offset = predictor.maps[-1]
    depth = scene.depth.astype(np.float64)
    return (offset + gain * (depth - np.nanmin(depth))
            / (np.nanmax(depth) - np.nanmin(depth))).astype(np.float32)


def test_tf_failure_in_auto_mode_uses_the_next_source_and_says_so():
    scene = render()
    pipeline, _ = pipeline_for(scene, ground_orientation='auto')

    def lookup(target_frame, source_frame, stamp):
        raise LookupError('"base_footprint" passed to lookupTransform does not exist')

    pipeline.up_lookup = lookup
    result = run(pipeline, scene, 3.0, {'depth/image'})
    assert result.scale.source == 'fitted' and result.scale.up_source == 'parameters'
    assert any(kind == 'tf' and 'base_footprint' in message
               for kind, message in result.problems)


def test_no_floor_in_view_falls_back_with_the_reason_and_no_obstacle_cloud():
    scene = render(pitch=-35.0, roll=0.0)  # looking up at the back wall and ceiling
    pipeline, _ = pipeline_for(scene, camera_pitch_deg=-35.0, camera_roll_deg=0.0)
    result = run(pipeline, scene, 1.0)
    assert result.scale.source == 'fallback'
    assert 'floor' in result.scale.status
    assert 'points_obstacles' not in result.outputs and 'ground/mask' not in result.outputs
    assert any(kind == 'ground' for kind, _ in result.problems)


def test_held_depth_follows_the_new_normalisation_when_the_floor_disappears():
    scene = render()
    pipeline, _ = pipeline_for(scene, hold_last_fit_s=2.0)
    run(pipeline, scene, 1.0, {'depth/image'})
    # Nothing faces up any more (floor, lids and table top unseen): no floor fit this frame.
    facing_up = scene.normals @ up_from_pitch_roll(PITCH, ROLL) > 0.5
    hidden = np.where(facing_up[..., None], np.float32(np.nan), scene.normals)
    pipeline.predictor.scene = scene.__class__(scene.depth, hidden, scene.rgb, scene.labels,
                                               scene.intrinsics)
    result = run(pipeline, scene, 1.5, {'depth/image'})
    assert result.scale.source == 'held', result.scale.status
    assert relative_error(floats(result.outputs['depth/image']), scene.depth).max() < 0.01


@pytest.mark.parametrize('kind', ['relative_depth', 'relative_disparity'])
def test_reference_mode_with_a_sparse_reference_is_metric_in_every_frame(kind):
    scene = render()
    pipeline, _ = pipeline_for(scene, kind, scale_mode='reference', reference_type='points',
                               scale_smoothing=0.5, camera_height_m=0.0)
    rng = np.random.default_rng(1)
    valid = np.argwhere(np.isfinite(scene.depth))
    for index in range(8):
        stamp = 20.0 + 0.1 * index
        if index % 3 != 2:  # every third frame has no reference: held, re-fitted
            pick = valid[rng.choice(len(valid), size=150, replace=False)]
            rays = INTRINSICS.rays()[pick[:, 0], pick[:, 1]]
            xyz = scene.depth[pick[:, 0], pick[:, 1], None] * rays
            pipeline.add_reference(build_pointcloud(header(stamp), xyz[None].astype(
                np.float32)))
        result = run(pipeline, scene, stamp, {'depth/image', 'scale'})
        assert result.scale.source == ('held' if index % 3 == 2 else 'fitted'), \
            result.scale.status
        error = relative_error(floats(result.outputs['depth/image']), scene.depth)
        assert error.max() < 0.01, (index, float(error.max()))


def test_ground_mode_needs_normals_and_a_camera_height():
    with pytest.raises(ValueError, match='normal_model'):
        PipelineSettings.from_parameters({'scale_mode': 'ground', 'camera_height_m': 1.0,
                                          'normal_model': ''})
    with pytest.raises(ValueError, match='camera_height_m'):
        PipelineSettings.from_parameters({'scale_mode': 'ground'})


def test_reference_mode_with_a_camera_height_also_publishes_the_floor():
    scene = render()
    pipeline, _ = pipeline_for(scene, scale_mode='reference', reference_type='depth')
    pipeline.add_reference(array_image(scene.depth, header(4.0)))
    result = run(pipeline, scene, 4.0, {'depth/image', 'ground/mask', 'points_obstacles'})
    assert result.scale.source == 'fitted' and result.scale.up_source == 'parameters'
    mask = result.outputs['ground/mask']
    floor = np.frombuffer(bytes(mask.data), dtype=np.uint8).reshape(HEIGHT, WIDTH) == 255
    np.testing.assert_array_equal(floor, scene.labels == FLOOR)
    obstacles, _ = cloud_xyz(result.outputs['points_obstacles'])
    assert not np.isfinite(obstacles[scene.labels == FLOOR]).any()


def test_range_mode_floor_topics_say_why_they_are_empty_when_asked():
    scene = render()
    pipeline, _ = pipeline_for(scene, scale_mode='range', camera_height_m=0.0)
    result = run(pipeline, scene, 2.0, {'depth/image', 'points_obstacles'})
    assert 'points_obstacles' not in result.outputs
    assert any(kind == 'ground' and 'camera_height_m' in message
               for kind, message in result.problems)
    everything = run(pipeline, scene, 2.1)  # wanted = all (genpercept bag): no complaint
    assert not any(kind == 'ground' for kind, _ in everything.problems)
    assert 'depth/confidence' in everything.outputs


def array_image(depth, stamp_header):
    from genpercept_ros.messages.image import array_to_image
    return array_to_image(np.asarray(depth, dtype=np.float32), '32FC1', stamp_header)
