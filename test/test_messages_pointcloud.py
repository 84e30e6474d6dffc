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

"""PointCloud2 building and reading, checked against independent decoders and geometry."""

import array

from genpercept_ros.geometry import backproject
from genpercept_ros.geometry import Intrinsics
from genpercept_ros.messages import build_pointcloud
from genpercept_ros.messages import camera_info_to_intrinsics
from genpercept_ros.messages import CodecError
from genpercept_ros.messages import depth_to_pointcloud
from genpercept_ros.messages import pointcloud_to_xyz
import numpy as np
import pytest
from rclpy.serialization import serialize_message
from rosbags.typesys import get_typestore
from rosbags.typesys import Stores
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import PointCloud2
from sensor_msgs.msg import PointField
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

RNG = np.random.default_rng(11)
H, W = 6, 9
FX, FY, CX, CY = 30.0, 32.0, 4.5, 2.75
DEPTH = RNG.uniform(0.4, 6.0, size=(H, W)).astype(np.float32)
DEPTH[1, 2] = np.nan
DEPTH[3, 4] = 0.0
RGB = RNG.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
NORMALS = RNG.standard_normal((H, W, 3)).astype(np.float32)
NORMALS /= np.linalg.norm(NORMALS, axis=2, keepdims=True)
NORMALS[5, 5] = np.nan
NUMPY_TYPES = {PointField.INT8: 'i1', PointField.UINT8: 'u1', PointField.INT16: 'i2',
               PointField.UINT16: 'u2', PointField.INT32: 'i4', PointField.UINT32: 'u4',
               PointField.FLOAT32: 'f4', PointField.FLOAT64: 'f8'}


def structured_dtype(msg):
    """Decode layout built only from the message's PointField list (as a consumer does)."""
    endian = '>' if msg.is_bigendian else '<'
    return np.dtype({'names': [f.name for f in msg.fields],
                     'formats': [endian + NUMPY_TYPES[f.datatype] for f in msg.fields],
                     'offsets': [f.offset for f in msg.fields], 'itemsize': msg.point_step})


def decode(msg):
    return np.frombuffer(bytes(msg.data), dtype=structured_dtype(msg)).reshape(
        msg.height, msg.width)


def pinhole(u, v, z):
    if not np.isfinite(z) or z <= 0:
        return [np.nan] * 3
    return [(u - CX) * z / FX, (v - CY) * z / FY, z]


def cloud(rgb=True, normals=True):
    xyz = backproject(DEPTH, Intrinsics(FX, FY, CX, CY, W, H))
    return build_pointcloud(Header(frame_id='camera_optical'), xyz,
                            RGB if rgb else None, NORMALS if normals else None)


@pytest.mark.parametrize('rgb,normals,names,step', [
    (False, False, ['x', 'y', 'z'], 12),
    (True, False, ['x', 'y', 'z', 'rgb'], 16),
    (False, True, ['x', 'y', 'z', 'normal_x', 'normal_y', 'normal_z'], 24),
    (True, True, ['x', 'y', 'z', 'rgb', 'normal_x', 'normal_y', 'normal_z'], 28),
])
def test_layout_and_header(rgb, normals, names, step):
    msg = cloud(rgb, normals)
    assert [f.name for f in msg.fields] == names
    assert [f.offset for f in msg.fields] == [4 * i for i in range(len(names))]
    assert all(f.datatype == PointField.FLOAT32 and f.count == 1 for f in msg.fields)
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (H, W, step, step * W)
    assert msg.is_dense is False and msg.is_bigendian is False
    assert msg.header.frame_id == 'camera_optical'
    assert isinstance(msg.data, array.array) and len(msg.data) == H * W * step


@pytest.mark.parametrize('rgb,normals', [(False, False), (True, False), (False, True),
                                         (True, True)])
def test_points_equal_per_pixel_pinhole(rgb, normals):
    points = decode(cloud(rgb, normals))
    for v in range(H):
        for u in range(W):
            actual = [points['x'][v, u], points['y'][v, u], points['z'][v, u]]
            np.testing.assert_allclose(actual, pinhole(u, v, float(DEPTH[v, u])),
                                       rtol=1e-6, atol=1e-7)


