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
genpercept_node in ground and reference modes over real rclpy topics, with an oracle model.

The oracle replaces the predictor's ``predict``: it returns the rendered scene's true depth
through a different affine map every frame (up to 2x between consecutive frames) and the true
normals, so the published metric depth must equal the rendered truth in every frame.
"""

import math

from genpercept_ros.geometry.intrinsics import Intrinsics
from genpercept_ros.geometry.synthetic import box_room
from genpercept_ros.geometry.synthetic import FLOOR
from genpercept_ros.messages.pointcloud import build_pointcloud
from genpercept_ros.node.ground_tf import tf2_available
from geometry_msgs.msg import TransformStamped
import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2
from test_node_ros import camera_info
from test_node_ros import cloud_array
from test_node_ros import diagnostic_values
from test_node_ros import harness  # noqa: F401 - the module-scoped fixture
from test_node_ros import image_array
from test_node_ros import image_msg
from test_node_ros import make_node  # noqa: F401 - the node factory fixture
from test_node_ros import stamp_of
from test_node_ros import wait_for
from test_pipeline_ground import camera_orientation
from test_pipeline_ground import OraclePredictor

pytestmark = pytest.mark.ros

WIDTH, HEIGHT = 64, 48
INTRINSICS = Intrinsics(fx=52.0, fy=50.0, cx=31.0, cy=23.5, width=WIDTH, height=HEIGHT)
PITCH, ROLL, CAMERA_HEIGHT = 18.0, -5.0, 0.8
TYPES = {'depth/image': Image, 'ground/mask': Image, 'depth/confidence': Image,
         'points_obstacles': PointCloud2, 'points': PointCloud2}


@pytest.fixture(scope='module')
def scene():
    boxes = (((-1.0, CAMERA_HEIGHT - 0.5, 1.8), (-0.3, CAMERA_HEIGHT, 2.6)),
             ((0.3, CAMERA_HEIGHT - 0.6, 2.0), (1.1, CAMERA_HEIGHT, 2.8)))
    return box_room(WIDTH, HEIGHT, intrinsics=INTRINSICS, room_size=(4.0, 2.6, 6.0),
                    camera_height=CAMERA_HEIGHT, boxes=boxes,
                    orientation=camera_orientation(PITCH, ROLL))


def oracle_node(make_node, scene, **parameters):  # noqa: F811  # noqa: F811
    node, namespace = make_node(fit_min_points=20, **parameters)
    oracle = OraclePredictor(scene)
    node.core.pipeline.predictor.predict = oracle.predict
    return node, namespace, oracle


def subscribe(harness, namespace, topics):  # noqa: F811  # noqa: F811
    for topic in topics:
        key = f'{namespace}/{topic}'
        harness.received[key] = []
        harness.client.create_subscription(TYPES[topic], key, harness.received[key].append, 10)


def frame_outputs(harness, namespace, topics, scene, seconds,  # noqa: F811
                  before_image=None):  # noqa: F811
    """Publish one frame until every topic delivered a message with its stamp; return them."""
    image_pub, info_pub = harness.camera(namespace)
    stamp = stamp_of(seconds)

    def send():
        if before_image is not None:
            before_image(stamp)
        info_pub.publish(camera_info(stamp=stamp))
        image_pub.publish(image_msg(scene.rgb, stamp))

    def stamped(topic):
        return [m for m in harness.received[f'{namespace}/{topic}'] if m.header.stamp == stamp]

    assert wait_for(lambda: all(stamped(topic) for topic in topics), 20.0, send, period=0.3), \
        {topic: len(stamped(topic)) for topic in topics}
    return {topic: stamped(topic)[0] for topic in topics}


def assert_metric(depth, truth):
    valid = np.isfinite(truth)
    error = np.abs(depth[valid] - truth[valid]) / truth[valid]
    assert np.isfinite(error).all() and error.max() < 0.01, float(np.nanmax(error))


def test_ground_mode_metric_every_frame_mask_and_obstacles(harness, make_node,  # noqa: F811
                                                           scene):
    node, namespace, oracle = oracle_node(
        make_node, scene, scale_mode='ground', camera_height_m=CAMERA_HEIGHT,
        ground_orientation='parameters', camera_pitch_deg=PITCH, camera_roll_deg=ROLL)
    topics = ['depth/image', 'ground/mask', 'points_obstacles', 'depth/confidence']
    subscribe(harness, namespace, topics)
    for index in range(4):
        out = frame_outputs(harness, namespace, topics, scene, 300.0 + index)
        assert_metric(image_array(out['depth/image']), scene.depth)
        mask = np.frombuffer(bytes(out['ground/mask'].data), np.uint8).reshape(HEIGHT, WIDTH)
        assert out['ground/mask'].encoding == 'mono8'
        np.testing.assert_array_equal(mask == 255, scene.labels == FLOOR)
        cloud = cloud_array(out['points_obstacles'])
        kept = np.isfinite(cloud['z'])
        assert not kept[scene.labels == FLOOR].any()
        assert kept[scene.labels >= 5].mean() > 0.9  # the boxes are obstacles
        confidence = image_array(out['depth/confidence'])
        assert out['depth/confidence'].encoding == '32FC1'
        assert 0.0 <= confidence.min() and confidence.max() <= 1.0
    gains = [gain for gain, _ in oracle.maps]
    ratios = [b / a for a, b in zip(gains, gains[1:])]
    assert max(max(ratios), 1 / min(ratios)) > 1.7
    # The scale's source and health are in diagnostics.
    status = f'{namespace}/genpercept_node: camera'
    assert wait_for(lambda: diagnostic_values(harness, status).get('scale_mode') == 'ground',
                    5.0)
    values = diagnostic_values(harness, status)
    assert values['scale_source'] == 'fitted' and values['floor_up_source'] == 'parameters'
    assert float(values['inlier_ratio']) > 0.5


def test_reference_mode_sparse_points_metric_every_frame(harness, make_node,  # noqa: F811
                                                         scene):
    node, namespace, _ = oracle_node(make_node, scene, scale_mode='reference',
                                     reference_type='points')
    subscribe(harness, namespace, ['depth/image'])
    publisher = harness.client.create_publisher(PointCloud2, f'{namespace}/reference/points',
                                                qos_profile_sensor_data)
    rng = np.random.default_rng(5)
    valid = np.argwhere(np.isfinite(scene.depth))
    rays = INTRINSICS.rays()

    def send_reference(stamp):
        pick = valid[rng.choice(len(valid), size=120, replace=False)]
        xyz = scene.depth[pick[:, 0], pick[:, 1], None] * rays[pick[:, 0], pick[:, 1]]
        cloud = build_pointcloud(None, xyz[None].astype(np.float32))
        cloud.header.stamp, cloud.header.frame_id = stamp, 'camera_optical'
        publisher.publish(cloud)

    for index in range(4):
        out = frame_outputs(harness, namespace, ['depth/image'], scene, 400.0 + index,
                            send_reference)
        assert_metric(image_array(out['depth/image']), scene.depth)


class FakeTfBuffer:
    """tf2_ros.Buffer's lookup_transform(target_frame, source_frame, time, timeout)."""

    def __init__(self, transform):
        self.transform = transform
        self.calls = []

    def lookup_transform(self, target_frame, source_frame, time, timeout=None):
        self.calls.append((target_frame, source_frame))
        if source_frame != self.transform.header.frame_id:
            raise LookupError(f'"{source_frame}" passed to lookupTransform does not exist')
        return self.transform


