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
Analytic scenes with known metric depth and normals, for tests and the demo.

Everything is ray cast in the camera's optical frame (x right, y down, z forward) with rays
``(u - cx) / fx, (v - cy) / fy, 1``: a ray's parameter at a hit is the hit's z, i.e. exactly
the depth a depth camera (and depth_image_proc) reports.
"""

from dataclasses import dataclass
from dataclasses import replace
import math

import numpy as np

# Room surfaces, then boxes from BOX_LABEL_START on; NO_HIT marks rays that hit nothing.
NO_HIT = -1
FLOOR, CEILING, LEFT_WALL, RIGHT_WALL, BACK_WALL = 0, 1, 2, 3, 4
PLANE = 0
BOX_LABEL_START = 5

# Two boxes standing on the floor of the default room (camera 1.2 m above the floor), as
# (min_xyz, max_xyz) corners in the optical frame.
DEFAULT_BOXES = (
    ((-1.5, 0.5, 2.4), (-0.7, 1.2, 3.2)),
    ((0.4, 0.1, 3.4), (1.3, 1.2, 4.2)),
)

_SURFACE_COLOURS = np.array([
    [150, 120, 90],    # floor: wood
    [235, 235, 230],   # ceiling
    [200, 170, 140],   # left wall
    [140, 170, 200],   # right wall
    [190, 200, 170],   # back wall
    [200, 80, 60],     # box 1
    [70, 120, 190],    # box 2
    [220, 190, 60],    # further boxes
], dtype=np.float64)


@dataclass(frozen=True)
class SyntheticScene:
    """
    A rendered analytic scene.

    ``depth`` (H, W) float32 metres, NaN where a ray hits nothing; ``normals`` (H, W, 3) float32
    unit vectors in the optical frame facing the camera, NaN where no hit; ``rgb`` (H, W, 3)
    uint8 Lambert-shaded, textured rendering; ``labels`` (H, W) int32 surface ids (see the
    module constants); ``intrinsics`` the pinhole model used.
    """

    depth: np.ndarray
    normals: np.ndarray
    rgb: np.ndarray
    labels: np.ndarray
    intrinsics: object


def intrinsics_from_fov(width, height, fov_deg=70.0):
    """Return square-pixel intrinsics with horizontal field of view ``fov_deg``, centred."""
    from genpercept_ros.geometry.intrinsics import Intrinsics
    if not 0.0 < float(fov_deg) < 180.0:
        raise ValueError(f'`fov_deg` must lie in (0, 180), got {fov_deg}.')
    focal = 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)
    return Intrinsics(fx=focal, fy=focal, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0,
                      width=int(width), height=int(height))


def camera_rays(intrinsics):
    """Return (H, W, 3) float64 ray directions with z = 1 for every pixel centre."""
    width, height = int(intrinsics.width), int(intrinsics.height)
    if width <= 0 or height <= 0:
        raise ValueError(f'intrinsics must have a positive image size, got {width}x{height}.')
    u = (np.arange(width, dtype=np.float64) - intrinsics.cx) / intrinsics.fx
    v = (np.arange(height, dtype=np.float64) - intrinsics.cy) / intrinsics.fy
    rays = np.empty((height, width, 3), dtype=np.float64)
    rays[..., 0] = u[None, :]
    rays[..., 1] = v[:, None]
    rays[..., 2] = 1.0
    return rays


def box_room(width=64, height=48, intrinsics=None, fov_deg=80.0, room_size=(4.0, 2.6, 6.0),
             camera_height=1.2, boxes=DEFAULT_BOXES, texture_period=0.5, orientation=None):
    """
    Render the inside of a box-shaped room with boxes standing in it.

    The room spans ``x in [-W/2, W/2]`` (``room_size = (W, H, D)`` metres), floor at
    ``y = camera_height``, ceiling ``H`` above it, back wall at ``z = D``; the camera sits at the
    origin looking along +z. ``boxes`` are axis-aligned ``(min_xyz, max_xyz)`` corners in the
    room frame, which is the optical frame of a level camera. ``intrinsics`` defaults to
    :func:`intrinsics_from_fov`. ``orientation`` (3x3, optional) rotates the camera: its columns
    are the camera's optical x, y, z axes expressed in the room frame; depth and normals are
    returned in the rotated camera's optical frame (depth stays the camera's z).
    """
    intrinsics = _resolve_intrinsics(width, height, intrinsics, fov_deg)
    room_w, room_h, room_d = (float(value) for value in room_size)
    if min(room_w, room_h, room_d) <= 0:
        raise ValueError(f'`room_size` must be positive, got {room_size}.')
    if not 0 < camera_height < room_h:
        raise ValueError(f'`camera_height` must lie in (0, {room_h}), got {camera_height}.')
    rotation = np.eye(3) if orientation is None else np.asarray(orientation, dtype=np.float64)
    if rotation.shape != (3, 3) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6):
        raise ValueError(f'`orientation` must be a 3x3 rotation matrix, got {orientation!r}.')
    # Room-frame direction of each ray; its parameter at a hit is still the camera's z.
    rays = camera_rays(intrinsics) @ rotation.T
    dx, dy, dz = rays[..., 0], rays[..., 1], rays[..., 2]
    with np.errstate(divide='ignore', invalid='ignore'):
        # The camera is inside the room, so each ray leaves through one plane per axis.
        t_x = np.where(dx > 0, (room_w / 2) / dx, np.where(dx < 0, (-room_w / 2) / dx, np.inf))
        t_y = np.where(dy > 0, camera_height / dy,
                       np.where(dy < 0, (camera_height - room_h) / dy, np.inf))
        t_z = np.where(dz > 0, room_d / dz, np.inf)
    candidates = np.stack([t_x, t_y, t_z])
    axis = np.argmin(candidates, axis=0)
    depth = np.take_along_axis(candidates, axis[None], axis=0)[0]
    labels = np.select(
        [(axis == 0) & (dx < 0), axis == 0, (axis == 1) & (dy > 0), axis == 1],
        [LEFT_WALL, RIGHT_WALL, FLOOR, CEILING], default=BACK_WALL).astype(np.int32)
    normals = np.zeros(rays.shape, dtype=np.float64)
    hit_dir = np.take_along_axis(rays, axis[..., None], axis=-1)[..., 0]
    np.put_along_axis(normals, axis[..., None], -np.sign(hit_dir)[..., None], axis=-1)

    for index, (box_min, box_max) in enumerate(boxes):
        t_box, box_axis = _ray_box(rays, np.asarray(box_min, float), np.asarray(box_max, float))
        closer = t_box < depth
        depth = np.where(closer, t_box, depth)
        labels[closer] = BOX_LABEL_START + index
        box_normals = np.zeros(rays.shape, dtype=np.float64)
        box_dir = np.take_along_axis(rays, box_axis[..., None], axis=-1)[..., 0]
        np.put_along_axis(box_normals, box_axis[..., None], -np.sign(box_dir)[..., None],
                          axis=-1)
        normals[closer] = box_normals[closer]
    scene = _finish(rays, depth, normals, labels, intrinsics, texture_period)
    if orientation is None:
        return scene
    return replace(scene, normals=(scene.normals @ rotation.astype(np.float32)).astype(
        np.float32))


def plane_scene(width=64, height=48, intrinsics=None, fov_deg=70.0, normal=(0.3, -0.4, -1.0),
                point=(0.0, 0.0, 2.0), texture_period=0.25):
    """
    Render a single infinite plane through ``point`` with normal ``normal`` (optical frame).

    The returned normals face the camera whatever the sign of ``normal``; rays parallel to the
    plane or hitting it behind the camera give NaN depth.
    """
    intrinsics = _resolve_intrinsics(width, height, intrinsics, fov_deg)
    plane_normal = np.asarray(normal, dtype=np.float64)
    length = np.linalg.norm(plane_normal)
    if plane_normal.shape != (3,) or not np.isfinite(length) or length == 0:
        raise ValueError(f'`normal` must be a finite non-zero 3-vector, got {normal}.')
    plane_normal = plane_normal / length
    offset = float(np.dot(plane_normal, np.asarray(point, dtype=np.float64)))
    if offset == 0:
        raise ValueError('the plane passes through the camera centre; it would be seen edge-on.')
    if offset > 0:
        plane_normal, offset = -plane_normal, -offset
    rays = camera_rays(intrinsics)
    with np.errstate(divide='ignore', invalid='ignore'):
        depth = offset / (rays @ plane_normal)
    hit = np.isfinite(depth) & (depth > 0)
    depth = np.where(hit, depth, np.inf)
    labels = np.where(hit, PLANE, NO_HIT).astype(np.int32)
    normals = np.broadcast_to(plane_normal, rays.shape).copy()
    return _finish(rays, depth, normals, labels, intrinsics, texture_period)


def _resolve_intrinsics(width, height, intrinsics, fov_deg):
    if intrinsics is None:
        return intrinsics_from_fov(width, height, fov_deg)
    if (int(intrinsics.width), int(intrinsics.height)) != (int(width), int(height)):
        raise ValueError(f'`intrinsics` describe {intrinsics.width}x{intrinsics.height} but '
                         f'{width}x{height} was requested.')
    return intrinsics


def _ray_box(rays, box_min, box_max):
    """Slab test: distance along each ray to an axis-aligned box and the axis of the hit face."""
    if np.any(box_max <= box_min):
        raise ValueError(f'box corners must satisfy min < max, got {box_min} and {box_max}.')
    with np.errstate(divide='ignore', invalid='ignore'):
        t_a = box_min / rays
        t_b = box_max / rays
    t_enter = np.fmin(t_a, t_b)
    t_exit = np.fmax(t_a, t_b)
    # A ray parallel to a slab is inside it for all t (t = -inf..inf) or never (nan -> miss).
    parallel = rays == 0
    inside_slab = (box_min < 0) & (box_max > 0)
    t_enter = np.where(parallel, np.where(inside_slab, -np.inf, np.inf), t_enter)
    t_exit = np.where(parallel, np.where(inside_slab, np.inf, -np.inf), t_exit)
    enter_axis = np.argmax(t_enter, axis=-1)
    near = np.max(t_enter, axis=-1)
    far = np.min(t_exit, axis=-1)
    hit = (near <= far) & (near > 0)
    return np.where(hit, near, np.inf), enter_axis


def _finish(rays, depth, normals, labels, intrinsics, texture_period):
    hit = np.isfinite(depth)
    points = rays * np.where(hit, depth, 0.0)[..., None]
    labels = np.where(hit, labels, NO_HIT).astype(np.int32)
    rgb = _shade(points, normals, labels, texture_period)
    depth_out = np.where(hit, depth, np.nan).astype(np.float32)
    normals_out = np.where(hit[..., None], normals, np.nan).astype(np.float32)
    return SyntheticScene(depth_out, normals_out, rgb, labels, intrinsics)


def _shade(points, normals, labels, texture_period):
    """Lambert shading from a light above and behind the camera, times a checker texture."""
    colour_index = np.clip(labels, 0, len(_SURFACE_COLOURS) - 1)
    base = _SURFACE_COLOURS[colour_index]
    light = np.array([0.5, -1.0, -0.5])
    to_light = light - points
    to_light /= np.maximum(np.linalg.norm(to_light, axis=-1, keepdims=True), 1e-9)
    lambert = np.clip(np.sum(normals * to_light, axis=-1), 0.0, 1.0)
    period = max(float(texture_period), 1e-6)
    cells = np.floor((points + 1e-6) / period).astype(np.int64).sum(axis=-1)
    checker = np.where(cells % 2 == 0, 1.0, 0.8)
    shade = (0.3 + 0.7 * lambert) * checker
    rgb = base * shade[..., None]
    rgb[labels == NO_HIT] = 0.0
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