def test_packed_rgb_decodes_to_colours():
    packed = decode(cloud())['rgb'].copy().view(np.uint32)
    np.testing.assert_array_equal((packed >> 16) & 0xFF, RGB[..., 0])
    np.testing.assert_array_equal((packed >> 8) & 0xFF, RGB[..., 1])
    np.testing.assert_array_equal(packed & 0xFF, RGB[..., 2])
    np.testing.assert_array_equal(packed >> 24, 0)
    # Byte order on the wire (little-endian): b, g, r, 0 at offset 12 of each point.
    raw = np.frombuffer(bytes(cloud().data), np.uint8).reshape(H, W, 28)
    np.testing.assert_array_equal(raw[..., 12:15], RGB[..., ::-1])


def test_normals_round_trip():
    points = decode(cloud())
    decoded = np.dstack([points['normal_x'], points['normal_y'], points['normal_z']])
    np.testing.assert_array_equal(decoded, NORMALS)
    points = decode(cloud(rgb=False))
    np.testing.assert_array_equal(points['normal_z'], NORMALS[..., 2])


@pytest.mark.parametrize('rgb,normals', [(False, False), (True, False), (False, True),
                                         (True, True)])
def test_depth_to_pointcloud_equals_backproject_then_build(rgb, normals):
    direct = depth_to_pointcloud(Header(frame_id='camera_optical'), DEPTH,
                                 Intrinsics(FX, FY, CX, CY, W, H), RGB if rgb else None,
                                 NORMALS if normals else None)
    reference = cloud(rgb, normals)
    assert bytes(direct.data) == bytes(reference.data)
    assert [(f.name, f.offset) for f in direct.fields] == [
        (f.name, f.offset) for f in reference.fields]
    assert (direct.height, direct.width, direct.point_step, direct.row_step) == (
        reference.height, reference.width, reference.point_step, reference.row_step)
    assert direct.header.frame_id == 'camera_optical' and direct.is_dense is False


def test_cloud_is_bit_identical_to_depth_image_proc():
    # depth_image_proc (conversions.hpp convertDepth, float depth) computes in float32:
    # center = (float) cx, constant = (float) (1.0 / fx), x = (u - center) * depth * constant,
    # with cx, fx from image_geometry (P adjusted for binning and ROI).
    info = CameraInfo(width=40, height=30, k=[50.0, 0, 19.5, 0, 52.0, 14.5, 0, 0, 1],
                      p=[48.3, 0, 18.7, 0, 0, 49.1, 15.2, 0, 0, 0, 1, 0])
    info.binning_x, info.binning_y = 2, 2
    info.roi = RegionOfInterest(x_offset=4, y_offset=6, width=18, height=12)
    fx, fy = 48.3 / 2, 49.1 / 2
    cx, cy = (18.7 - 4) / 2, (15.2 - 6) / 2
    depth = RNG.uniform(0.3, 7.0, size=(6, 9)).astype(np.float32)
    depth[2, 2] = np.nan
    intrinsics = camera_info_to_intrinsics(info, 9, 6)
    points = decode(depth_to_pointcloud(Header(), depth, intrinsics))
    center_x, center_y = np.float32(cx), np.float32(cy)
    constant_x, constant_y = np.float32(1.0 / fx), np.float32(1.0 / fy)
    for v in range(6):
        for u in range(9):
            z = depth[v, u]
            expected = [np.nan] * 3 if not np.isfinite(z) else [
                (np.float32(u) - center_x) * z * constant_x,
                (np.float32(v) - center_y) * z * constant_y, z]
            actual = [points['x'][v, u], points['y'][v, u], points['z'][v, u]]
            np.testing.assert_array_equal(np.array(actual, np.float32),
                                          np.array(expected, np.float32))


def test_depth_to_pointcloud_rejects_mismatches():
    with pytest.raises(CodecError, match='intrinsics are for a 9x6'):
        depth_to_pointcloud(Header(), DEPTH[:-1], Intrinsics(FX, FY, CX, CY, W, H))
    with pytest.raises(CodecError, match='rgb must have the shape'):
        depth_to_pointcloud(Header(), DEPTH, Intrinsics(FX, FY, CX, CY, W, H), RGB[:-1])


def test_unorganized_points_and_empty_cloud():
    xyz = RNG.standard_normal((5, 3)).astype(np.float32)
    msg = build_pointcloud(Header(), xyz, RGB[0, :5])
    assert (msg.height, msg.width) == (1, 5)
    np.testing.assert_array_equal(pointcloud_to_xyz(msg)[0], xyz)
    empty = build_pointcloud(Header(), np.zeros((0, 3), np.float32))
    assert (empty.height, empty.width, len(empty.data)) == (1, 0, 0)
    assert pointcloud_to_xyz(empty).shape == (1, 0, 3)


