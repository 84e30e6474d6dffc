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
Bad input over real topics: one clear throttled log line, a diagnostics count, then service.

Every case is sent to a running node several times. It must be counted each time under its
problem kind (node stats and ``errors.<kind>`` on /diagnostics), logged on /rosout exactly
once (throttled) with a message naming the problem, and the next good frame must come out.
The case table is the one listed in RELIABILITY.md.
"""

import math
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from rcl_interfaces.msg import Log
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image
from sensor_msgs.msg import RegionOfInterest

from test_node_ros import camera_info
from test_node_ros import compressed_image
from test_node_ros import diagnostic_values
from test_node_ros import harness  # noqa: F401 - the module-scoped fixture
from test_node_ros import HEIGHT
from test_node_ros import image_msg
from test_node_ros import make_node  # noqa: F401 - the node factory fixture
from test_node_ros import raw_image
from test_node_ros import rgb_array
from test_node_ros import stamp_of
from test_node_ros import wait_for
from test_node_ros import WIDTH

pytestmark = pytest.mark.ros

REPEATS = 3


def png_bytes(rgb):
    """Return a real PNG of ``rgb``."""
    ok, encoded = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return encoded.tobytes()


def jpeg_bytes(rgb):
    """Return a real JPEG of ``rgb``."""
    ok, encoded = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return encoded.tobytes()


def png_declaring(width, height):
    """Return a tiny, well-formed PNG stream whose header claims ``width`` x ``height``."""
    def chunk(kind, payload):
        return (struct.pack('>I', len(payload)) + kind + payload
                + struct.pack('>I', zlib.crc32(kind + payload) & 0xffffffff))
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header)
            + chunk(b'IDAT', zlib.compress(b'\0' * 16)) + chunk(b'IEND', b''))


def corrupted_png():
    """Return a real PNG with its compressed pixel data overwritten (signature, IEND intact)."""
    data = bytearray(png_bytes(rgb_array(seed=5)))
    start = data.index(b'IDAT') + 8
    data[start:start + 64] = b'\xa5' * 64
    return bytes(data)


# (case name, message, expected problem kind, fragments the logged message must contain).
# Messages that differ only in numbers share one throttle slot (e.g. no data vs. too little
# data, 4000x2 vs. 2x4000), so each case here is a distinct problem; the variants are
# covered in test_reliability_pipeline.py.
RAW_CASES = [
    ('unknown encoding', raw_image(64, 48, 'yuv_unknown', 128, b'\0' * 128 * 48), 'decode',
     ["'yuv_unknown'"]),
    ('empty encoding', raw_image(64, 48, '', 192, b'\0' * 192 * 48), 'decode',
     ["encoding ''"]),
    ('float encoding as colour', raw_image(64, 48, '32FC1', 256, b'\0' * 256 * 48), 'decode',
     ["'32FC1'"]),
    ('step smaller than a row', raw_image(64, 48, 'rgb8', 100, b'\0' * 192 * 48), 'decode',
     ['step 100', 'smaller than one row']),
    ('data shorter than height x step', raw_image(64, 48, 'rgb8', 192, b'\0' * 1000), 'decode',
     ['1000 bytes', 'height 48 x step 192']),
    ('zero-sized 0x0', raw_image(0, 0, 'rgb8', 0, b''), 'decode', ['zero-sized', '0x0']),
    ('yuv422 odd width', raw_image(63, 48, 'yuv422', 126, b'\x80' * 126 * 48), 'decode',
     ['even width']),
    ('30000x20000 declared, 100 bytes', raw_image(30000, 20000, 'rgb8', 90000, b'\0' * 100),
     'input_size', ['30000x20000', 'max_input_pixels']),
    ('extreme aspect 4000x2', raw_image(4000, 2, 'rgb8', 12000, b'\x80' * 24000), 'input_size',
     ['4000x2', 'aspect ratio 2000:1', 'processing_resolution 64', '64x0']),
]

COMPRESSED_CASES = [
    ('corrupt jpeg', compressed_image('jpeg', b'\xff\xd8\xff\xe0garbage' * 10 + b'\xff\xd9'),
     'decode', ['corrupt jpeg']),
    ('truncated jpeg', compressed_image('jpeg', jpeg_bytes(rgb_array())[:300]), 'decode',
     ['truncated jpeg']),
    ('truncated png', compressed_image('png', png_bytes(rgb_array())[:200]), 'decode',
     ['truncated png']),
    ('png with corrupt pixel data', compressed_image('png', corrupted_png()), 'decode',
     ['corrupt png']),
    ('png header declares 30000x20000', compressed_image('png', png_declaring(30000, 20000)),
     'decode', ['30000x20000', 'limit']),
    ('empty payload', compressed_image('jpeg', b''), 'decode', ['has no data']),
    ('format compressedDepth',
     compressed_image('16UC1; compressedDepth png', png_bytes(rgb_array())),
     'decode', ['compressedDepth']),
    ('format rvl', compressed_image('16UC1; compressedDepth rvl', b'\0' * 64), 'decode',
     ['compressedDepth']),
    ('format rvl alone', compressed_image('rvl', b'\0' * 64), 'decode', ["format 'rvl'"]),
    ('format garbage', compressed_image('garbage', png_bytes(rgb_array())), 'decode',
     ["format 'garbage'"]),
    ('format tiff', compressed_image('tiff', b'II*\0' + b'\0' * 64), 'decode', ["format 'tiff'"]),
    ('format says jpeg, data is png',
     compressed_image('bgr8; jpeg compressed bgr8', png_bytes(rgb_array())), 'decode',
     ['says jpeg', 'signature']),
]


def roi(x, y, width, height):
    """Return a RegionOfInterest."""
    return RegionOfInterest(x_offset=x, y_offset=y, width=width, height=height)


def info_with(**fields):
    """Return the test camera's CameraInfo with some fields replaced."""
    info = camera_info()
    for name, value in fields.items():
        setattr(info, name, value)
    return info


