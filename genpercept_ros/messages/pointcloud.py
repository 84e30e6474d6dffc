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
Organized sensor_msgs/PointCloud2 building and reading, vectorised.

Layout of the clouds built here (little-endian, every field FLOAT32, no padding, so the
message is as small as the content allows; consumers locate fields by the PointField list):

==========================  =====================================  ==========
content                     fields (byte offset)                   point_step
==========================  =====================================  ==========
xyz                         x 0, y 4, z 8                          12
xyz + rgb                   ... rgb 12                             16
xyz + normals               ... normal_x 12, normal_y 16, _z 20    24
xyz + rgb + normals         ... rgb 12, normal_x 16, _y 20, _z 24  28
==========================  =====================================  ==========

``rgb`` is the PCL / depth_image_proc packing: the uint32 ``(r << 16) | (g << 8) | b``
reinterpreted as float32 (rviz2's RGB8 transformer), i.e. bytes b, g, r, 0.

Hand-written on purpose: ROS 2's sensor_msgs_py (``point_cloud2``) is not on PyPI, so it cannot
serve the PyPI-wheel install; the bytes are cross-checked in the tests with the rosbags CDR
deserialiser and a numpy dtype built from the PointField list.
"""

import cv2
import numpy as np
from sensor_msgs.msg import PointCloud2
from sensor_msgs.msg import PointField

from ._bytes import bytes_array
from ._bytes import message_with_fast_data
from ._bytes import zeroed_bytes
from .errors import CodecError
from ..geometry.backproject import backproject_planes

_FLOAT_SIZES = {PointField.FLOAT32: 4, PointField.FLOAT64: 8}
_FLOAT_CODES = {PointField.FLOAT32: 'f4', PointField.FLOAT64: 'f8'}


def cloud_fields(rgb=False, normals=False):
    """Return ``(fields, point_step)`` of the layout ``build_pointcloud`` writes."""
    names = ['x', 'y', 'z']
    if rgb:
        names.append('rgb')
    if normals:
        names += ['normal_x', 'normal_y', 'normal_z']
    fields = [PointField(name=name, offset=4 * index, datatype=PointField.FLOAT32, count=1)
              for index, name in enumerate(names)]
    return fields, 4 * len(names)


def build_pointcloud(header, xyz, rgb=None, normals=None):
    """
    Build an organized PointCloud2 from (H, W, 3) points, optional colours and normals.

    ``xyz`` (float, NaN = invalid point, kept so the cloud stays organized) gives height H and
    width W; ``rgb`` is (H, W, 3) uint8 in RGB order; ``normals`` is (H, W, 3) float. An
    (N, 3) ``xyz`` gives an unorganized cloud of height 1. ``is_dense`` is False. The data is
    interleaved by one OpenCV merge straight into the ``array.array('B')`` that becomes the
    message's buffer (numpy's strided field assignment is several times slower for 3-float
    groups); see the module docstring for the layout.
    """
    points = np.asarray(xyz)
    if points.ndim == 2:
        points = points[np.newaxis]
    if points.ndim != 3 or points.shape[2] != 3:
        raise CodecError(f'xyz must be (H, W, 3) or (N, 3), got shape {np.shape(xyz)}')
    height, width = points.shape[:2]
    colours, normal_vectors = _extras(rgb, normals, points.shape)
    fields, point_step = cloud_fields(colours is not None, normal_vectors is not None)
    points = np.ascontiguousarray(points, dtype=np.float32)
    data = _pack_points([points], colours, normal_vectors, point_step)
    return _cloud_message(header, height, width, fields, point_step, data)


def _cloud_message(header, height, width, fields, point_step, data):
    msg = message_with_fast_data(PointCloud2)
    if header is not None:
        msg.header = header
    msg.height = height
    msg.width = width
    msg.fields = fields
    msg.is_bigendian = False
    msg.point_step = point_step
    msg.row_step = point_step * width
    msg.is_dense = False
    msg.data = data
    return msg


def depth_to_pointcloud(header, depth_m, intrinsics, rgb=None, normals=None):
    """
    Back-project metric depth and build its organized PointCloud2 in one step.

    Same message as ``build_pointcloud(header, backproject(depth_m, intrinsics), rgb,
    normals)`` (identical bytes), but the points are interleaved only once, straight into the
    message buffer (about a quarter cheaper at 640x480, see BENCHMARKS.md). ``intrinsics``
    (an ``Intrinsics`` or a ``CameraModel``: distorted raw cameras back-project along their
    undistorted rays) must match the depth size (use ``decimated``/``scaled`` first). Raises
    CodecError for mismatched inputs or an unsupported distortion model.
    """
    try:
        planes = backproject_planes(depth_m, intrinsics)
    except ValueError as error:
        raise CodecError(str(error)) from None
    shape = planes[2].shape + (3,)
    colours, normal_vectors = _extras(rgb, normals, shape)
    fields, point_step = cloud_fields(colours is not None, normal_vectors is not None)
    data = _pack_points(list(planes), colours, normal_vectors, point_step)
    return _cloud_message(header, shape[0], shape[1], fields, point_step, data)


def pointcloud_to_xyz(msg):
    """
    Read the x, y, z fields of any PointCloud2 as a (height, width, 3) float32 array.

    Fields are located by name and offset (FLOAT32 or FLOAT64, read as float32; any padding
    or order); ``is_bigendian``, ``point_step`` and ``row_step`` are honoured; NaN points are
    kept.
    Raises CodecError when a field is missing or the sizes do not fit the data.
    """
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    offsets = {}
    for field in msg.fields:
        if field.name in ('x', 'y', 'z') and field.name not in offsets:
            if field.datatype not in _FLOAT_SIZES:
                raise CodecError(f'point cloud field {field.name!r} has datatype '
                                 f'{field.datatype}; expected FLOAT32 (7) or FLOAT64 (8)')
            offsets[field.name] = (int(field.offset), field.datatype)
    missing = [name for name in ('x', 'y', 'z') if name not in offsets]
    if missing:
        raise CodecError(f'point cloud has no {"/".join(missing)} field (fields: '
                         f'{[field.name for field in msg.fields]})')
    if height * width == 0:
        return np.empty((height, width, 3), dtype=np.float32)
    for name, (offset, datatype) in offsets.items():
        if offset < 0 or offset + _FLOAT_SIZES[datatype] > point_step:
            raise CodecError(f'point cloud field {name!r} at offset {offset} does not fit in '
                             f'point_step {point_step}')
    if row_step < width * point_step:
        raise CodecError(f'point cloud row_step {row_step} is smaller than width {width} x '
                         f'point_step {point_step}')
    if len(msg.data) < height * row_step:
        raise CodecError(f'point cloud data has {len(msg.data)} bytes, fewer than height '
                         f'{height} x row_step {row_step} = {height * row_step}')
    buffer = np.frombuffer(msg.data, dtype=np.uint8, count=height * row_step)
    order = '>' if msg.is_bigendian else '<'
    xyz = np.empty((height, width, 3), dtype=np.float32)
    for index, name in enumerate(('x', 'y', 'z')):
        offset, datatype = offsets[name]
        coordinate = np.ndarray(shape=(height, width), dtype=order + _FLOAT_CODES[datatype],
                                buffer=buffer, offset=offset, strides=(row_step, point_step))
        with np.errstate(over='ignore'):
            # FLOAT64 values beyond float32's range become +-Inf, which consumers treat as
            # invalid like NaN.
            xyz[..., index] = coordinate
    return xyz


def pointcloud_to_arrays(msg):
    """
    Read the points, packed colours and normals of any PointCloud2, organized shape kept.

    Returns ``(xyz, rgb, normals)``: xyz (height, width, 3) float32 as `pointcloud_to_xyz`;
    rgb (height, width, 3) uint8 from the PCL packing of an ``rgb`` FLOAT32 or UINT32 field
    (``(r << 16) | (g << 8) | b``), else None; normals (height, width, 3) float32 from
    ``normal_x/normal_y/normal_z`` (FLOAT32 or FLOAT64), else None.
    Raises CodecError like `pointcloud_to_xyz` and for extra fields that do not fit a point.
    """
    xyz = pointcloud_to_xyz(msg)
    height, width = xyz.shape[:2]
    fields = {}
    for field in msg.fields:
        fields.setdefault(field.name, field)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    order = '>' if msg.is_bigendian else '<'
    buffer = (np.frombuffer(msg.data, dtype=np.uint8, count=height * row_step)
              if height * width else None)

    def plane(field, code, size):
        offset = int(field.offset)
        if offset < 0 or offset + size > point_step:
            raise CodecError(f'point cloud field {field.name!r} at offset {offset} does not fit '
                             f'in point_step {point_step}')
        if buffer is None:
            return np.empty((height, width), dtype=order + code)
        return np.ndarray(shape=(height, width), dtype=order + code, buffer=buffer,
                          offset=offset, strides=(row_step, point_step))
    rgb = None
    colour = fields.get('rgb')
    if colour is not None and colour.datatype in (PointField.FLOAT32, PointField.UINT32):
        packed = plane(colour, 'u4', 4)
        rgb = np.stack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF],
                       axis=-1).astype(np.uint8)
    normals = None
    names = ('normal_x', 'normal_y', 'normal_z')
    if all(name in fields and fields[name].datatype in _FLOAT_SIZES for name in names):
        normals = np.stack([plane(fields[name], _FLOAT_CODES[fields[name].datatype],
                                  _FLOAT_SIZES[fields[name].datatype]) for name in names],
                           axis=-1).astype(np.float32)
    return xyz, rgb, normals


def _pack_points(planes, colours, normal_vectors, point_step):
    """Interleave float32 ``planes`` (xyz, 3 (H, W) or one (H, W, 3)), rgb and normals."""
    height, width = planes[0].shape[:2]
    if len(planes) == 1 and colours is None and normal_vectors is None:
        return bytes_array(planes[0])
    data = zeroed_bytes(height * width * point_step)
    if not data:
        return data
    if colours is not None:
        # Little-endian uint32 (r << 16) | (g << 8) | b is the byte sequence b, g, r, 0.
        packed = cv2.cvtColor(np.ascontiguousarray(colours), cv2.COLOR_RGB2BGRA)
        packed.view('<u4')[...] &= np.uint32(0x00FFFFFF)
        planes.append(packed.view(np.float32))
    if normal_vectors is not None:
        planes.append(np.ascontiguousarray(normal_vectors, dtype=np.float32))
    floats = np.frombuffer(data, dtype=np.float32).reshape(height, width, point_step // 4)
    merged = cv2.merge(planes, floats)
    if merged.__array_interface__['data'][0] != floats.__array_interface__['data'][0]:
        floats[...] = merged
    return data


def _extras(rgb, normals, shape):
    """Return the validated optional colours and normals for points of ``shape``."""
    colours = _optional_like(rgb, shape, 'rgb')
    if colours is not None and colours.dtype != np.uint8:
        raise CodecError(f'rgb must be uint8, got {colours.dtype}')
    return colours, _optional_like(normals, shape, 'normals')


def _optional_like(values, shape, name):
    if values is None:
        return None
    array = np.asarray(values)
    if array.ndim == 2 and len(shape) == 3 and shape[0] == 1:
        array = array[np.newaxis]
    if array.shape != shape:
        raise CodecError(f'{name} must have the shape of xyz {shape}, got {np.shape(values)}')
    return array