@pytest.mark.parametrize('xyz,rgb,normals,problem', [
    (np.zeros((H, W)), None, None, 'xyz must be'),
    (np.zeros((H, W, 4)), None, None, 'xyz must be'),
    (np.zeros((H, W, 3)), np.zeros((H, W, 3), np.float32), None, 'rgb must be uint8'),
    (np.zeros((H, W, 3)), np.zeros((H, W + 1, 3), np.uint8), None, 'rgb must have the shape'),
    (np.zeros((H, W, 3)), None, np.zeros((H, 1, 3)), 'normals must have the shape'),
])
def test_build_rejects_bad_arrays(xyz, rgb, normals, problem):
    with pytest.raises(CodecError, match=problem):
        build_pointcloud(Header(), xyz, rgb, normals)


def foreign_cloud(points, layout, point_step, bigendian=False, row_padding=0):
    """Hand-pack points into an arbitrary layout: {name: (offset, numpy type, datatype)}."""
    height, width = points.shape[:2]
    endian = '>' if bigendian else '<'
    dtype = np.dtype({'names': list(layout),
                      'formats': [endian + spec[1] for spec in layout.values()],
                      'offsets': [spec[0] for spec in layout.values()],
                      'itemsize': point_step})
    packed = np.zeros((height, width), dtype=dtype)
    for index, name in enumerate(('x', 'y', 'z')):
        packed[name] = points[..., index]
    rows = packed.view(np.uint8).reshape(height, width * point_step)
    rows = np.concatenate([rows, np.full((height, row_padding), 7, np.uint8)], axis=1)
    msg = PointCloud2(height=height, width=width, point_step=point_step,
                      row_step=width * point_step + row_padding, is_bigendian=bigendian)
    msg.fields = [PointField(name=name, offset=spec[0], datatype=spec[2], count=1)
                  for name, spec in layout.items()]
    msg.data = array.array('B', rows.tobytes())
    return msg


POINTS = RNG.standard_normal((4, 5, 3)).astype(np.float32)
POINTS[2, 3] = np.nan


@pytest.mark.parametrize('layout,point_step', [
    # depth_image_proc's padded XYZ (16 bytes) and XYZRGB (32 bytes) layouts.
    ({'x': (0, 'f4', 7), 'y': (4, 'f4', 7), 'z': (8, 'f4', 7)}, 16),
    ({'x': (0, 'f4', 7), 'y': (4, 'f4', 7), 'z': (8, 'f4', 7), 'rgb': (16, 'f4', 7)}, 32),
    # Fields out of order, behind an intensity field, and double precision.
    ({'intensity': (0, 'u2', 4), 'z': (2, 'f4', 7), 'x': (6, 'f4', 7), 'y': (10, 'f4', 7)}, 14),
    ({'x': (0, 'f8', 8), 'y': (8, 'f8', 8), 'z': (16, 'f8', 8)}, 24),
])
@pytest.mark.parametrize('bigendian', [False, True])
def test_pointcloud_to_xyz_reads_foreign_layouts(layout, point_step, bigendian):
    msg = foreign_cloud(POINTS, layout, point_step, bigendian, row_padding=3)
    xyz = pointcloud_to_xyz(msg)
    assert xyz.shape == (4, 5, 3) and xyz.dtype == np.float32
    np.testing.assert_array_equal(xyz, POINTS)


XYZ = {'x': (0, 'f4', 7), 'y': (4, 'f4', 7), 'z': (8, 'f4', 7)}


def _modified(**changes):
    msg = foreign_cloud(POINTS, XYZ, 12)
    for name, value in changes.items():
        setattr(msg, name, value)
    return msg


@pytest.mark.parametrize('msg,problem', [
    (_modified(fields=[PointField(name='x', offset=0, datatype=7, count=1)]), 'no y/z field'),
    (_modified(fields=[PointField(name=n, offset=4 * i, datatype=PointField.UINT16, count=1)
                       for i, n in enumerate('xyz')]), 'datatype 4'),
    (_modified(point_step=10), "'z' at offset 8 does not fit"),
    (_modified(row_step=50), 'row_step 50 is smaller'),
    (_modified(height=5), 'fewer than height 5'),
    (_modified(data=array.array('B', b'\0' * 10)), 'has 10 bytes'),
])
def test_pointcloud_to_xyz_errors_name_the_problem(msg, problem):
    with pytest.raises(CodecError, match=problem):
        pointcloud_to_xyz(msg)