def _transform_optical_from_base():
    room_from_base = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    rotation = camera_orientation(PITCH, ROLL).T @ room_from_base
    w = math.sqrt(1.0 + np.trace(rotation)) / 2.0
    msg = TransformStamped()
    msg.header.frame_id = 'base_footprint'
    msg.child_frame_id = 'camera_optical'
    q = msg.transform.rotation
    q.x = (rotation[2, 1] - rotation[1, 2]) / (4 * w)
    q.y = (rotation[0, 2] - rotation[2, 0]) / (4 * w)
    q.z = (rotation[1, 0] - rotation[0, 1]) / (4 * w)
    q.w = w
    return msg


def test_tf_and_parameters_give_the_same_depth(harness, make_node, scene):  # noqa: F811
    """The TF source (a buffer with tf2_ros's lookup_transform) matches pitch/roll parameters."""
    depths = {}
    buffer = FakeTfBuffer(_transform_optical_from_base())
    for source in ('auto', 'parameters'):
        extra = {'camera_pitch_deg': PITCH, 'camera_roll_deg': ROLL} \
            if source == 'parameters' else {}
        node, namespace, _ = oracle_node(make_node, scene, scale_mode='ground',
                                         camera_height_m=CAMERA_HEIGHT,
                                         ground_orientation=source, **extra)
        if source == 'auto':
            node.core.use_tf_buffer(buffer)
        subscribe(harness, namespace, ['depth/image'])
        out = frame_outputs(harness, namespace, ['depth/image'], scene, 500.0)
        depths[source] = image_array(out['depth/image'])
        assert_metric(depths[source], scene.depth)
        report = node.core.pipeline.scale_status()
        assert report.up_source == ('tf' if source == 'auto' else 'parameters')
    assert buffer.calls[0] == ('camera_optical', 'base_footprint')
    np.testing.assert_allclose(depths['auto'], depths['parameters'], rtol=1e-4)


@pytest.mark.skipif(tf2_available(), reason='tf2_ros is importable here')
def test_tf_orientation_without_tf2_ros_refuses_to_start(harness, make_node):  # noqa: F811
    with pytest.raises(ValueError, match='tf2_ros'):
        make_node(scale_mode='ground', camera_height_m=1.0, ground_orientation='tf')


def test_ground_mode_without_a_normal_model_refuses_to_start(harness, make_node):  # noqa: F811
    with pytest.raises(Exception, match='normal_model'):
        make_node(scale_mode='ground', camera_height_m=1.0, normal_model='')


def test_tf_lookup_uses_the_image_stamp_then_the_latest_transform():
    from genpercept_ros.geometry.ground import up_from_pitch_roll
    from genpercept_ros.node.ground_tf import tf_up_lookup
    transform = _transform_optical_from_base()

    class StampedBuffer:
        """Only the latest transform (time 0) exists, as for a static mount published late."""

        def __init__(self):
            self.times = []

        def lookup_transform(self, target_frame, source_frame, time, timeout=None):
            self.times.append(time.nanoseconds)
            if time.nanoseconds != 0:
                raise LookupError('Lookup would require extrapolation into the past')
            return transform

    buffer = StampedBuffer()
    rotation = tf_up_lookup(buffer)('camera_optical', 'base_footprint', stamp_of(12.5))
    np.testing.assert_allclose(rotation[:, 2], up_from_pitch_roll(PITCH, ROLL), atol=1e-9)
    assert buffer.times == [12_500_000_000, 0]
    with pytest.raises(LookupError, match='does not exist'):
        tf_up_lookup(FakeTfBuffer(transform))('camera_optical', 'odom', stamp_of(1.0))
