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
Bad input over real topics, by input kind: one clear throttled log line, a count, then service.

The one bad-input suite of the node (it absorbed test_node_bad_input.py). Sections: encodings,
sizes, compressed streams, camera_info, metric references, time, runtime parameters, model
failures. Each refused case is sent to a running node several times. It must be counted each
time under its problem kind (node stats and ``errors.<kind>`` on /diagnostics), logged on
/rosout exactly once (throttled) with a message naming the problem, produce no output, and the
next good frame must come out. A variant that differs from an earlier case only in numbers
shares that case's throttle slot, so it is logged at most once. Inputs that are unusual but
valid must simply be served: their own frame comes out, at the input's size, with finite depth
in the configured range and no problem counted. The case table is the one listed in
RELIABILITY.md.
"""

import itertools
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
from test_node_ros import image_array
from test_node_ros import image_msg
from test_node_ros import make_node  # noqa: F401 - the node factory fixture
from test_node_ros import raw_image
from test_node_ros import rgb_array
from test_node_ros import stamp_of
from test_node_ros import wait_for
from test_node_ros import WIDTH

pytestmark = pytest.mark.ros

REPEATS = 3
# Generous waits: they end as soon as the condition holds, and on a loaded 2-core machine one
# 64x48 frame can take seconds (these are not speed tests).
WAIT_S = 60.0
NEAR_M, FAR_M = 0.5, 10.0   # the node's default range mapping, used when nothing better exists


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


def roi(x, y, width, height):
    """Return a RegionOfInterest."""
    return RegionOfInterest(x_offset=x, y_offset=y, width=width, height=height)


def info_with(**fields):
    """Return the test camera's CameraInfo with some fields replaced."""
    info = camera_info()
    for name, value in fields.items():
        setattr(info, name, value)
    return info


# Case tables: (case name, message, expected problem kind, fragments the logged message must
# contain, whether the log line is new). Messages that differ only in numbers share one
# throttle slot (e.g. no data vs. too little data, 4000x2 vs. 2048x2): such variants are marked
# ``VARIANT`` and may find their line already logged by the case before them.
NEW, VARIANT = True, False

# Encodings: names the converter does not know, or that are not colour.
ENCODING_CASES = [
    ('unknown encoding', raw_image(64, 48, 'yuv_unknown', 128, b'\0' * 128 * 48), 'decode',
     ["'yuv_unknown'"], NEW),
    ('empty encoding', raw_image(64, 48, '', 192, b'\0' * 192 * 48), 'decode',
     ["encoding ''"], NEW),
    ('float encoding as colour', raw_image(64, 48, '32FC1', 256, b'\0' * 256 * 48), 'decode',
     ["'32FC1'"], NEW),
    ('yuv422 odd width', raw_image(63, 48, 'yuv422', 126, b'\x80' * 126 * 48), 'decode',
     ['even width'], NEW),
]

# Sizes: step, data length, zero, huge and extreme-aspect frames.
SIZE_CASES = [
    ('step smaller than a row', raw_image(64, 48, 'rgb8', 100, b'\0' * 192 * 48), 'decode',
     ['step 100', 'smaller than one row'], NEW),
    ('16-bit with odd step', raw_image(64, 48, 'mono16', 127, b'\0' * 127 * 48), 'decode',
     ['step 127', 'smaller than one row', "'mono16'"], NEW),
    ('data shorter than height x step', raw_image(64, 48, 'rgb8', 192, b'\0' * 1000), 'decode',
     ['1000 bytes', 'height 48 x step 192'], NEW),
    ('no data', raw_image(64, 48, 'rgb8', 192, b''), 'decode',
     ['0 bytes', 'height 48 x step 192'], VARIANT),
    ('zero-sized 0x0', raw_image(0, 0, 'rgb8', 0, b''), 'decode', ['zero-sized', '0x0'], NEW),
    ('zero width', raw_image(0, 48, 'rgb8', 0, b''), 'decode', ['zero-sized'], VARIANT),
    ('30000x20000 declared, 100 bytes', raw_image(30000, 20000, 'rgb8', 90000, b'\0' * 100),
     'input_size', ['30000x20000', 'max_input_pixels'], NEW),
    ('extreme aspect 4000x2', raw_image(4000, 2, 'rgb8', 12000, b'\x80' * 24000), 'input_size',
     ['4000x2', 'aspect ratio 2000:1', 'processing_resolution 64', '64x0'], NEW),
    # 2048x2 is 64x0 px at processing_resolution 64 as well: refused like 4000x2.
    ('extreme aspect 2048x2', raw_image(2048, 2, 'rgb8', 6144, b'\x80' * 6144 * 2),
     'input_size', ['aspect ratio', 'processing_resolution 64'], VARIANT),
]


