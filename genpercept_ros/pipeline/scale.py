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
Per-camera metric scale: range/fixed mapping, or fits to a paired metric reference.

Reference mode pairs each frame with the buffered reference closest in time, projects it onto
the prediction's pixel grid and fits scale and shift in the space the variant is linear in;
ground mode fits them to the floor seen from ``camera_height_m``
(:func:`~genpercept_ros.geometry.ground.fit_ground_scale`). Either way every frame is fitted on
its own and :class:`~genpercept_ros.geometry.scale_tracking.MetricDepthTracker` smooths, holds
(re-fitting the last good metric depth to the new frame) or falls back to the range mapping.
"""

from dataclasses import dataclass
import math
import threading

from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2

from .ground import estimated_up
from .ground import orientation_up
from .ground import SOURCE_NORMALS
from ..geometry.ground import fit_ground_scale
from ..geometry.scale import affine_to_metric
from ..geometry.scale import fit_scale_shift
from ..geometry.scale import range_affine
from ..geometry.scale import ScaleShiftFit
from ..geometry.scale import space_for_kind
from ..geometry.scale_reference import reference_from_depth_image
from ..geometry.scale_reference import reference_from_points
from ..geometry.scale_tracking import MetricDepthTracker
from ..geometry.scale_tracking import ReferenceBuffer
from ..geometry.scale_tracking import SOURCE_FALLBACK
from ..geometry.scale_tracking import UpTracker
from ..messages.camera_info import resolve_camera_model
from ..messages.errors import CodecError
from ..messages.image import depth_image_to_meters
from ..messages.pointcloud import pointcloud_to_xyz

# References kept per camera for timestamp pairing (a few frames of a 30 Hz sensor).
_REFERENCE_CAPACITY = 8


@dataclass
class ScaleReport:
    """
    The metric scale used for one frame.

    ``source`` is 'assumed' (range mode), 'fixed', 'fitted', 'held' or 'fallback' (reference
    or ground mode without a usable fit: the range mapping is used); ``scale``/``shift`` act in
    ``space`` ('depth': d = s r + t, 'disparity': 1/d = s r + t); ``inlier_ratio``/``residual``
    are NaN unless a fit was made for this frame. ``up`` is the floor's unit up vector in the
    optical frame (float64 (3,)) when known, with ``up_source`` 'tf', 'parameters' or 'normals'.
    """

    mode: str
    source: str
    status: str
    space: str
    scale: float
    shift: float
    inlier_ratio: float = math.nan
    residual: float = math.nan
    up: object = None
    up_source: str = ''

    def as_list(self):
        """Return ``[scale, shift, inlier_ratio, residual]`` (the `scale` topic layout)."""
        return [float(self.scale), float(self.shift), float(self.inlier_ratio),
                float(self.residual)]


def stamp_seconds(stamp):
    """Return a builtin_interfaces/Time as float seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


