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
the prediction's pixel grid, fits scale and shift in the space the variant is linear in, and
lets :class:`~genpercept_ros.geometry.scale_tracking.ScaleTracker` smooth, hold or fall back to
the range mapping.
"""

from dataclasses import dataclass
import math
import threading

from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2

from ..geometry.scale import affine_to_metric
from ..geometry.scale import fit_scale_shift
from ..geometry.scale import range_affine
from ..geometry.scale import space_for_kind
from ..geometry.scale_reference import reference_from_depth_image
from ..geometry.scale_reference import reference_from_points
from ..geometry.scale_tracking import ReferenceBuffer
from ..geometry.scale_tracking import ScaleSmoother
from ..geometry.scale_tracking import ScaleTracker
from ..geometry.scale_tracking import SOURCE_FALLBACK
from ..messages.camera_info import camera_info_to_intrinsics
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
    mode without a usable fit: the range mapping is used); ``scale``/``shift`` act in ``space``
    ('depth': d = s r + t, 'disparity': 1/d = s r + t); ``inlier_ratio``/``residual`` are NaN
    unless a fit was made for this frame.
    """

    mode: str
    source: str
    status: str
    space: str
    scale: float
    shift: float
    inlier_ratio: float = math.nan
    residual: float = math.nan

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
        self._tracker_key = None
        self.last_report = None
        self.configure(settings)

    def configure(self, settings):
        """Apply new settings; the scale history survives unless its smoothing changed."""
        with self._lock:
            self._references.tolerance_s = float(settings.reference_time_tolerance_s)
            key = (settings.hold_last_fit_s, settings.scale_smoothing)
            if key != self._tracker_key:
                smoother = ScaleSmoother(alpha=1.0 - settings.scale_smoothing)
                self._tracker = ScaleTracker(max_hold_s=settings.hold_last_fit_s,
                                             smoother=smoother)
                self._tracker_key = key

    def add_reference(self, msg, camera_info=None):
        """Buffer a reference message (depth Image or PointCloud2) with its own camera_info."""
        if not isinstance(msg, (Image, PointCloud2)):
            raise TypeError(f'a metric reference is a depth Image or a PointCloud2, '
                            f'got {type(msg).__name__}')
        with self._lock:
            self._references.add(stamp_seconds(msg.header.stamp), (msg, camera_info))

    def metric_depth(self, relative, kind, header, intrinsics, settings, problems):
        """
        Return ``(depth_m, ScaleReport)`` for one relative map.

        ``header`` is the input image header (its stamp pairs the reference, its frame_id must
        match the reference's); ``intrinsics`` those of ``relative``'s pixel grid or None.
        Reference problems are appended to ``problems`` as ``(kind, message)``.
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
        else:
            report = self._reference_scale(relative, kind, header, intrinsics, settings,
                                           problems)
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
        with self._lock:
            decision = self._tracker.update(stamp, fit)
        inliers = math.nan if fit is None else float(fit.inlier_ratio)
        residual = math.nan if fit is None else float(fit.residual)
        if decision.source == SOURCE_FALLBACK:
            space, scale, shift = range_affine(kind, settings.near_m, settings.far_m)
            return ScaleReport('reference', SOURCE_FALLBACK, decision.status, space, scale,
                               shift, inliers, residual)
        return ScaleReport('reference', decision.source, decision.status, space,
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
                reference_intrinsics = intrinsics.scaled(width, height)
            else:
                reference_intrinsics = camera_info_to_intrinsics(reference_info, width, height)
            return reference_from_depth_image(depth, reference_intrinsics, intrinsics)
        except (CodecError, ValueError) as error:
            problems.append(('reference', f'unusable metric reference: {error}'))
            return None