def big_endian_mono16():
    """Return a 64x48 big-endian mono16 gradient (high byte first on the wire)."""
    values = (np.arange(64 * 48, dtype=np.uint32) * 21).astype('>u2').reshape(48, 64)
    return raw_image(64, 48, 'mono16', 128, values.tobytes(), bigendian=1)


def padded_rows():
    """Return the test image as rgb8 with 8 bytes of padding after each 192-byte row."""
    rows = np.concatenate([rgb_array().reshape(48, 192), np.full((48, 8), 0x40, np.uint8)], 1)
    return raw_image(64, 48, 'rgb8', 200, rows.tobytes())


# Unusual but valid frames: each must simply be served (name, message).
SERVED_IMAGES = [
    ('big-endian mono16', big_endian_mono16()),
    ('padded rows', padded_rows()),
    ('bgra8 with alpha', raw_image(64, 48, 'bgra8', 256, np.dstack(
        [rgb_array()[..., ::-1], np.full((48, 64), 7, np.uint8)]).tobytes())),
    ('1-pixel image', raw_image(1, 1, 'rgb8', 3, b'\x10\x20\x30')),
]

# Compressed streams: corrupt, truncated, oversized and mislabelled payloads.
COMPRESSED_CASES = [
    ('corrupt jpeg', compressed_image('jpeg', b'\xff\xd8\xff\xe0garbage' * 10 + b'\xff\xd9'),
     'decode', ['corrupt jpeg'], NEW),
    ('truncated jpeg', compressed_image('jpeg', jpeg_bytes(rgb_array())[:300]), 'decode',
     ['truncated jpeg'], NEW),
    ('jpeg garbage without end marker', compressed_image('jpeg', b'\xff\xd8\xff\xe0garbage' * 10),
     'decode', ['truncated jpeg'], VARIANT),
    ('truncated png', compressed_image('png', png_bytes(rgb_array())[:200]), 'decode',
     ['truncated png'], NEW),
    ('png cut inside its header', compressed_image('png', b'\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0'),
     'decode', ['truncated png'], VARIANT),
    ('png with corrupt pixel data', compressed_image('png', corrupted_png()), 'decode',
     ['corrupt png'], NEW),
    ('png header declares 30000x20000', compressed_image('png', png_declaring(30000, 20000)),
     'decode', ['30000x20000', 'limit'], NEW),
    ('empty payload', compressed_image('jpeg', b''), 'decode', ['has no data'], NEW),
    ('format compressedDepth',
     compressed_image('16UC1; compressedDepth png', png_bytes(rgb_array())),
     'decode', ['compressedDepth'], NEW),
    ('format compressedDepth rvl', compressed_image('16UC1; compressedDepth rvl', b'\0' * 64),
     'decode', ['compressedDepth', 'rvl'], NEW),
    ('float compressedDepth on the colour topic',
     compressed_image('32FC1; compressedDepth png', b'\0' * 12 + b'\x89PNG'), 'decode',
     ['compressedDepth', '32FC1'], NEW),
    ('format rvl alone', compressed_image('rvl', b'\0' * 64), 'decode', ["format 'rvl'"], NEW),
    ('format garbage', compressed_image('garbage', png_bytes(rgb_array())), 'decode',
     ["format 'garbage'"], NEW),
    ('format tiff', compressed_image('tiff', b'II*\0' + b'\0' * 64), 'decode',
     ["format 'tiff'"], NEW),
    ('format says jpeg, data is png',
     compressed_image('bgr8; jpeg compressed bgr8', png_bytes(rgb_array())), 'decode',
     ['says jpeg', 'signature'], NEW),
    ('format says jpeg, data is random bytes',
     compressed_image('rgb8; jpeg compressed bgr8', np.random.default_rng(0).bytes(500)),
     'decode', ["'rgb8; jpeg", 'says jpeg', 'signature'], NEW),
]