def rosbags_points(msg):
    """
    Decode ``msg`` with tools that share no code with ours: rmw CDR bytes -> rosbags -> numpy.

    rclpy serialises the message as any ROS 2 publisher would; the rosbags typestore
    deserialises the CDR stream, and the record layout is a numpy dtype built from the
    PointField list rosbags returns (names, offsets, datatypes, endianness, point_step), with
    the datatype codes taken from rosbags' own PointField constants.
    """
    store = get_typestore(Stores.ROS2_JAZZY)
    decoded = store.deserialize_cdr(serialize_message(msg), 'sensor_msgs/msg/PointCloud2')
    point_field = store.types['sensor_msgs/msg/PointField']
    codes = {point_field.INT8: 'i1', point_field.UINT8: 'u1', point_field.INT16: 'i2',
             point_field.UINT16: 'u2', point_field.INT32: 'i4', point_field.UINT32: 'u4',
             point_field.FLOAT32: 'f4', point_field.FLOAT64: 'f8'}
    endian = '>' if decoded.is_bigendian else '<'
    assert all(field.count == 1 for field in decoded.fields)
    dtype = np.dtype({'names': [field.name for field in decoded.fields],
                      'formats': [endian + codes[field.datatype] for field in decoded.fields],
                      'offsets': [field.offset for field in decoded.fields],
                      'itemsize': decoded.point_step})
    assert decoded.row_step == decoded.width * decoded.point_step
    assert len(decoded.data) == decoded.height * decoded.row_step
    rows = np.asarray(decoded.data, np.uint8).reshape(decoded.height, decoded.row_step)
    return decoded, rows.view(dtype).reshape(decoded.height, decoded.width)


@pytest.mark.parametrize('builder', ['build_pointcloud', 'depth_to_pointcloud'])
def test_independent_reader_sees_the_camera_geometry(builder):
    header = Header(frame_id='camera_optical')
    header.stamp.sec, header.stamp.nanosec = 1700000000, 123456789
    if builder == 'build_pointcloud':
        msg = cloud()
        msg.header = header
    else:
        msg = depth_to_pointcloud(header, DEPTH, Intrinsics(FX, FY, CX, CY, W, H), RGB, NORMALS)
    decoded, points = rosbags_points(msg)
    assert decoded.header.frame_id == 'camera_optical'
    assert (decoded.header.stamp.sec, decoded.header.stamp.nanosec) == (1700000000, 123456789)
    assert (decoded.height, decoded.width, decoded.is_dense) == (H, W, False)
    assert set(points.dtype.names) == {'x', 'y', 'z', 'rgb', 'normal_x', 'normal_y', 'normal_z'}
    for v in range(H):
        for u in range(W):
            actual = [points['x'][v, u], points['y'][v, u], points['z'][v, u]]
            np.testing.assert_allclose(actual, pinhole(u, v, float(DEPTH[v, u])),
                                       rtol=1e-6, atol=1e-7)
    # PCL packing: the float's bits are the uint32 (r << 16) | (g << 8) | b.
    packed = points['rgb'].copy().view(np.uint32)
    np.testing.assert_array_equal(np.dstack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF,
                                             packed & 0xFF]), RGB)
    decoded_normals = np.dstack([points['normal_x'], points['normal_y'], points['normal_z']])
    np.testing.assert_array_equal(decoded_normals, NORMALS)
    finite = np.isfinite(points['z'])
    assert finite.sum() == H * W - 2        # the NaN pixel and the zero-depth pixel


def test_independent_reader_sees_every_layout():
    """Every layout we write, read by rosbags: the field list alone locates each value."""
    for rgb, normals in [(False, False), (True, False), (False, True)]:
        _, points = rosbags_points(cloud(rgb, normals))
        np.testing.assert_array_equal(points['z'], np.where(DEPTH > 0, DEPTH, np.nan))
        if rgb:
            packed = points['rgb'].copy().view(np.uint32)
            np.testing.assert_array_equal(packed & 0xFF, RGB[..., 2])
        if normals:
            np.testing.assert_array_equal(points['normal_y'], NORMALS[..., 1])
