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
The floor of one frame: where it is (up vector in the optical frame) and which pixels are on it.

The up vector comes, per ``ground_orientation``, from TF (a callable the node provides, see
:class:`~genpercept_ros.pipeline.frames.FramePipeline`), from ``camera_pitch_deg`` /
``camera_roll_deg``, or is estimated from the predicted normals. No rclpy here: the TF lookup is
injected.
"""

import numpy as np

from ..geometry.ground import estimate_up
from ..geometry.ground import floor_mask
from ..geometry.ground import height_above_floor
from ..geometry.ground import up_from_pitch_roll
from ..geometry.ground import up_from_rotation

# Points closer to the floor plane than this fraction of the camera height count as floor (a
# 5 % depth error moves a floor point by 5 % of the camera height, see fit_scale_shift's default
# inlier threshold).
FLOOR_HEIGHT_FRACTION = 0.05

SOURCE_TF = 'tf'
SOURCE_PARAMETERS = 'parameters'
SOURCE_NORMALS = 'normals'


def orientation_up(settings, header, lookup, problems):
    """
    Return ``(up, source)`` from TF or the parameters, or ``(None, 'normals')`` to estimate it.

    ``lookup`` is the node's TF lookup or None (no tf2_ros). A TF failure in ``auto`` mode is
    reported in ``problems`` as ``('tf', message)`` and the next source is used; in ``tf`` mode
    it returns ``(None, reason)``.
    """
    mode = settings.ground_orientation
    if mode in ('auto', 'tf'):
        if lookup is not None:
            try:
                rotation = lookup(header.frame_id, settings.base_frame, header.stamp)
                return up_from_rotation(rotation), SOURCE_TF
            except (LookupError, ValueError) as error:
                message = (f'no usable transform from base_frame {settings.base_frame!r} to '
                           f'{header.frame_id!r}: {error}')
                if mode == 'tf':
                    return None, message
                problems.append(('tf', f'{message}; using the next floor orientation source'))
        elif mode == 'tf':
            return None, 'ground_orientation is tf but tf2_ros is not available'
    if mode == 'parameters' or (mode == 'auto' and (settings.camera_pitch_deg != 0.0
                                                    or settings.camera_roll_deg != 0.0)):
        return up_from_pitch_roll(settings.camera_pitch_deg, settings.camera_roll_deg), \
            SOURCE_PARAMETERS
    return None, SOURCE_NORMALS


def estimated_up(normals, settings, up_tracker, stamp_s):
    """
    Return ``(up or None, source or reason)`` estimated from ``normals``, smoothed and held.

    ``up_tracker`` is the camera's :class:`~genpercept_ros.geometry.scale_tracking.UpTracker`.
    """
    if normals is None:
        return None, 'no normals to estimate the floor orientation from'
    estimate, support = estimate_up(normals, tolerance_deg=settings.ground_normal_tolerance_deg,
                                    min_points=settings.fit_min_points)
    up, age = up_tracker.update(stamp_s, estimate)
    if up is None:
        return None, support
    if estimate is None:
        return up, f'{SOURCE_NORMALS} (held {age:.2f} s: {support})'
    return up, SOURCE_NORMALS


def floor_and_obstacles(depth_m, intrinsics, normals, up, settings):
    """
    Return ``(floor (H, W) bool, obstacle (H, W) bool)`` of a metric depth image.

    Floor: valid depth within ``FLOOR_HEIGHT_FRACTION * camera_height_m`` of the floor plane and,
    with normals, a normal within ``ground_normal_tolerance_deg`` of up. Obstacle: valid depth,
    not floor, and higher above the floor plane than that margin (points below the floor are
    neither: they are depth errors or holes, never obstacles).
    """
    rays = np.asarray(intrinsics.rays(), dtype=np.float32)
    with np.errstate(invalid='ignore'):
        xyz = np.asarray(depth_m, dtype=np.float32)[..., None] * rays
        height = height_above_floor(xyz, up, settings.camera_height_m)
        margin = np.float32(FLOOR_HEIGHT_FRACTION * settings.camera_height_m)
        valid = np.isfinite(height)
        floor = valid & (np.abs(height) <= margin)
        if normals is not None:
            floor &= floor_mask(normals, up, settings.ground_normal_tolerance_deg)
        obstacle = valid & ~floor & (height > margin)
    return floor, obstacle