# camera_info: uncalibrated, non-finite, mismatched, impossible ROI/binning, no size.
CAMERA_INFO_CASES = [
    ('camera_info all zero', CameraInfo(width=64, height=48), 'camera_info',
     ['uncalibrated', 'K is all zero'], NEW),
    ('camera_info NaN in K', info_with(k=[math.nan] * 9), 'camera_info', ['NaN or Inf'], NEW),
    ('camera_info Inf in P', info_with(p=[math.inf] * 12), 'camera_info', ['NaN or Inf'], NEW),
    ('camera_info of another aspect', camera_info(640, 360), 'camera_info_size',
     ['640x360', '64x48', 'aspect ratio differs'], NEW),
    ('camera_info ROI outside the image', info_with(roi=roi(60, 0, 40, 48)), 'camera_info',
     ['ROI', 'does not fit'], NEW),
    ('camera_info binning leaving no pixels', info_with(binning_x=100, binning_y=100),
     'camera_info', ['binning 100x100', 'leaves no pixels'], NEW),
    ('camera_info without size', info_with(width=0, height=0), 'camera_info',
     ['size is 0x0'], NEW),
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
    name, msg, kind, fragments, new = case
    channel = node.core.channels[0]
    before = channel.stats.problems[kind]
    already = len(logged(rosout, namespace, kind, fragments))
    assert wait_for(lambda: channel.stats.problems[kind] >= before + REPEATS, WAIT_S, send,
                    period=0.05), f'{name}: not counted as {kind} ({dict(channel.stats.problems)})'
    if new:
        assert wait_for(lambda: len(logged(rosout, namespace, kind, fragments)) > already,
                        5.0), f'{name}: no log line with {fragments}: ' + '\n'.join(
                            record.msg for record in list(rosout)[-5:])
    time.sleep(0.2)
    lines = logged(rosout, namespace, kind, fragments)
    assert lines, f'{name}: no log line with {fragments} for this or an earlier equal case'
    new_lines = len(lines) - already
    assert new_lines == 1 if new else new_lines <= 1, \
        f'{name}: logged {new_lines} times for {REPEATS}+ occurrences'
    assert all(line.level >= Log.WARN for line in lines), name
    if kind in ('decode', 'input_size'):
        assert all(line.level == Log.ERROR for line in lines), name
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
                                for msg in harness.received[key]), WAIT_S, send, period=0.05)


