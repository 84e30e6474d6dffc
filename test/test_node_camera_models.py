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
Issue 14's failing inputs over real rclpy topics: a distorted raw camera, EXIF-tagged frames.

Expected values are independent: the issue's K, D and P, rays inverted by the Newton iteration
of test_geometry_camera_model, the stored pixel grid as PIL decodes it.
"""

import io

import numpy as np
from PIL import Image as PilImage
import pytest
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import CompressedImage

from test_geometry_camera_model import ISSUE_D
from test_geometry_camera_model import ISSUE_K
from test_geometry_camera_model import ISSUE_P
from test_geometry_camera_model import to_pixels
from test_geometry_camera_model import true_rays
from test_node_ros import cloud_array
from test_node_ros import harness  # noqa: F401 - the module-scoped fixture
from test_node_ros import image_array
from test_node_ros import image_msg
from test_node_ros import make_node  # noqa: F401 - the node factory fixture
from test_node_ros import rgb_array
from test_node_ros import stamp_of
from test_node_ros import wait_for

pytestmark = pytest.mark.ros


def issue_camera_info(stamp, model='plumb_bob', d=ISSUE_D):
    info = CameraInfo(width=160, height=120, distortion_model=model, d=list(d), k=ISSUE_K,
                      p=ISSUE_P, r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    info.header.stamp, info.header.frame_id = stamp, 'camera_optical'
    return info


def publish(harness, namespace, image, info, keys, timeout=30.0):  # noqa: F811
    """Publish ``image`` (and ``info``) until every key got a message stamped like it."""
    image_pub, info_pub = harness.camera(namespace,
                                         compressed=isinstance(image, CompressedImage))

    def send():
        info_pub.publish(info)
        image_pub.publish(image)

    def arrived():
        return all(any(m.header.stamp == image.header.stamp
                       for m in harness.received[f'{namespace}/{key}']) for key in keys)

    assert wait_for(arrived, timeout, send)
    return {key: next(m for m in reversed(harness.received[f'{namespace}/{key}'])
                      if m.header.stamp == image.header.stamp) for key in keys}


def test_issue_raw_distorted_camera(harness, make_node):  # noqa: F811
    """160x120 rgb8, plumb_bob: depth/camera_info keeps K with D and P; cloud on true rays."""
    node, namespace = make_node(normal_model='')
    keys = ['depth/image', 'depth/camera_info', 'points']
    harness.subscribe(namespace, keys)
    stamp = stamp_of(14.0)
    out = publish(harness, namespace, image_msg(rgb_array(160, 120), stamp),
                  issue_camera_info(stamp), keys)
    info = out['depth/camera_info']
    assert (info.width, info.height) == (160, 120)
    assert info.distortion_model == 'plumb_bob'
    assert list(info.k) == ISSUE_K and list(info.d) == ISSUE_D and list(info.p) == ISSUE_P
    depth = image_array(out['depth/image'])
    points = cloud_array(out['points'])
    x, y = true_rays(ISSUE_K, 'plumb_bob', ISSUE_D, 160, 120)
    valid = np.isfinite(depth)
    assert valid.mean() > 0.9
    np.testing.assert_allclose(points['z'][valid], depth[valid], rtol=1e-6)
    np.testing.assert_allclose(points['x'][valid], (x * depth)[valid], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(points['y'][valid], (y * depth)[valid], rtol=1e-5, atol=1e-6)
    # Projecting the cloud with the published camera_info lands on its own pixel.
    z = points['z'].astype(np.float64)
    pu, pv = to_pixels(list(info.k), 'plumb_bob', list(info.d), points['x'] / z,
                       points['y'] / z)
    u, v = np.meshgrid(np.arange(160), np.arange(120))
    assert np.abs(pu - u)[valid].max() < 1e-3 and np.abs(pv - v)[valid].max() < 1e-3


def test_unknown_distortion_model_depth_without_cloud(harness, make_node):  # noqa: F811
    node, namespace = make_node(normal_model='')
    keys = ['depth/image', 'points']
    harness.subscribe(namespace, keys)
    channel = node.core.channels[0]
    stamp = stamp_of(15.0)
    publish(harness, namespace, image_msg(rgb_array(160, 120), stamp),
            issue_camera_info(stamp, 'kannala_brandt', [0.1, 0.01, 0.0, 0.0]), ['depth/image'])
    assert not harness.received[f'{namespace}/points']
    assert wait_for(lambda: channel.stats.problems['camera_info'] > 0, 5.0)


@pytest.mark.parametrize('kind', ['JPEG', 'PNG'])
def test_exif_tagged_compressed_frames_keep_their_stored_grid(harness, make_node,  # noqa: F811
                                                              tiny_model_root, kind):
    """64x48 frames with EXIF orientation 3, 6 and 8 are processed as stored, never refused."""
    from genpercept_ros.model.predictor import GenPerceptPredictor
    node, namespace = make_node(normal_model='', input_transport='compressed')
    harness.subscribe(namespace, ['depth_relative/image'])
    predictor = GenPerceptPredictor.from_pretrained(
        depth_model='depth-v2', normal_model='', model_root=str(tiny_model_root),
        device='cpu', dtype='fp32')
    channel = node.core.channels[0]
    for index, orientation in enumerate((3, 6, 8)):
        exif = PilImage.Exif()
        exif[0x0112] = orientation
        buffer = io.BytesIO()
        PilImage.fromarray(rgb_array(64, 48, seed=index)).save(
            buffer, format=kind, exif=exif.tobytes(), quality=95)
        data = buffer.getvalue()
        stored = np.array(PilImage.open(io.BytesIO(data)).convert('RGB'))
        msg = CompressedImage(format=f'rgb8; {kind.lower()} compressed bgr8', data=data)
        stamp = stamp_of(20.0 + index)
        msg.header.stamp, msg.header.frame_id = stamp, 'camera_optical'
        info = issue_camera_info(stamp, d=[0.0] * 5)
        out = publish(harness, namespace, msg, info, ['depth_relative/image'])
        relative = image_array(out['depth_relative/image'])
        assert relative.shape == (48, 64)
        expected = predictor.predict([stored], processing_resolution=64).depth[0]
        np.testing.assert_allclose(relative, expected, atol=1e-6)
    assert channel.stats.problems['decode'] == 0
