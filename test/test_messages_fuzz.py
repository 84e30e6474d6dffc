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
Fuzz the message codecs: arbitrary messages give a valid result or CodecError, nothing else.

Messages are drawn around the edges that matter (tiny and huge sizes, steps, encodings,
formats, offsets) rather than uniformly, so a few hundred examples per codec reach them.
"""

import array

import cv2
from genpercept_ros.geometry import Intrinsics
from genpercept_ros.messages import camera_info_to_intrinsics
from genpercept_ros.messages import CodecError
from genpercept_ros.messages import compressed_to_rgb
from genpercept_ros.messages import depth_image_to_meters
from genpercept_ros.messages import image_to_rgb
from genpercept_ros.messages import pointcloud_to_xyz
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import CompressedImage
from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2
from sensor_msgs.msg import PointField
from sensor_msgs.msg import RegionOfInterest

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
UINT32_EDGES = st.one_of(st.integers(0, 12), st.sampled_from([2 ** 31, 2 ** 32 - 1]),
                         st.integers(0, 2 ** 32 - 1))
ENCODINGS = st.one_of(
    st.sampled_from(['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', '8UC1', '8UC3',
                     '8UC4', '16UC1', 'rgb16', 'bgr16', 'bayer_rggb8', 'yuv422', '32FC1',
                     '64FC3', 'jpeg', 'RGB8', '8UC5', '']),
    st.text(max_size=12))


def byte_array(data):
    return array.array('B', data)


SUPPORTED_LAYOUTS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, 'mono16': 2,
                     '8UC1': 1, '8UC3': 3, '16UC1': 2, 'rgb16': 6, 'bgr16': 6, 'yuv422': 2,
                     'bayer_grbg8': 1, '32FC1': 4}


@st.composite
def arbitrary_images(draw):
    width = draw(UINT32_EDGES)
    height = draw(UINT32_EDGES)
    step = draw(st.one_of(st.integers(0, 64), UINT32_EDGES))
    data = draw(st.binary(max_size=600))
    return Image(height=height, width=width, step=step, encoding=draw(ENCODINGS),
                 is_bigendian=draw(st.integers(0, 255)), data=byte_array(data))


@st.composite
def plausible_images(draw):
    """Nearly valid images: a supported encoding, small sizes, steps and lengths near exact."""
    encoding = draw(st.sampled_from(sorted(SUPPORTED_LAYOUTS)))
    width, height = draw(st.integers(0, 9)), draw(st.integers(0, 9))
    step = width * SUPPORTED_LAYOUTS[encoding] + draw(st.integers(-2, 3))
    size = max(0, height * step + draw(st.integers(-3, 3)))
    return Image(height=height, width=width, step=max(0, step), encoding=encoding,
                 is_bigendian=draw(st.integers(0, 1)),
                 data=byte_array(draw(st.binary(min_size=size, max_size=size))))


def images():
    return st.one_of(plausible_images(), arbitrary_images())


@FUZZ
@given(images())
def test_fuzz_image_to_rgb(msg):
    try:
        rgb = image_to_rgb(msg)
    except CodecError:
        return
    assert rgb.dtype == np.uint8 and rgb.shape == (msg.height, msg.width, 3)


@FUZZ
@given(images())
def test_fuzz_depth_image_to_meters(msg):
    try:
        depth = depth_image_to_meters(msg)
    except CodecError:
        return
    assert depth.dtype == np.float32 and depth.shape == (msg.height, msg.width)


def _encoded(extension, seed):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(6 + seed % 5, 9, 3), dtype=np.uint8)
    return cv2.imencode(extension, pixels)[1].tobytes()


VALID_STREAMS = [_encoded('.jpg', 1), _encoded('.png', 2), _encoded('.jpg', 3)]


@st.composite
def compressed_images(draw):
    source = draw(st.sampled_from(VALID_STREAMS))
    mutation = draw(st.sampled_from(['none', 'truncate', 'flip', 'random', 'splice']))
    data = bytearray(source)
    if mutation == 'truncate':
        data = data[:draw(st.integers(0, len(data)))]
    elif mutation == 'flip':
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif mutation == 'random':
        data = bytearray(draw(st.binary(max_size=300)))
    elif mutation == 'splice':
        start = draw(st.integers(0, len(data)))
        data[start:start] = draw(st.binary(max_size=40))
    fmt = draw(st.one_of(st.sampled_from(['jpeg', 'png', 'jpg', 'bgr8; jpeg compressed bgr8',
                                          '16UC1; compressedDepth png', '', 'tiff']),
                         st.text(max_size=20)))
    return CompressedImage(format=fmt, data=byte_array(bytes(data)))


@FUZZ
@given(compressed_images())
def test_fuzz_compressed_to_rgb(msg):
    try:
        rgb = compressed_to_rgb(msg)
    except CodecError:
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.size > 0


FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, 1.0, -1.0, 500.0, 319.5]))


@st.composite
def camera_infos(draw):
    plausible = draw(st.booleans())
    sizes = st.integers(0, 2000) if plausible else UINT32_EDGES
    small = st.integers(0, 4) if plausible else UINT32_EDGES
    values = st.floats(-10.0, 3000.0) if plausible else FLOATS
    msg = CameraInfo(width=draw(sizes), height=draw(sizes))
    msg.k = [draw(values) for _ in range(9)]
    msg.p = draw(st.one_of(st.just([0.0] * 12), st.lists(values, min_size=12, max_size=12)))
    msg.binning_x = draw(small)
    msg.binning_y = draw(small)
    roi = st.one_of(st.just((0, 0, 0, 0)), st.tuples(sizes, sizes, sizes, sizes))
    x_offset, y_offset, roi_width, roi_height = draw(roi)
    msg.roi = RegionOfInterest(x_offset=x_offset, y_offset=y_offset, width=roi_width,
                               height=roi_height)
    return msg


@FUZZ
@given(camera_infos(), st.integers(-2, 5000), st.integers(-2, 5000), st.booleans())
def test_fuzz_camera_info_to_intrinsics(msg, width, height, rectified):
    try:
        intrinsics = camera_info_to_intrinsics(msg, width, height, rectified)
    except CodecError:
        return
    assert isinstance(intrinsics, Intrinsics) and intrinsics.is_valid()
    assert (intrinsics.width, intrinsics.height) == (width, height)


@st.composite
def pointclouds(draw):
    names = st.sampled_from(['x', 'y', 'z', 'rgb', 'intensity', ''])
    fields = [PointField(name=draw(names), offset=draw(st.integers(0, 40)),
                         datatype=draw(st.integers(0, 9)), count=draw(st.integers(0, 2)))
              for _ in range(draw(st.integers(0, 3)))]
    plausible = draw(st.booleans())
    if plausible:
        datatype = draw(st.sampled_from([PointField.FLOAT32, PointField.FLOAT64]))
        size = 4 if datatype == PointField.FLOAT32 else 8
        fields = [PointField(name=n, offset=size * i + draw(st.integers(0, 2)),
                             datatype=datatype, count=1) for i, n in enumerate('xyz')] + fields
        width, height = draw(st.integers(0, 6)), draw(st.integers(0, 6))
        point_step = 3 * size + draw(st.integers(-1, 8))
        row_step = width * point_step + draw(st.integers(-1, 4))
        length = max(0, height * row_step + draw(st.integers(-2, 2)))
    else:
        width, height = draw(UINT32_EDGES), draw(UINT32_EDGES)
        point_step = draw(st.one_of(st.integers(0, 40), UINT32_EDGES))
        row_step = draw(st.one_of(st.integers(0, 200), UINT32_EDGES))
        length = draw(st.integers(0, 400))
    return PointCloud2(height=height, width=width, fields=fields, point_step=point_step,
                       row_step=max(0, row_step), is_bigendian=draw(st.booleans()),
                       data=byte_array(draw(st.binary(min_size=length, max_size=length))))


@FUZZ
@given(pointclouds())
def test_fuzz_pointcloud_to_xyz(msg):
    try:
        xyz = pointcloud_to_xyz(msg)
    except CodecError:
        return
    assert xyz.dtype == np.float32 and xyz.shape == (msg.height, msg.width, 3)