def expect_served(harness, node, namespace, name, msg, info, send):  # noqa: F811
    """
    Send an unusual but valid frame until its own depth comes out; return that depth image.

    Served means: the output carries the frame's stamp and frame_id, has the frame's size
    (``output_resolution`` input), holds finite depth within [near_m, far_m] (range mapping)
    and no problem was counted for it.
    """
    channel = node.core.channels[0]
    problems = dict(channel.stats.problems)
    key = f'{namespace}/depth/image'

    def own_output():
        return [out for out in harness.received[key] if out.header.stamp == msg.header.stamp]

    assert wait_for(own_output, WAIT_S, send, period=0.05), \
        f'{name}: not served ({dict(channel.stats.problems)})'
    depth_msg = own_output()[-1]
    assert depth_msg.header.frame_id == msg.header.frame_id, name
    assert (depth_msg.height, depth_msg.width, depth_msg.encoding) == (
        msg.height, msg.width, '32FC1'), name
    depth = image_array(depth_msg)
    assert np.isfinite(depth).all(), name
    assert ((depth >= NEAR_M - 1e-5) & (depth <= FAR_M + 1e-5)).all(), name
    assert dict(channel.stats.problems) == problems, f'{name}: counted as a problem'
    assert node.core.worker_running(), name
    return depth_msg


def run_refused(harness, rosout, node, namespace, cases, image_pub, info_pub, start):  # noqa: F811
    """Send each refused raw-image case, then prove a good frame is served again."""
    for index, case in enumerate(cases):
        msg = case[1]
        msg.header.stamp = stamp_of(start + index)

        def send():
            info_pub.publish(camera_info())
            image_pub.publish(msg)

        expect_reported(harness, rosout, node, namespace, case, send)
        assert serve_good(harness, namespace, image_pub, info_pub, start + 100.0 + index), \
            case[0]


# Encodings ---------------------------------------------------------------------------------

def test_bad_encodings(harness, rosout, make_node):  # noqa: F811
    """Unknown, empty, float and odd-width yuv422 encodings: refused, named, counted, served."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image'])
    image_pub, info_pub = harness.camera(namespace)
    assert serve_good(harness, namespace, image_pub, info_pub, 1.0)
    run_refused(harness, rosout, node, namespace, ENCODING_CASES, image_pub, info_pub, 10.0)


@pytest.mark.parametrize('name,msg', SERVED_IMAGES, ids=[case[0] for case in SERVED_IMAGES])
def test_unusual_valid_images_are_served(harness, make_node, name, msg):  # noqa: F811
    """Big-endian 16-bit, padded rows, alpha and a single pixel: each frame is served."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image'])
    image_pub, info_pub = harness.camera(namespace)
    msg.header.stamp = stamp_of(20.0)
    info = camera_info(msg.width, msg.height, stamp=msg.header.stamp)
    expect_served(harness, node, namespace, name, msg, info,
                  lambda: (info_pub.publish(info), image_pub.publish(msg)))


# Sizes -------------------------------------------------------------------------------------