CAMERA_INFO_CASES = [
    ('camera_info all zero', CameraInfo(width=64, height=48), 'camera_info',
     ['uncalibrated', 'K is all zero']),
    ('camera_info NaN in K', info_with(k=[math.nan] * 9), 'camera_info', ['NaN or Inf']),
    ('camera_info Inf in P', info_with(p=[math.inf] * 12), 'camera_info', ['NaN or Inf']),
    ('camera_info of another aspect', camera_info(640, 360), 'camera_info_size',
     ['640x360', '64x48', 'aspect ratio differs']),
    ('camera_info ROI outside the image', info_with(roi=roi(60, 0, 40, 48)), 'camera_info',
     ['ROI', 'does not fit']),
    ('camera_info binning leaving no pixels', info_with(binning_x=100, binning_y=100),
     'camera_info', ['binning 100x100', 'leaves no pixels']),
    ('camera_info without size', info_with(width=0, height=0), 'camera_info',
     ['size is 0x0']),
]


@pytest.fixture(scope='module')
def rosout(harness):  # noqa: F811
    """Collect every /rosout record of the module's nodes."""
    records = []
    harness.client.create_subscription(Log, '/rosout', records.append, QoSProfile(depth=1000))
    return records


@pytest.fixture(autouse=True)
def long_throttle(monkeypatch):
    """Make the per-message throttle window outlast any case, so each case logs exactly once."""
    from genpercept_ros.node import problems
    monkeypatch.setattr(problems, 'LOG_THROTTLE_S', 120.0)


def logged(rosout, namespace, kind, fragments):
    """Return the /rosout records of the node in ``namespace`` reporting ``kind: ...``."""
    name = namespace.strip('/')
    return [record for record in list(rosout)
            if record.name.startswith(name) and f'{kind}: ' in record.msg
            and all(fragment in record.msg for fragment in fragments)]


def expect_reported(harness, rosout, node, namespace, case, send):  # noqa: F811
    """Send a bad input until counted REPEATS times; check the log line and diagnostics."""
    name, msg, kind, fragments = case
    channel = node.core.channels[0]
    before = channel.stats.problems[kind]
    already = len(logged(rosout, namespace, kind, fragments))
    assert wait_for(lambda: channel.stats.problems[kind] >= before + REPEATS, 20.0, send,
                    period=0.05), f'{name}: not counted as {kind} ({dict(channel.stats.problems)})'
    assert wait_for(lambda: len(logged(rosout, namespace, kind, fragments)) > already, 5.0), \
        f'{name}: no log line with {fragments}: ' + '\n'.join(
            record.msg for record in list(rosout)[-5:])
    time.sleep(0.2)
    lines = logged(rosout, namespace, kind, fragments)[already:]
    assert len(lines) == 1, f'{name}: logged {len(lines)} times for {REPEATS}+ occurrences'
    assert lines[0].level >= Log.WARN, name
    if kind in ('decode', 'input_size'):
        assert lines[0].level == Log.ERROR, name
        outputs = harness.received.get(f'{namespace}/depth/image', [])
        assert not any(out.header.stamp == msg.header.stamp for out in outputs), \
            f'{name}: a refused frame was processed'
    status = f'{namespace}/genpercept_node: camera'
    count = channel.stats.problems[kind]
    assert wait_for(lambda: int(diagnostic_values(harness, status).get(f'errors.{kind}', 0))
                    >= count, 5.0), f'{name}: errors.{kind} not on /diagnostics'
    assert node.core.worker_running(), name


