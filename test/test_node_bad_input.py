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
Bad input never takes genpercept_node down: each is counted, the next good frame is served.

Every case goes over real topics to a running node; after each one a good frame must come
out again, so a case that broke the worker fails the test at once.
"""

import math

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from test_node_ros import camera_info
from test_node_ros import compressed_image
from test_node_ros import harness  # noqa: F401 - the module-scoped fixture
from test_node_ros import image_msg
from test_node_ros import make_node  # noqa: F401 - the node factory fixture
from test_node_ros import publish_until
from test_node_ros import raw_image
from test_node_ros import rgb_array
from test_node_ros import stamp_of
from test_node_ros import wait_for

pytestmark = pytest.mark.ros


# (name, image message, camera_info or None = the good one, problem kind expected or None
#  when the input is unusual but valid and must simply be served).
IMAGE_CASES = [
    ('unknown encoding', raw_image(64, 48, 'yuv_unknown', 128, b'\0' * 128 * 48), None, 'decode'),
    ('empty encoding', raw_image(64, 48, '', 192, b'\0' * 192 * 48), None, 'decode'),
    ('step smaller than a row', raw_image(64, 48, 'rgb8', 100, b'\0' * 192 * 48), None, 'decode'),
    ('data shorter than height x step', raw_image(64, 48, 'rgb8', 192, b'\0' * 1000), None,
     'decode'),
    ('no data', raw_image(64, 48, 'rgb8', 192, b''), None, 'decode'),
    ('zero-sized', raw_image(0, 0, 'rgb8', 0, b''), None, 'decode'),
    ('zero width', raw_image(0, 48, 'rgb8', 0, b''), None, 'decode'),
    ('16-bit with odd step', raw_image(64, 48, 'mono16', 127, b'\0' * 127 * 48), None, 'decode'),
    ('float encoding as colour', raw_image(64, 48, '32FC1', 256, b'\0' * 256 * 48), None,
     'decode'),
    ('1-pixel image', raw_image(1, 1, 'rgb8', 3, b'\x10\x20\x30'), None, None),
    ('extreme aspect 2048x2', raw_image(2048, 2, 'rgb8', 6144, b'\x80' * 6144 * 2), None, None),
    ('big-endian mono16', raw_image(64, 48, 'mono16', 128, b'\x01\x02' * 64 * 48, 1), None, None),
    ('padded rows', raw_image(64, 48, 'rgb8', 200, b'\x40' * 200 * 48), None, None),
    ('camera_info all zero', image_msg(rgb_array(), stamp_of(1.0)),
     CameraInfo(width=64, height=48), 'camera_info'),
    ('camera_info NaN K', image_msg(rgb_array(), stamp_of(1.0)),
     CameraInfo(width=64, height=48, k=[math.nan] * 9), 'camera_info'),
    ('camera_info of another size', image_msg(rgb_array(), stamp_of(1.0)),
     camera_info(640, 480), None),
    ('camera_info of another aspect', image_msg(rgb_array(), stamp_of(1.0)),
     camera_info(640, 360), 'camera_info_size'),
    ('camera_info ROI outside the image', image_msg(rgb_array(), stamp_of(1.0)),
     CameraInfo(width=64, height=48, k=camera_info().k, p=camera_info().p,
                roi=camera_info().roi.__class__(x_offset=60, y_offset=0, width=40, height=48)),
     'camera_info'),
    ('time going backwards', image_msg(rgb_array(), stamp_of(0.5)), None, None),
]

COMPRESSED_CASES = [
    ('corrupt jpeg', compressed_image('jpeg', b'\xff\xd8\xff\xe0garbage' * 10), 'decode'),
    ('truncated png', compressed_image('png', b'\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0'), 'decode'),
    ('empty payload', compressed_image('jpeg', b''), 'decode'),
    ('unknown format string', compressed_image('tiff', b'II*\0' + b'\0' * 64), 'decode'),
    ('random bytes', compressed_image('rgb8; jpeg compressed bgr8',
                                      np.random.default_rng(0).bytes(500)), 'decode'),
    ('compressedDepth on a colour topic', compressed_image('32FC1; compressedDepth png',
                                                           b'\0' * 12 + b'\x89PNG'), 'decode'),
]


def total_problems(channel):
    """Return the number of problems counted so far."""
    return sum(channel.stats.problems.values())


def serve_good_frame(harness, namespace, image_pub, info_pub, seconds):  # noqa: F811
    """Publish a good frame until its depth comes out (the node still works)."""
    key = f'{namespace}/depth/image'
    good = image_msg(rgb_array(), stamp_of(seconds))
    info = camera_info(stamp=stamp_of(seconds))

    def send():
        info_pub.publish(info)
        image_pub.publish(good)

    return wait_for(lambda: any(m.header.stamp == good.header.stamp
                                for m in harness.received[key]), 15.0, send, period=0.05)


def run_cases(harness, node, namespace, cases, image_pub, info_pub):  # noqa: F811
    """Feed each case until handled (counted or served), then prove a good frame is served."""
    channel = node.core.channels[0]
    for index, (name, msg, info, kind) in enumerate(cases):
        before_kind = channel.stats.problems[kind] if kind else 0
        before_processed = channel.stats.processed
        before_total = total_problems(channel)
        msg.header.stamp = msg.header.stamp if name == 'time going backwards' else \
            stamp_of(1000.0 + index)

        def send():
            info_pub.publish(info if info is not None else camera_info())
            image_pub.publish(msg)

        if kind is None:
            handled = wait_for(lambda: channel.stats.processed > before_processed
                               or total_problems(channel) > before_total, 15.0, send,
                               period=0.05)
        else:
            handled = wait_for(lambda: channel.stats.problems[kind] > before_kind, 15.0, send,
                               period=0.05)
        assert handled, f'{name}: neither served nor reported ({dict(channel.stats.problems)})'
        assert node.core._worker.is_alive(), name
        if kind is not None or index % 4 == 0:
            assert serve_good_frame(harness, namespace, image_pub, info_pub, 2000.0 + index), \
                f'after {name!r} the next good frame was not served'


def test_bad_raw_images_and_camera_info(harness, make_node):  # noqa: F811
    """Broken Image and CameraInfo messages are reported; the node keeps serving."""
    node, namespace = make_node(normal_model='')
    harness.subscribe(namespace, ['depth/image', 'points'])
    image_pub, info_pub = harness.camera(namespace)
    run_cases(harness, node, namespace, IMAGE_CASES, image_pub, info_pub)
    assert node.core.channels[0].stats.problems['decode'] >= 8


def test_bad_compressed_images(harness, make_node):  # noqa: F811
    """Corrupt, truncated and mislabelled CompressedImage payloads are reported."""
    node, namespace = make_node(normal_model='', image_transport='compressed')
    harness.subscribe(namespace, ['depth/image'])
    image_pub, info_pub = harness.camera(namespace, compressed=True)
    channel = node.core.channels[0]
    for index, (name, msg, kind) in enumerate(COMPRESSED_CASES):
        before = channel.stats.problems[kind]
        msg.header.stamp = stamp_of(500.0 + index)
        assert wait_for(lambda: channel.stats.problems[kind] > before, 15.0,
                        lambda: image_pub.publish(msg), period=0.05), name
    assert node.core._worker.is_alive()
    out = publish_until(harness, namespace, ['depth/image'], rgb_array(), stamp_of(600.0),
                        compressed=True)
    assert out['depth/image'].header.stamp == stamp_of(600.0)
