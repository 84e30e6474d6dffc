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
genpercept_node over real rclpy topics: tiny weights, CPU, 64x48 images.

The node runs in this process on a background executor; the test talks to it only through
topics (a best-effort camera publisher, default reliable subscribers), the parameter API and
lifecycle transitions. Expectations are independent: pinhole back-projection written out
here, the pixel-centre resize rule, unit-length normals, REP 117 NaN conventions.
"""

import itertools
import os
import threading
import time

from builtin_interfaces.msg import Time
import cv2
from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import CompressedImage
from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Float64MultiArray

pytestmark = pytest.mark.ros

WIDTH, HEIGHT = 64, 48
FX, FY, CX, CY = 52.0, 50.0, 31.0, 23.5
_NAMESPACES = itertools.count()

OUTPUT_TYPES = {
    'depth_relative/image': Image, 'depth/image': Image, 'depth/camera_info': CameraInfo,
    'depth/colored': Image, 'normals/image': Image, 'normals/colored': Image,
    'points': PointCloud2, 'scale': Float64MultiArray, 'depth/scale': DiagnosticArray,
}


def camera_info(width=WIDTH, height=HEIGHT, frame_id='camera_optical', stamp=None):
    """Return a calibrated CameraInfo (P = K, monocular)."""
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob', d=[0.0] * 5)
    scale = width / WIDTH
    fx, fy, cx, cy = FX * scale, FY * scale, (CX + 0.5) * scale - 0.5, (CY + 0.5) * scale - 0.5
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.header.frame_id = frame_id
    if stamp is not None:
        info.header.stamp = stamp
    return info


def rgb_array(width=WIDTH, height=HEIGHT, seed=0):
    """Return a smooth synthetic RGB image (gradients and a bright square)."""
    rng = np.random.default_rng(seed)
    u = np.linspace(0, 1, width)[None, :, None]
    v = np.linspace(0, 1, height)[:, None, None]
    base = rng.uniform(0.2, 0.8, size=3)[None, None, :]
    image = (0.5 * u + 0.3 * v + 0.2 * base) * 255
    image[height // 4: height // 2, width // 4: width // 2] = 240
    return np.clip(image, 0, 255).astype(np.uint8)


def image_msg(rgb, stamp, frame_id='camera_optical', encoding='rgb8'):
    """Return a packed rgb8 Image (independent of the package's codecs)."""
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, is_bigendian=0,
                step=rgb.shape[1] * 3)
    msg.data = rgb.tobytes()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def raw_image(width, height, encoding, step, data, bigendian=0):
    """Return an Image with exactly the given (possibly inconsistent) fields."""
    msg = Image(width=width, height=height, encoding=encoding, step=step, is_bigendian=bigendian)
    msg.data = bytes(data)
    msg.header.frame_id = 'camera_optical'
    return msg


def compressed_image(fmt, data):
    """Return a CompressedImage with the given format string and payload."""
    msg = CompressedImage(format=fmt)
    msg.data = bytes(data)
    msg.header.frame_id = 'camera_optical'
    return msg