def serve_good(harness, namespace, image_pub, info_pub, seconds,  # noqa: F811
               compressed_input=False):
    """Publish a good frame with a good camera_info until its depth comes out."""
    key = f'{namespace}/depth/image'
    rgb = rgb_array()
    if compressed_input:
        good = compressed_image('rgb8; png compressed bgr8', png_bytes(rgb))
        good.header.stamp = stamp_of(seconds)
    else:
        good = image_msg(rgb, stamp_of(seconds))
    info = camera_info(stamp=stamp_of(seconds))

    def send():
        info_pub.publish(info)
        image_pub.publish(good)

    return wait_for(lambda: any(msg.header.stamp == good.header.stamp
                                for msg in harness.received[key]), 20.0, send, period=0.05)


def test_bad_raw_images(harness, rosout, make_node):  # noqa: F811
    """Broken, zero-sized, huge and extreme-aspect Images: refused, named, counted, served."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image'])
    image_pub, info_pub = harness.camera(namespace)
    assert serve_good(harness, namespace, image_pub, info_pub, 1.0)
    for index, case in enumerate(RAW_CASES):
        msg = case[1]
        msg.header.stamp = stamp_of(10.0 + index)

        def send():
            info_pub.publish(camera_info())
            image_pub.publish(msg)

        expect_reported(harness, rosout, node, namespace, case, send)
        assert serve_good(harness, namespace, image_pub, info_pub, 100.0 + index), case[0]


def test_large_valid_image_above_max_input_pixels(harness, rosout, make_node):  # noqa: F811
    """A genuinely large, valid frame above a runtime max_input_pixels is refused by size."""
    node, namespace = make_node(normal_model='', max_input_pixels=100000)
    harness.subscribe(namespace, ['depth/image'])
    image_pub, info_pub = harness.camera(namespace)
    result = node.set_parameters([Parameter('max_input_pixels', value=10000)])[0]
    assert result.successful
    big = image_msg(rgb_array(160, 120), stamp_of(5.0))
    case = ('160x120 valid, limit 10000', big, 'input_size',
            ['160x120', 'max_input_pixels = 10000', 'refused before decoding'])
    expect_reported(harness, rosout, node, namespace, case,
                    lambda: (info_pub.publish(camera_info(160, 120)), image_pub.publish(big)))
    assert serve_good(harness, namespace, image_pub, info_pub, 6.0)   # 64x48 = 3072 px
    result = node.set_parameters([Parameter('max_input_pixels', value=10)])[0]
    assert not result.successful and 'max_input_pixels' in result.reason
    result = node.set_parameters([Parameter('max_input_pixels', value=100000)])[0]
    assert result.successful
    big.header.stamp = stamp_of(7.0)
    key = f'{namespace}/depth/image'
    assert wait_for(lambda: any(msg.header.stamp == stamp_of(7.0)
                                for msg in harness.received[key]), 20.0,
                    lambda: (info_pub.publish(camera_info(160, 120)), image_pub.publish(big)))


def test_bad_compressed_images(harness, rosout, make_node):  # noqa: F811
    """Corrupt, truncated, oversized and mislabelled CompressedImages (wrong `format`)."""
    node, namespace = make_node(normal_model='', input_transport='compressed')
    harness.subscribe(namespace, ['depth/image'])
    image_pub, info_pub = harness.camera(namespace, compressed=True)
    for index, case in enumerate(COMPRESSED_CASES):
        msg = case[1]
        msg.header.stamp = stamp_of(10.0 + index)
        expect_reported(harness, rosout, node, namespace, case,
                        lambda: image_pub.publish(msg))
        assert serve_good(harness, namespace, image_pub, info_pub, 100.0 + index,
                          compressed_input=True), case[0]


def test_bad_camera_info(harness, rosout, make_node):  # noqa: F811
    """Missing/zero/NaN/odd-sized/binned/ROI camera_info: depth still served, no cloud, named."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image', 'points'])
    image_pub, info_pub = harness.camera(namespace)
    frame = image_msg(rgb_array(), stamp_of(1.0))
    missing = ('camera_info missing', None, 'camera_info', ['no camera_info received'])
    expect_reported(harness, rosout, node, namespace, missing, lambda: image_pub.publish(frame))
    for index, case in enumerate(CAMERA_INFO_CASES):
        name, info, kind, _ = case
        points = len(harness.received[f'{namespace}/points'])
        frame = image_msg(rgb_array(), stamp_of(10.0 + index))

        def send():
            info_pub.publish(info)
            image_pub.publish(frame)

        expect_reported(harness, rosout, node, namespace, case, send)
        key = f'{namespace}/depth/image'
        assert any(msg.header.stamp == frame.header.stamp for msg in harness.received[key]), \
            f'{name}: depth must still be published'
        if kind == 'camera_info':
            assert not any(msg.header.stamp == frame.header.stamp
                           for msg in harness.received[f'{namespace}/points'][points:]), name
        assert serve_good(harness, namespace, image_pub, info_pub, 100.0 + index), name