class CameraScaleState:
    """Reference buffer and scale tracker of one camera (thread-safe)."""

    def __init__(self, settings):
        self._lock = threading.Lock()
        self._references = ReferenceBuffer(settings.reference_time_tolerance_s,
                                           _REFERENCE_CAPACITY)
        self._tracker = None
        self._up_tracker = None
        self._tracker_key = None
        self.last_report = None
        self.configure(settings)

    def configure(self, settings):
        """Apply new settings; the scale history survives unless its smoothing changed."""
        with self._lock:
            self._references.tolerance_s = float(settings.reference_time_tolerance_s)
            key = (settings.hold_last_fit_s, settings.scale_smoothing, settings.fit_min_points,
                   settings.fit_min_inlier_ratio, settings.scale_mode)
            if key != self._tracker_key:
                self._tracker = MetricDepthTracker(
                    max_hold_s=settings.hold_last_fit_s, smoothing=settings.scale_smoothing,
                    min_points=settings.fit_min_points,
                    min_inlier_ratio=settings.fit_min_inlier_ratio)
                self._up_tracker = UpTracker(max_hold_s=settings.hold_last_fit_s,
                                             smoothing=settings.scale_smoothing)
                self._tracker_key = key

    def add_reference(self, msg, camera_info=None):
        """Buffer a reference message (depth Image or PointCloud2) with its own camera_info."""
        if not isinstance(msg, (Image, PointCloud2)):
            raise TypeError(f'a metric reference is a depth Image or a PointCloud2, '
                            f'got {type(msg).__name__}')
        with self._lock:
            self._references.add(stamp_seconds(msg.header.stamp), (msg, camera_info))

    def metric_depth(self, relative, kind, header, intrinsics, settings, problems, normals=None,
                     up_lookup=None):
        """
        Return ``(depth_m, ScaleReport)`` for one relative map.

        ``header`` is the input image header (its stamp pairs the reference, its frame_id must
        match the reference's and is the target of the TF lookup); ``intrinsics`` the camera
        (``Intrinsics`` or ``CameraModel``) of ``relative``'s pixel grid, or None; ``normals``
        (H, W, 3) the predicted normals or None; ``up_lookup`` the node's TF lookup (see
        :func:`orientation_up`) or None. Reference, floor and TF problems are appended to
        ``problems`` as ``(kind, message)``.
        """
        mode = settings.scale_mode
        if mode == 'fixed':
            space = space_for_kind(kind)
            report = ScaleReport(mode, 'fixed', 'fixed scale', space, settings.depth_scale,
                                 settings.depth_shift)
        elif mode == 'range':
            space, scale, shift = range_affine(kind, settings.near_m, settings.far_m)
            report = ScaleReport(mode, 'assumed',
                                 f'assumed range [{settings.near_m}, {settings.far_m}] m',
                                 space, scale, shift)
        elif mode == 'ground':
            report = self._ground_scale(relative, kind, header, intrinsics, settings, problems,
                                        normals, up_lookup)
        else:
            report = self._reference_scale(relative, kind, header, intrinsics, settings,
                                           problems)
        if report.up is None and mode in ('fixed', 'reference') and settings.camera_height_m > 0:
            report.up, report.up_source = self.floor_up(header, settings, problems, normals,
                                                        up_lookup)
        self.last_report = report
        return affine_to_metric(relative, report.space, report.scale, report.shift), report

    def _reference_scale(self, relative, kind, header, intrinsics, settings, problems):
        space = space_for_kind(kind)
        stamp = stamp_seconds(header.stamp)
        fit = None
        with self._lock:
            match = self._references.match(stamp)
        if match is not None:
            (reference_msg, reference_info), _ = match
            reference = self._reference_on_grid(reference_msg, reference_info, header,
                                                intrinsics, problems)
            if reference is not None:
                fit = fit_scale_shift(relative, reference, None, space,
                                      min_points=settings.fit_min_points,
                                      min_inlier_ratio=settings.fit_min_inlier_ratio)
                if not fit.ok:
                    problems.append(('reference', f'scale fit on the metric reference '
                                     f'rejected: {fit.reason}'))
        return self._decide('reference', relative, kind, stamp, fit, settings)

    def floor_up(self, header, settings, problems, normals=None, up_lookup=None):
        """Return ``(up, source)`` of the floor for this frame, or ``(None, reason)``."""
        up, source = orientation_up(settings, header, up_lookup, problems)
        if up is None and source == SOURCE_NORMALS:
            with self._lock:
                up, source = estimated_up(normals, settings, self._up_tracker,
                                          stamp_seconds(header.stamp))
        return up, source

    def _ground_scale(self, relative, kind, header, intrinsics, settings, problems, normals,
                      up_lookup):
        space = space_for_kind(kind)
        stamp = stamp_seconds(header.stamp)
        up, source = self.floor_up(header, settings, problems, normals, up_lookup)
        if normals is None:
            reason = 'no normals predicted: the floor cannot be found'
        elif intrinsics is None:
            reason = 'no usable camera_info: the floor cannot be placed'
        elif up is None:
            reason = source
        else:
            reason = None
        if reason is None:
            fit = fit_ground_scale(relative, normals, intrinsics, settings.camera_height_m,
                                   space=space, up=up,
                                   tolerance_deg=settings.ground_normal_tolerance_deg,
                                   min_points=settings.fit_min_points,
                                   min_inlier_ratio=settings.fit_min_inlier_ratio)
        else:
            fit = ScaleShiftFit(math.nan, math.nan, 0.0, math.nan, 0, False, reason, space)
        if not fit.ok:
            problems.append(('ground', f'scale from the floor not fitted: {fit.reason}'))
        report = self._decide('ground', relative, kind, stamp, fit, settings)
        report.status = f'{report.status}; floor up from {source}' if up is not None \
            else report.status
        report.up = up
        report.up_source = source if up is not None else ''
        return report

    def _decide(self, mode, relative, kind, stamp, fit, settings):
        space = space_for_kind(kind)
        with self._lock:
            decision = self._tracker.update(stamp, relative, space, fit)
        inliers = math.nan if fit is None else float(fit.inlier_ratio)
        residual = math.nan if fit is None else float(fit.residual)
        if decision.source == SOURCE_FALLBACK:
            space, scale, shift = range_affine(kind, settings.near_m, settings.far_m)
            return ScaleReport(mode, SOURCE_FALLBACK, decision.status, space, scale,
                               shift, inliers, residual)
        return ScaleReport(mode, decision.source, decision.status, space,
                           decision.scale, decision.shift, inliers, residual)

    @staticmethod
    def _reference_on_grid(msg, reference_info, header, intrinsics, problems):
        if msg.header.frame_id and header.frame_id and msg.header.frame_id != header.frame_id:
            problems.append(('reference', (
                f'reference frame_id {msg.header.frame_id!r} differs from the image frame_id '
                f'{header.frame_id!r}; the reference must be in the camera optical frame: '
                'ignored')))
            return None
        if intrinsics is None:
            problems.append(('reference', 'no usable camera_info: cannot place the reference '
                             'on the image grid'))
            return None
        try:
            if isinstance(msg, PointCloud2):
                return reference_from_points(pointcloud_to_xyz(msg), intrinsics)
            depth = depth_image_to_meters(msg)
            height, width = depth.shape
            if reference_info is None:
                reference_camera = intrinsics.scaled(width, height)
            else:
                # The reference's own camera, raw or rectified by its D (``auto``), as
                # image_geometry would read it.
                reference_camera = resolve_camera_model(reference_info, width, height).model
            return reference_from_depth_image(depth, reference_camera, intrinsics)
        except (CodecError, ValueError) as error:
            problems.append(('reference', f'unusable metric reference: {error}'))
            return None