def image_array(msg):
    """Decode a 32FC1/32FC3/rgb8 Image honouring ``step`` (independent of the codecs)."""
    channels = {'32FC1': 1, '32FC3': 3, 'rgb8': 3}[msg.encoding]
    dtype = np.uint8 if msg.encoding == 'rgb8' else np.dtype('<f4')
    itemsize = np.dtype(dtype).itemsize
    rows = np.frombuffer(bytes(msg.data), dtype=dtype).reshape(msg.height, msg.step // itemsize)
    data = rows[:, :msg.width * channels]
    return data.reshape(msg.height, msg.width, channels).squeeze(-1) if channels == 1 else \
        data.reshape(msg.height, msg.width, channels)


def cloud_array(msg):
    """Return an (H, W) structured array of a PointCloud2 read from its field table."""
    assert not msg.is_bigendian
    fields = {'names': [], 'formats': [], 'offsets': [], 'itemsize': msg.point_step}
    for field in msg.fields:
        assert field.datatype == 7 and field.count == 1, field  # FLOAT32
        fields['names'].append(field.name)
        fields['formats'].append('<f4')
        fields['offsets'].append(field.offset)
    points = np.frombuffer(bytes(msg.data), dtype=np.dtype(fields))
    return points.reshape(msg.height, msg.width)


def stamp_of(seconds):
    """Return a builtin_interfaces/Time for float seconds."""
    return Time(sec=int(seconds), nanosec=int(round((seconds % 1) * 1e9)))


class Harness:
    """One rclpy context, an executor thread, and a test node talking to the node under test."""

    def __init__(self):
        self.context = Context()
        rclpy.init(context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.client = Node('genpercept_test_client', context=self.context)
        self.executor.add_node(self.client)
        self.received = {}
        self.diagnostics = []
        self.client.create_subscription(DiagnosticArray, '/diagnostics',
                                        self.diagnostics.append, 10)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: B902 - shutdown races end the loop
                if not self.context.ok():
                    return
                raise

    def add(self, node):
        """Spin ``node`` too."""
        self.executor.add_node(node)
        return node

    def remove(self, node):
        """Stop spinning and destroy ``node``."""
        self.executor.remove_node(node)
        node.destroy_node()

    def subscribe(self, namespace, topics):
        """Subscribe (default, reliable QoS) to ``namespace/topic`` for each output topic."""
        for topic in topics:
            key = f'{namespace}/{topic}'
            self.received[key] = []
            self.client.create_subscription(OUTPUT_TYPES.get(topic, Image), key,
                                            self.received[key].append, 10)

    def camera(self, namespace, compressed=False):
        """Return best-effort (sensor data) publishers for image and camera_info."""
        image_type, image_topic = (CompressedImage, 'image/compressed') if compressed else \
            (Image, 'image')
        return (self.client.create_publisher(image_type, f'{namespace}/{image_topic}',
                                             qos_profile_sensor_data),
                self.client.create_publisher(CameraInfo, f'{namespace}/camera_info',
                                             qos_profile_sensor_data))

    def close(self):
        """Shut the context down and join the executor thread."""
        rclpy.try_shutdown(context=self.context)
        self._thread.join(2.0)
        self.executor.shutdown(timeout_sec=1.0)


def wait_for(predicate, timeout=15.0, action=None, period=0.1):
    """Poll ``predicate`` (calling ``action`` every ``period``) until true or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if action is not None:
            action()
        time.sleep(period)
    return predicate()


def scale_values(msg):
    """Return the key/value dict of a depth/scale DiagnosticArray (one status named scale)."""
    assert [status.name for status in msg.status] == ['scale']
    return {item.key: item.value for item in msg.status[0].values}


def diagnostic_values(harness, camera_name_part):
    """Return the key/value dict of the newest camera status whose name contains the text."""
    for array in reversed(harness.diagnostics):
        for status in array.status:
            if camera_name_part in status.name:
                return {item.key: item.value for item in status.values}
    return {}


@pytest.fixture(scope='module')
def harness():
    """Run one rclpy context for the whole module."""
    instance = Harness()
    yield instance
    instance.close()


@pytest.fixture
def make_node(harness, tiny_model_root):
    """Start genpercept nodes in fresh namespaces; destroy them afterwards."""
    from genpercept_ros.node import GenPerceptNode
    created = []

    def factory(node_class=GenPerceptNode, **parameters):
        namespace = f'/gp_test_{next(_NAMESPACES)}'
        values = {'model_root': str(tiny_model_root), 'device': 'cpu',
                  'processing_resolution': 64, 'diagnostics_period_s': 0.2}
        values.update(parameters)
        node = node_class(namespace=namespace, context=harness.context,
                          parameter_overrides=[Parameter(name, value=value)
                                               for name, value in values.items()])
        created.append(harness.add(node))
        return node, namespace

    yield factory
    for node in created:
        harness.remove(node)


def publish_until(harness, namespace, topics, rgb, stamp, compressed=False, timeout=20.0):
    """Publish one frame (and camera_info) repeatedly until every topic received a message."""
    image_pub, info_pub = harness.camera(namespace, compressed)
    if compressed:
        ok, encoded = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        msg = CompressedImage(format='rgb8; png compressed bgr8', data=encoded.tobytes())
        msg.header.stamp, msg.header.frame_id = stamp, 'camera_optical'
    else:
        msg = image_msg(rgb, stamp)
    info = camera_info(rgb.shape[1], rgb.shape[0], stamp=stamp)

    def send():
        info_pub.publish(info)
        image_pub.publish(msg)

    keys = [f'{namespace}/{topic}' for topic in topics]
    assert wait_for(lambda: all(harness.received[key] for key in keys), timeout, send), \
        {key: len(harness.received[key]) for key in keys}
    return {topic: harness.received[key][-1] for topic, key in zip(topics, keys)}


def check_cloud_matches_depth(cloud, depth, info, rgb=None):
    """Assert the organized cloud equals the pinhole back-projection of the depth image."""
    fx, cx, fy, cy = info.p[0], info.p[2], info.p[5], info.p[6]
    points = cloud_array(cloud)
    assert (cloud.height, cloud.width) == depth.shape and not cloud.is_dense
    u = np.arange(depth.shape[1])[None, :]
    v = np.arange(depth.shape[0])[:, None]
    valid = np.isfinite(depth) & (depth > 0)
    np.testing.assert_allclose(points['z'][valid], depth[valid], rtol=1e-6)
    np.testing.assert_allclose(points['x'][valid], ((u - cx) * depth / fx)[valid],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(points['y'][valid], ((v - cy) * depth / fy)[valid],
                               rtol=1e-5, atol=1e-6)
    assert np.isnan(points['z'][~valid]).all()
    if rgb is not None:
        packed = points['rgb'].view('<u4')
        colours = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1)
        np.testing.assert_array_equal(colours, rgb)


def test_every_output_with_input_header_sizes_and_geometry(harness, make_node):
    """A best-effort camera feeds the node; reliable subscribers get every output, correct."""
    node, namespace = make_node()
    topics = list(OUTPUT_TYPES)
    harness.subscribe(namespace, topics)
    rgb = rgb_array()
    stamp = stamp_of(1234.5)
    out = publish_until(harness, namespace, topics, rgb, stamp)

    for topic, msg in out.items():
        if topic != 'scale':
            assert msg.header.stamp == stamp, topic
            assert msg.header.frame_id == 'camera_optical', topic
    encodings = {'depth_relative/image': '32FC1', 'depth/image': '32FC1',
                 'depth/colored': 'rgb8', 'normals/image': '32FC3', 'normals/colored': 'rgb8'}
    for topic, encoding in encodings.items():
        assert out[topic].encoding == encoding
        assert (out[topic].width, out[topic].height) == (WIDTH, HEIGHT)

    relative = image_array(out['depth_relative/image'])
    assert np.nanmin(relative) >= 0.0 and np.nanmax(relative) <= 1.0
    depth = image_array(out['depth/image'])
    # Default scale_mode 'range' on a depth variant: d = near + r (far - near).
    np.testing.assert_allclose(depth, 0.5 + relative * 9.5, rtol=1e-5)

    info = out['depth/camera_info']
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    np.testing.assert_allclose(np.asarray(info.k), camera_info().k, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(info.p), camera_info().p, rtol=1e-9)
    check_cloud_matches_depth(out['points'], depth, info, rgb)
    names = [field.name for field in out['points'].fields]
    assert names == ['x', 'y', 'z', 'rgb', 'normal_x', 'normal_y', 'normal_z']

    normals = image_array(out['normals/image'])
    finite = np.isfinite(normals).all(axis=-1)
    assert finite.mean() > 0.9
    np.testing.assert_allclose(np.linalg.norm(normals[finite], axis=-1), 1.0, atol=1e-4)
    points = cloud_array(out['points'])
    np.testing.assert_allclose(points['normal_x'][finite], normals[..., 0][finite], atol=1e-6)

    scale = out['scale']
    assert scale.layout.dim[0].label == 'scale,shift,inlier_ratio,residual'
    assert scale.data[0] == pytest.approx(9.5) and scale.data[1] == pytest.approx(0.5)
    # depth/scale: the same numbers with the frame's header (checked above), named.
    stamped = scale_values(out['depth/scale'])
    assert out['depth/scale'].status[0].level == DiagnosticStatus.OK
    assert (float(stamped['scale']), float(stamped['shift'])) == (scale.data[0], scale.data[1])
    assert (stamped['mode'], stamped['source'], stamped['space']) == ('range', 'assumed', 'depth')
    assert stamped['inlier_ratio'] == 'nan'


def test_compressed_input_processing_resolution_and_decimation(harness, make_node):
    """PNG input, outputs at the processing size with a pixel-centre rescaled camera_info."""
    node, namespace = make_node(image_transport='compressed', processing_resolution=64,
                                output_resolution='processing', cloud_decimation=2,
                                cloud_normals=False, scale_mode='fixed', depth_scale=3.0,
                                depth_shift=0.25, frame_id='override_frame')
    topics = ['depth/image', 'depth/camera_info', 'points', 'normals/image']
    harness.subscribe(namespace, topics)
    stamp = stamp_of(77.25)
    out = publish_until(harness, namespace, topics, rgb_array(128, 96), stamp, compressed=True)

    width, height = 64, 48
    for topic in ('depth/image', 'depth/camera_info', 'normals/image'):
        assert (out[topic].width, out[topic].height) == (width, height), topic
    for msg in out.values():
        assert msg.header.frame_id == 'override_frame' and msg.header.stamp == stamp
    source = camera_info(128, 96)
    fx, fy, cx, cy = source.k[0], source.k[4], source.k[2], source.k[5]
    info = out['depth/camera_info']
    s = 0.5
    assert info.k[0] == pytest.approx(fx * s) and info.k[4] == pytest.approx(fy * s)
    assert info.k[2] == pytest.approx((cx + 0.5) * s - 0.5)
    assert info.k[5] == pytest.approx((cy + 0.5) * s - 0.5)
    assert info.p[0] == pytest.approx(fx * s) and info.p[6] == pytest.approx((cy + 0.5) * s - 0.5)
    depth = image_array(out['depth/image'])
    # Decimation 2 keeps pixels (2i, 2j): same rays, hence the depth image's own intrinsics.
    cloud = out['points']
    assert (cloud.height, cloud.width) == (height // 2, width // 2)
    assert [field.name for field in cloud.fields] == ['x', 'y', 'z', 'rgb']
    points = cloud_array(cloud)
    sub = depth[::2, ::2]
    u = np.arange(0, width, 2)[None, :]
    valid = np.isfinite(sub)
    assert valid.mean() > 0.9
    np.testing.assert_allclose(points['z'][valid], sub[valid], rtol=1e-6)
    np.testing.assert_allclose(points['x'][valid],
                               ((u - info.k[2]) * sub / info.k[0])[valid], rtol=1e-5, atol=1e-6)


def test_overload_keeps_only_newest_frame(harness, make_node):
    """A burst of frames faster than inference: the newest wins, nothing queues."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth_relative/image'])
    key = f'{namespace}/depth_relative/image'
    publish_until(harness, namespace, ['depth_relative/image'], rgb_array(), stamp_of(1.0))
    image_pub, info_pub = harness.camera(namespace)
    harness.received[key].clear()
    burst = 20
    info_pub.publish(camera_info())
    for index in range(burst):
        # Paced so that each frame reaches the node's callback while inference runs.
        image_pub.publish(image_msg(rgb_array(seed=index), stamp_of(100.0 + index)))
        time.sleep(0.005)
    last = stamp_of(100.0 + burst - 1)
    assert wait_for(lambda: any(m.header.stamp == last for m in harness.received[key]), 20.0)
    time.sleep(0.3)
    stamps = [m.header.stamp.sec for m in harness.received[key]]
    assert stamps == sorted(stamps) and stamps[-1] == 100 + burst - 1
    assert len(stamps) < burst, 'every frame was processed: frames queued instead of dropping'
    assert node.core.channels[0].stats.dropped > 0


def test_no_subscribers_no_inference_then_bad_input_recovers(harness, make_node):
    """Without subscribers frames are skipped; a bad encoding is reported, the next is fine."""
    node, namespace = make_node(normal_model='')
    image_pub, info_pub = harness.camera(namespace)
    assert wait_for(lambda: image_pub.get_subscription_count() > 0)
    channel = node.core.channels[0]
    assert wait_for(lambda: channel.stats.skipped_no_subscribers >= 3, 10.0,
                    lambda: image_pub.publish(image_msg(rgb_array(), stamp_of(5.0))))
    assert channel.stats.processed == 0

    harness.subscribe(namespace, ['depth/image'])
    bad = image_msg(rgb_array(), stamp_of(6.0), encoding='yuv_nonsense')
    assert wait_for(lambda: channel.stats.problems['decode'] >= 1, 10.0,
                    lambda: image_pub.publish(bad))
    out = publish_until(harness, namespace, ['depth/image'], rgb_array(), stamp_of(7.0))
    assert out['depth/image'].header.stamp == stamp_of(7.0)
    status_name = f'{namespace}/genpercept_node: camera'
    assert wait_for(lambda: int(diagnostic_values(harness, status_name).get(
        'errors.decode', 0)) >= 1, 5.0)


def test_missing_camera_info_gives_depth_but_no_cloud(harness, make_node):
    """Without camera_info depth is still published, the cloud is not, and it is counted."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image', 'points'])
    image_pub, _ = harness.camera(namespace)
    key = f'{namespace}/depth/image'
    assert wait_for(lambda: harness.received[key], 15.0,
                    lambda: image_pub.publish(image_msg(rgb_array(), stamp_of(3.0))))
    assert not harness.received[f'{namespace}/points']
    assert node.core.channels[0].stats.problems['camera_info'] >= 1


def test_runtime_parameters_validated(harness, make_node):
    """Invalid runtime values are rejected with the reason; valid ones take effect."""
    from genpercept_ros.node import GenPerceptNode
    node, namespace = make_node(normal_model='')
    result = node.set_parameters([Parameter('near_m', value=50.0)])[0]
    assert not result.successful and 'near_m' in result.reason and 'far_m' in result.reason
    result = node.set_parameters([Parameter('scale_mode', value='metric')])[0]
    assert not result.successful and 'scale_mode' in result.reason
    result = node.set_parameters([Parameter('cloud_decimation', value=0)])[0]
    assert not result.successful
    result = node.set_parameters([Parameter('device', value='cuda')])[0]
    assert not result.successful and 'read-only' in result.reason
    result = node.set_parameters([Parameter('far_m', value=4.0)])[0]
    assert result.successful and node.core.pipeline.settings.far_m == 4.0
    with pytest.raises(Exception, match='near_m'):
        GenPerceptNode(namespace='/gp_bad', context=harness.context,
                       parameter_overrides=[Parameter('near_m', value=5.0),
                                            Parameter('far_m', value=1.0)])


def test_lifecycle_transitions(harness, make_node):
    """Configure loads, activate serves, deactivate stops, cleanup frees the model."""
    from genpercept_ros.node import GenPerceptLifecycleNode
    node, namespace = make_node(GenPerceptLifecycleNode, normal_model='')
    assert node.core.pipeline is None
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.core.pipeline is not None
    harness.subscribe(namespace, ['depth/image'])
    key = f'{namespace}/depth/image'
    image_pub, info_pub = harness.camera(namespace)
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    publish_until(harness, namespace, ['depth/image'], rgb_array(), stamp_of(10.0))
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    time.sleep(0.3)
    count = len(harness.received[key])
    for _ in range(5):
        image_pub.publish(image_msg(rgb_array(), stamp_of(11.0)))
        time.sleep(0.05)
    time.sleep(0.3)
    assert len(harness.received[key]) == count
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.core.pipeline is None
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    publish_until(harness, namespace, ['depth/image'], rgb_array(), stamp_of(12.0))


def test_two_cameras_batched_with_separate_outputs(harness, make_node):
    """Two cameras in one node: one predictor batch, each output with its own header/info."""
    node, namespace = make_node(cameras=['front', 'left'], batch_window_ms=400.0,
                                normal_model='')
    topics = ['depth/image', 'depth/camera_info', 'points']
    harness.subscribe(f'{namespace}/front', topics)
    harness.subscribe(f'{namespace}/left', topics)
    cams = {'front': (WIDTH, HEIGHT, 'front_optical', stamp_of(20.0)),
            'left': (48, 36, 'left_optical', stamp_of(20.5))}
    publishers = {name: harness.camera(f'{namespace}/{name}') for name in cams}
    messages = {name: (image_msg(rgb_array(w, h, seed=3), stamp, frame),
                       camera_info(w, h, frame, stamp)) for name, (w, h, frame, stamp)
                in cams.items()}

    def send():
        for name, (image, info) in messages.items():
            publishers[name][1].publish(info)
            publishers[name][0].publish(image)

    keys = [f'{namespace}/{name}/{topic}' for name in cams for topic in topics]
    assert wait_for(lambda: all(harness.received[key] for key in keys), 20.0, send)
    for name, (w, h, frame, stamp) in cams.items():
        depth_msg = harness.received[f'{namespace}/{name}/depth/image'][-1]
        info = harness.received[f'{namespace}/{name}/depth/camera_info'][-1]
        cloud = harness.received[f'{namespace}/{name}/points'][-1]
        for msg in (depth_msg, info, cloud):
            assert msg.header.frame_id == frame and msg.header.stamp == stamp
        assert (depth_msg.width, depth_msg.height) == (w, h) == (info.width, info.height)
        np.testing.assert_allclose(info.k, camera_info(w, h).k, rtol=1e-9)
        check_cloud_matches_depth(cloud, image_array(depth_msg), info)
    assert node.core._worker.max_batch_size == 2


def test_diagnostics_and_qos_override_parameters(harness, make_node):
    """Diagnostics report model, device, rates, latency and the assumed scale; QoS is exposed."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image'])
    publish_until(harness, namespace, ['depth/image'], rgb_array(), stamp_of(40.0))
    camera_status = f'{namespace}/genpercept_node: camera'
    assert wait_for(lambda: int(diagnostic_values(harness, camera_status).get(
        'frames_processed', 0)) >= 1, 5.0)
    values = diagnostic_values(harness, camera_status)
    for key in ('input_rate_hz', 'output_rate_hz', 'latency_ms', 'frames_dropped',
                'errors_total', 'scale_status'):
        assert key in values, key
    assert values['scale_source'] == 'assumed' and values['scale_mode'] == 'range'
    model = diagnostic_values(harness, f'{namespace}/genpercept_node: model')
    assert model['device'] == 'cpu' and model['dtype'] == 'fp32'
    # acceleration 'auto' (the default) on a CPU serves eager, and says why.
    assert model['acceleration'] == 'eager'
    assert 'auto on cpu' in model['acceleration_reason']
    assert model['depth_model'] == 'depth-v2' and model['normal_model'] == 'disabled'
    assert node.has_parameter(f'qos_overrides.{namespace}/depth/image.publisher.reliability')
    assert node.has_parameter(f'qos_overrides.{namespace}/image.subscription.reliability')
    assert node.get_parameter(
        f'qos_overrides.{namespace}/image.subscription.reliability').value == 'best_effort'


def test_cuda_graphs_requested_on_cpu_serves_eager_and_says_why(harness, make_node):
    """A fast path that cannot run here is one warning; the node serves eager outputs."""
    node, namespace = make_node(normal_model='', acceleration='cuda_graphs')
    assert node.get_parameter('acceleration').value == 'cuda_graphs'
    harness.subscribe(namespace, ['depth/image'])
    publish_until(harness, namespace, ['depth/image'], rgb_array(), stamp_of(41.0))
    model_status = f'{namespace}/genpercept_node: model'
    assert wait_for(lambda: 'acceleration' in diagnostic_values(harness, model_status), 5.0)
    model = diagnostic_values(harness, model_status)
    assert model['acceleration'] == 'eager'
    assert 'requested cuda_graphs' in model['acceleration_reason']
    assert 'CUDA graphs need a CUDA device' in model['acceleration_reason']


def test_decoder_taesd_parameter_decodes_with_taesd_and_says_so(harness, make_node):
    """decoder:=taesd loads the fast decoder; diagnostics name it; outputs are published."""
    node, namespace = make_node(normal_model='', decoder='taesd')
    assert node.get_parameter('decoder').value == 'taesd'
    assert node.core.pipeline.predictor.decoder == 'taesd'
    harness.subscribe(namespace, ['depth/image'])
    publish_until(harness, namespace, ['depth/image'], rgb_array(), stamp_of(42.0))
    model_status = f'{namespace}/genpercept_node: model'
    assert wait_for(lambda: 'decoder' in diagnostic_values(harness, model_status), 5.0)
    model = diagnostic_values(harness, model_status)
    assert model['decoder'] == 'taesd'
    assert model['decoder_detail'] == 'depth: taesd (madebyollin/taesd, MIT (model card ' \
        'madebyollin/taesd))'


def test_reference_depth_topic_sets_the_scale(harness, make_node):
    """A metric reference on reference/depth with the frame's stamp is fitted and reported."""
    node, namespace = make_node(normal_model='', scale_mode='reference', fit_min_points=20)
    harness.subscribe(namespace, ['depth_relative/image', 'scale', 'depth/image', 'depth/scale'])
    rgb = rgb_array(seed=7)
    first = publish_until(harness, namespace, ['depth_relative/image'], rgb, stamp_of(60.0))
    relative = image_array(first['depth_relative/image'])
    # The model is deterministic: the same image gives the same relative map, so a reference
    # equal to 2 r + 1 metres must be fitted as scale 2, shift 1.
    reference = (2.0 * relative + 1.0).astype('<f4')
    ref_pub = harness.client.create_publisher(Image, f'{namespace}/reference/depth',
                                              qos_profile_sensor_data)
    image_pub, info_pub = harness.camera(namespace)
    key = f'{namespace}/scale'
    fitted = []
    stamps = itertools.count(61)

    def send():
        stamp = stamp_of(float(next(stamps)))
        ref = Image(height=HEIGHT, width=WIDTH, encoding='32FC1', step=WIDTH * 4,
                    data=reference.tobytes())
        ref.header.stamp, ref.header.frame_id = stamp, 'camera_optical'
        ref_pub.publish(ref)
        time.sleep(0.05)
        info_pub.publish(camera_info(stamp=stamp))
        image_pub.publish(image_msg(rgb, stamp))

    def done():
        fitted[:] = [m for m in harness.received[key] if np.isfinite(m.data[2])]
        return bool(fitted)

    assert wait_for(done, 20.0, send, period=0.2)
    scale, shift, inliers, residual = fitted[-1].data
    assert scale == pytest.approx(2.0, rel=1e-3) and shift == pytest.approx(1.0, abs=1e-3)
    assert inliers > 0.99
    # depth/scale carries each frame's stamp: the fitted frame's depth/image has the same one,
    # and its values are exactly those of the fit.
    assert wait_for(lambda: any(scale_values(m)['source'] == 'fitted'
                                for m in harness.received[f'{namespace}/depth/scale']), 10.0)
    stamped = [m for m in harness.received[f'{namespace}/depth/scale']
               if scale_values(m)['source'] == 'fitted'][-1]
    values = scale_values(stamped)
    assert float(values['scale']) == pytest.approx(2.0, rel=1e-3)
    assert float(values['shift']) == pytest.approx(1.0, abs=1e-3)
    assert float(values['inlier_ratio']) > 0.99
    depth_stamps = [m.header.stamp for m in harness.received[f'{namespace}/depth/image']]
    assert stamped.header.stamp in depth_stamps
    assert stamped.header.frame_id == 'camera_optical'


def test_out_of_memory_drops_the_frame_and_keeps_serving(harness, make_node):
    """An out-of-memory error in inference is reported, the frame dropped, service continues."""
    import torch
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image'])
    predictor = node.core.pipeline.predictor
    real_predict = predictor.predict
    failures = [torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB')]

    def predict_once_out_of_memory(*args, **kwargs):
        if failures:
            raise failures.pop()
        return real_predict(*args, **kwargs)

    predictor.predict = predict_once_out_of_memory
    out = publish_until(harness, namespace, ['depth/image'], rgb_array(), stamp_of(70.0))
    assert out['depth/image'].header.stamp == stamp_of(70.0)
    assert node.core.channels[0].stats.problems['out_of_memory'] == 1


def test_lifecycle_configure_failure_keeps_process_up(harness, make_node, tmp_path):
    """Missing weights make configure fail (FAILURE, reason logged); the node stays usable."""
    from genpercept_ros.node import GenPerceptLifecycleNode
    node, namespace = make_node(GenPerceptLifecycleNode, model_root=str(tmp_path / 'none'))
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert node.core.pipeline is None
    assert node.get_parameter('near_m').value == 0.5


def test_many_frames_leave_threads_and_descriptors_flat(harness, make_node):
    """Serving a stream creates no threads or file descriptors per frame."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['points'])
    key = f'{namespace}/points'
    publish_until(harness, namespace, ['points'], rgb_array(), stamp_of(80.0))
    image_pub, info_pub = harness.camera(namespace)

    def stream(count, start):
        for index in range(count):
            stamp = stamp_of(start + index * 0.01)
            info_pub.publish(camera_info(stamp=stamp))
            image_pub.publish(image_msg(rgb_array(), stamp))
            time.sleep(0.01)
        last = stamp_of(start + (count - 1) * 0.01)
        assert wait_for(lambda: harness.received[key][-1].header.stamp == last, 15.0,
                        lambda: image_pub.publish(image_msg(rgb_array(), last)))

    stream(20, 100.0)
    threads, descriptors = threading.active_count(), len(os.listdir('/proc/self/fd'))
    processed = node.core.channels[0].stats.processed
    stream(150, 200.0)
    assert node.core.channels[0].stats.processed - processed >= 20
    assert threading.active_count() <= threads  # a previous node's worker may still end
    assert len(os.listdir('/proc/self/fd')) <= descriptors + 2