def test_bad_sizes(harness, rosout, make_node):  # noqa: F811
    """Short step/data, zero-sized, huge and extreme-aspect Images: refused, named, served."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image'])
    image_pub, info_pub = harness.camera(namespace)
    assert serve_good(harness, namespace, image_pub, info_pub, 1.0)
    run_refused(harness, rosout, node, namespace, SIZE_CASES, image_pub, info_pub, 10.0)


def test_large_valid_image_above_max_input_pixels(harness, rosout, make_node):  # noqa: F811
    """A genuinely large, valid frame above a runtime max_input_pixels is refused by size."""
    node, namespace = make_node(normal_model='', max_input_pixels=100000)
    harness.subscribe(namespace, ['depth/image'])
    image_pub, info_pub = harness.camera(namespace)
    result = node.set_parameters([Parameter('max_input_pixels', value=10000)])[0]
    assert result.successful
    big = image_msg(rgb_array(160, 120), stamp_of(5.0))
    case = ('160x120 valid, limit 10000', big, 'input_size',
            ['160x120', 'max_input_pixels = 10000', 'refused before decoding'], NEW)
    expect_reported(harness, rosout, node, namespace, case,
                    lambda: (info_pub.publish(camera_info(160, 120)), image_pub.publish(big)))
    assert serve_good(harness, namespace, image_pub, info_pub, 6.0)   # 64x48 = 3072 px
    result = node.set_parameters([Parameter('max_input_pixels', value=10)])[0]
    assert not result.successful and 'max_input_pixels' in result.reason
    result = node.set_parameters([Parameter('max_input_pixels', value=100000)])[0]
    assert result.successful
    big.header.stamp = stamp_of(7.0)
    info = camera_info(160, 120)
    expect_served(harness, node, namespace, '160x120 under a raised limit', big, info,
                  lambda: (info_pub.publish(info), image_pub.publish(big)))


# Compressed streams ------------------------------------------------------------------------

def test_bad_compressed_images(harness, rosout, make_node):  # noqa: F811
    """Corrupt, truncated, oversized and mislabelled CompressedImages (wrong `format`)."""
    node, namespace = make_node(normal_model='', image_transport='compressed')
    harness.subscribe(namespace, ['depth/image'])
    image_pub, info_pub = harness.camera(namespace, compressed=True)
    for index, case in enumerate(COMPRESSED_CASES):
        msg = case[1]
        msg.header.stamp = stamp_of(10.0 + index)
        expect_reported(harness, rosout, node, namespace, case,
                        lambda: image_pub.publish(msg))
        assert serve_good(harness, namespace, image_pub, info_pub, 100.0 + index,
                          compressed_input=True), case[0]


# camera_info -------------------------------------------------------------------------------

def test_bad_camera_info(harness, rosout, make_node):  # noqa: F811
    """Missing/zero/NaN/odd-sized/binned/ROI camera_info: depth still served, no cloud, named."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image', 'points'])
    image_pub, info_pub = harness.camera(namespace)
    frame = image_msg(rgb_array(), stamp_of(1.0))
    missing = ('camera_info missing', None, 'camera_info', ['no camera_info received'], NEW)
    expect_reported(harness, rosout, node, namespace, missing, lambda: image_pub.publish(frame))
    for index, case in enumerate(CAMERA_INFO_CASES):
        name, info, kind = case[:3]
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


