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
PLY export of a point cloud with colours and normals: one writer, numpy only.

The file is binary little-endian PLY 1.0 (the format of Turk's PLY, as read by plyfile, Open3D,
MeshLab, CloudCompare and PCL) with one ``vertex`` element: ``float x y z`` (metres, in the
cloud's frame), optional ``float nx ny nz`` (unit normals) and ``uchar red green blue``. Every
property is float32 or uint8 whatever the installed libraries.

Hand-written because a PLY vertex list is a numpy structured array behind an ASCII header (about
twenty lines), while the libraries that write PLY are heavy for it: Open3D (100-400 MB wheels,
no ``open3d-cpu`` build for aarch64, needs libusb-1.0 on minimal Debian, widened every field to
float64 here) or plyfile (GPL-3.0, a runtime dependency for the same twenty lines). The tests
read the files back with plyfile, an independent reader.
"""

from pathlib import Path

import numpy as np


def finite_points(xyz, rgb=None, normals=None):
    """
    Flatten an organized cloud and keep the points whose coordinates are all finite.

    ``xyz`` is (..., 3); ``rgb`` (..., 3) uint8 and ``normals`` (..., 3) share its leading shape.
    Normals that are not finite where the point is valid become zero vectors (PLY has no NaN
    convention for them). Returns ``(xyz, rgb, normals)`` as (N, 3) arrays (or None).
    """
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    keep = np.isfinite(xyz).all(axis=1)
    points = xyz[keep]
    colours = None
    if rgb is not None:
        colours = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)[keep]
    unit = None
    if normals is not None:
        unit = np.asarray(normals, dtype=np.float32).reshape(-1, 3)[keep]
        unit = np.where(np.isfinite(unit).all(axis=1, keepdims=True), unit, 0.0)
        unit = unit.astype(np.float32)
    return points, colours, unit


def _write_vertices(path, points, colours, normals):
    fields = [('x', '<f4'), ('y', '<f4'), ('z', '<f4')]
    header = ['ply', 'format binary_little_endian 1.0', f'element vertex {len(points)}',
              'property float x', 'property float y', 'property float z']
    if normals is not None:
        fields += [('nx', '<f4'), ('ny', '<f4'), ('nz', '<f4')]
        header += ['property float nx', 'property float ny', 'property float nz']
    if colours is not None:
        fields += [('red', 'u1'), ('green', 'u1'), ('blue', 'u1')]
        header += ['property uchar red', 'property uchar green', 'property uchar blue']
    header.append('end_header')
    records = np.empty(len(points), dtype=np.dtype(fields))
    records['x'], records['y'], records['z'] = points.T
    if normals is not None:
        records['nx'], records['ny'], records['nz'] = normals.T
    if colours is not None:
        records['red'], records['green'], records['blue'] = colours.T
    with open(path, 'wb') as stream:
        stream.write(('\n'.join(header) + '\n').encode('ascii'))
        stream.write(records.tobytes())


def write_ply(path, xyz, rgb=None, normals=None):
    """
    Write the finite points of ``xyz`` (with optional uint8 colours and normals) as binary PLY.

    ``xyz`` is (..., 3) (an organized (H, W, 3) cloud is flattened row-major); ``rgb`` (..., 3)
    uint8 and ``normals`` (..., 3) share its leading shape (see :func:`finite_points`). Points
    with a non-finite coordinate are left out. Raises OSError when ``path`` cannot be written.
    Returns the number of points written.
    """
    points, colours, unit = finite_points(xyz, rgb, normals)
    _write_vertices(Path(path), points, colours, unit)
    return len(points)
