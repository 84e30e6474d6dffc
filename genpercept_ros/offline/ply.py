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
PLY export of a point cloud with colours and normals.

open3d writes the file when it imports; without it (open3d needs ``libusb-1.0`` on Debian) an
equivalent binary little-endian PLY is written with numpy, so export never depends on a system
library.
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


def _write_with_numpy(path, points, colours, normals):
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


def _open3d():
    try:
        import open3d
    except (ImportError, OSError):
        return None
    return open3d


def write_ply(path, xyz, rgb=None, normals=None, use_open3d=True):
    """
    Write the finite points of ``xyz`` (with optional uint8 colours and normals) as binary PLY.

    Returns the number of points written.
    """
    path = Path(path)
    points, colours, unit = finite_points(xyz, rgb, normals)
    o3d = _open3d() if use_open3d else None
    if o3d is None:
        _write_with_numpy(path, points, colours, unit)
        return len(points)
    cloud = o3d.geometry.PointCloud()
    cloud.points = o3d.utility.Vector3dVector(points.astype(np.float64))
    if colours is not None:
        cloud.colors = o3d.utility.Vector3dVector(colours.astype(np.float64) / 255.0)
    if unit is not None:
        cloud.normals = o3d.utility.Vector3dVector(unit.astype(np.float64))
    if not o3d.io.write_point_cloud(str(path), cloud, write_ascii=False):
        raise OSError(f'open3d could not write {path}')
    return len(points)