@pytest.mark.parametrize('variant', ['binning', 'roi', 'binning_x only'])
def test_binning_and_roi_are_applied(harness, make_node, variant):  # noqa: F811
    """
    Binned or ROI camera_info of a 128x96 calibration describing our 64x48 image.

    Binning on one axis only leaves a 64x96 description of a 64x48 image: the intrinsics are
    rescaled per axis (pixel-centre rule) and the aspect mismatch is reported.
    """
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/camera_info'])
    image_pub, info_pub = harness.camera(namespace)
    full = camera_info(128, 96)
    fx, fy, cx, cy = full.k[0], full.k[4], full.k[2], full.k[5]
    size_problems = 0
    if variant == 'binning':
        full.binning_x = full.binning_y = 2
        expected = (fx / 2, fy / 2, cx / 2, cy / 2)      # image_geometry: f / b, c / b
    elif variant == 'roi':
        full.roi = roi(20, 30, WIDTH, HEIGHT)
        expected = (fx, fy, cx - 20, cy - 30)            # the ROI shifts the principal point
    else:
        full.binning_x = 2
        expected = (fx / 2, fy / 2, cx / 2, (cy + 0.5) / 2 - 0.5)
        size_problems = 1
    frame = image_msg(rgb_array(), stamp_of(3.0))
    key = f'{namespace}/depth/camera_info'
    assert wait_for(lambda: harness.received[key], 20.0,
                    lambda: (info_pub.publish(full), image_pub.publish(frame)))
    info = harness.received[key][-1]
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert (info.k[0], info.k[4], info.k[2], info.k[5]) == pytest.approx(expected)
    problems = node.core.channels[0].stats.problems
    assert problems['camera_info'] == 0
    assert min(problems['camera_info_size'], 1) == size_problems


def depth_reference(depth_m, stamp, frame_id='camera_optical', encoding='32FC1'):
    """Return a metric reference Image of ``depth_m`` (float32 metres)."""
    data = depth_m.astype('<f4')
    msg = Image(height=data.shape[0], width=data.shape[1], encoding=encoding,
                step=data.shape[1] * 4, data=data.tobytes())
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg


REFERENCE_CASES = [
    ('reference from another frame_id',
     lambda stamp: depth_reference(np.full((HEIGHT, WIDTH), 2.0), stamp, 'lidar_link'),
     'reference', ["'lidar_link'", "'camera_optical'", 'ignored']),
    ('reference all NaN, Inf or negative',
     lambda stamp: depth_reference(np.tile(np.array([np.nan, np.inf, -np.inf, -1.0]),
                                           (HEIGHT, WIDTH // 4)), stamp),
     'reference', ['rejected', 'too few reference points', 'non-finite or non-positive']),
    ('reference in a colour encoding',
     lambda stamp: Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3,
                         data=bytes(WIDTH * HEIGHT * 3), header=depth_reference(
                             np.ones((1, 1)), stamp).header),
     'reference', ["'rgb8'", 'not metric depth']),
]


def test_bad_metric_references_are_not_used(harness, rosout, make_node):  # noqa: F811
    """NaN/Inf, foreign-frame and non-depth references are refused: range fallback, reported."""
    node, namespace = make_node(normal_model='', scale_mode='reference', fit_min_points=20)
    harness.subscribe(namespace, ['depth/image', 'scale'])
    image_pub, info_pub = harness.camera(namespace)
    ref_pub = harness.client.create_publisher(Image, f'{namespace}/reference/depth',
                                              qos_profile_sensor_data)
    for index, case in enumerate(REFERENCE_CASES):
        make_reference = case[1]
        stamps = iter(range(1000 * (index + 1), 1000 * (index + 2)))

        def send():
            stamp = stamp_of(float(next(stamps)))
            ref_pub.publish(make_reference(stamp))
            time.sleep(0.02)
            info_pub.publish(camera_info(stamp=stamp))
            image_pub.publish(image_msg(rgb_array(), stamp))

        expect_reported(harness, rosout, node, namespace, case, send)
        report = node.core.pipeline.scale_status()
        assert report.source == 'fallback', (case[0], report)
        # The range mapping [0.5, 10] m is used, never a scale from the bad reference.
        assert (report.scale, report.shift) == pytest.approx((9.5, 0.5)), case[0]


def test_time_going_backwards_is_reported_and_served(harness, rosout, make_node):  # noqa: F811
    """A bag loop (stamps jump back) is reported as a warning; those frames are still served."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image'])
    image_pub, info_pub = harness.camera(namespace)
    assert serve_good(harness, namespace, image_pub, info_pub, 500.0)
    seconds = iter([10.0, 500.0, 10.5, 500.5, 11.0, 501.0, 11.5, 501.5] * 4)
    case = ('time going backwards', None, 'time_backwards', ['went backwards by', 'bag loop'])

    def send():
        stamp = stamp_of(next(seconds))
        info_pub.publish(camera_info(stamp=stamp))
        image_pub.publish(image_msg(rgb_array(), stamp))

    channel = node.core.channels[0]
    processed = channel.stats.processed
    name, _, kind, fragments = case
    assert wait_for(lambda: channel.stats.problems[kind] >= REPEATS, 30.0, send, period=0.3)
    assert channel.stats.processed >= processed + REPEATS
    time.sleep(0.2)
    lines = logged(rosout, namespace, kind, fragments)
    assert len(lines) == 1 and lines[0].level == Log.WARN, [line.msg for line in lines]


def test_runtime_parameters_out_of_range_are_refused(harness, rosout, make_node):  # noqa: F811
    """Out-of-range runtime values: refused with the reason, logged, the node keeps serving."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image'])
    image_pub, info_pub = harness.camera(namespace)
    refused = [('processing_resolution', 5000), ('processing_resolution', -1),
               ('near_m', 0.0), ('far_m', math.inf), ('cloud_decimation', 100),
               ('fit_min_inlier_ratio', 1.5), ('batch_window_ms', -5.0),
               ('max_input_pixels', 0), ('scale_mode', 'lidar'),
               ('output_resolution', 'native'), ('voxel_size', -0.1)]
    for name, value in refused:
        result = node.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful, (name, value)
        assert name in result.reason, (name, result.reason)
        assert node.get_parameter(name).value != value
    assert wait_for(lambda: any('rejected parameter change' in record.msg
                                and 'scale_mode' in record.msg for record in list(rosout)), 5.0)
    assert serve_good(harness, namespace, image_pub, info_pub, 1.0)
    status = f'{namespace}/genpercept_node: camera'
    assert wait_for(lambda: diagnostic_values(harness, status).get('errors_total') == '0', 5.0)


def test_out_of_memory_frees_the_cache_and_is_counted(harness, rosout, make_node):  # noqa: F811
    """OOM in inference: logged once, cache freed (predictor.free_memory), counted, served."""
    import torch
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image'])
    image_pub, info_pub = harness.camera(namespace)
    predictor = node.core.pipeline.predictor
    real_predict, real_free = predictor.predict, predictor.free_memory
    failures = [torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB')
                for _ in range(REPEATS)]
    freed = []

    def predict_out_of_memory(*args, **kwargs):
        if failures:
            raise failures.pop()
        return real_predict(*args, **kwargs)

    def free_memory():
        freed.append(True)
        real_free()

    predictor.predict, predictor.free_memory = predict_out_of_memory, free_memory
    frame = image_msg(rgb_array(), stamp_of(1.0))
    case = ('CUDA out of memory', frame, 'out_of_memory',
            ['ran out of memory', 'cache freed', 'processing_resolution'])
    expect_reported(harness, rosout, node, namespace, case,
                    lambda: (info_pub.publish(camera_info()), image_pub.publish(frame)))
    assert len(freed) == REPEATS
    assert serve_good(harness, namespace, image_pub, info_pub, 2.0)