def test_camera_info_of_another_size_same_aspect_is_served(harness, make_node):  # noqa: F811
    """A 640x480 calibration of the 64x48 stream: served, K scaled by 1/10, nothing reported."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image', 'depth/camera_info', 'points'])
    image_pub, info_pub = harness.camera(namespace)
    frame = image_msg(rgb_array(), stamp_of(30.0))
    info = camera_info(640, 480, stamp=frame.header.stamp)
    expect_served(harness, node, namespace, 'camera_info of another size', frame, info,
                  lambda: (info_pub.publish(info), image_pub.publish(frame)))
    key = f'{namespace}/depth/camera_info'
    assert wait_for(lambda: any(out.header.stamp == frame.header.stamp
                                for out in harness.received[key]), 10.0)
    out = [out for out in harness.received[key] if out.header.stamp == frame.header.stamp][-1]
    # Pixel-centre rule: c' = (c + 0.5) s - 0.5, f' = f s; camera_info(640, 480) is the 64x48
    # calibration scaled by 10, so scaling it back gives the 64x48 calibration.
    assert (out.width, out.height) == (WIDTH, HEIGHT)
    assert list(out.k) == pytest.approx(list(camera_info().k), abs=1e-9)
    assert wait_for(lambda: any(out.header.stamp == frame.header.stamp
                                for out in harness.received[f'{namespace}/points']), 10.0)


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
    assert wait_for(lambda: harness.received[key], WAIT_S,
                    lambda: (info_pub.publish(full), image_pub.publish(frame)))
    info = harness.received[key][-1]
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert (info.k[0], info.k[4], info.k[2], info.k[5]) == pytest.approx(expected)
    problems = node.core.channels[0].stats.problems
    assert problems['camera_info'] == 0
    assert min(problems['camera_info_size'], 1) == size_problems


# Metric references -------------------------------------------------------------------------

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
     'reference', ["'lidar_link'", "'camera_optical'", 'ignored'], NEW),
    ('reference all NaN, Inf or negative',
     lambda stamp: depth_reference(np.tile(np.array([np.nan, np.inf, -np.inf, -1.0]),
                                           (HEIGHT, WIDTH // 4)), stamp),
     'reference', ['rejected', 'too few reference points', 'non-finite or non-positive'], NEW),
    ('reference in a colour encoding',
     lambda stamp: Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3,
                         data=bytes(WIDTH * HEIGHT * 3), header=depth_reference(
                             np.ones((1, 1)), stamp).header),
     'reference', ["'rgb8'", 'not metric depth'], NEW),
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
            # A frame processed before its reference arrived falls back without a problem
            # (nothing to judge yet): give the reference a head start on loaded machines.
            time.sleep(0.1)
            info_pub.publish(camera_info(stamp=stamp))
            image_pub.publish(image_msg(rgb_array(), stamp))

        expect_reported(harness, rosout, node, namespace, case, send)
        report = node.core.pipeline.scale_status()
        assert report.source == 'fallback', (case[0], report)
        # The range mapping [0.5, 10] m is used, never a scale from the bad reference.
        assert (report.scale, report.shift) == pytest.approx((FAR_M - NEAR_M, NEAR_M)), case[0]


# Time --------------------------------------------------------------------------------------

def test_time_going_backwards_is_reported_and_served(harness, rosout, make_node):  # noqa: F811
    """A bag loop (stamps jump back) is reported as a warning; those frames are still served."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image'])
    image_pub, info_pub = harness.camera(namespace)
    assert serve_good(harness, namespace, image_pub, info_pub, 500.0)
    sent = [10.0, 500.0, 10.5, 500.5, 11.0, 501.0, 11.5, 501.5] * 4
    seconds = itertools.cycle(sent)
    kind, fragments = 'time_backwards', ['went backwards by', 'bag loop']

    def send():
        stamp = stamp_of(next(seconds))
        info_pub.publish(camera_info(stamp=stamp))
        image_pub.publish(image_msg(rgb_array(), stamp))

    channel = node.core.channels[0]
    processed = channel.stats.processed
    assert wait_for(lambda: channel.stats.problems[kind] >= REPEATS, WAIT_S, send, period=0.3)
    assert channel.stats.processed >= processed + REPEATS
    # The frames that went backwards themselves came out, not only the ones after them.
    key = f'{namespace}/depth/image'
    backwards = {(int(value), int(value % 1 * 1e9)) for value in sent if value < 500.0}
    assert wait_for(lambda: any((out.header.stamp.sec, out.header.stamp.nanosec) in backwards
                                for out in harness.received[key]), 10.0)
    assert set(channel.stats.problems) <= {'time_backwards'}, dict(channel.stats.problems)
    time.sleep(0.2)
    lines = logged(rosout, namespace, kind, fragments)
    assert len(lines) == 1 and lines[0].level == Log.WARN, [line.msg for line in lines]


# Runtime parameters ------------------------------------------------------------------------

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
        before = node.get_parameter(name).value
        result = node.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful, (name, value)
        assert name in result.reason, (name, result.reason)
        assert node.get_parameter(name).value == before, name
    assert wait_for(lambda: any('rejected parameter change' in record.msg
                                and 'scale_mode' in record.msg for record in list(rosout)), 5.0)
    assert serve_good(harness, namespace, image_pub, info_pub, 1.0)
    status = f'{namespace}/genpercept_node: camera'
    assert wait_for(lambda: diagnostic_values(harness, status).get('errors_total') == '0', 5.0)


# Model failures ----------------------------------------------------------------------------

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
            ['ran out of memory', 'cache freed', 'processing_resolution'], NEW)
    expect_reported(harness, rosout, node, namespace, case,
                    lambda: (info_pub.publish(camera_info()), image_pub.publish(frame)))
    assert len(freed) == REPEATS
    assert serve_good(harness, namespace, image_pub, info_pub, 2.0)
