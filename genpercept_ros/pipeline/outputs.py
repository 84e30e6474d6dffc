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

"""The construction of each output message of one frame (topic names: :mod:`.topics`)."""

import dataclasses

import cv2
from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from diagnostic_msgs.msg import KeyValue
import numpy as np
from std_msgs.msg import Float64MultiArray
from std_msgs.msg import Header
from std_msgs.msg import MultiArrayDimension

from .filters import filter_depth
from .filters import normals_agreement
from .filters import voxel_points
from .ground import floor_and_obstacles
from .topics import CLOUD_TOPICS
from .topics import DEPTH_COLORED_TOPIC
from .topics import DEPTH_CONFIDENCE_TOPIC
from .topics import DEPTH_INFO_TOPIC
from .topics import DEPTH_TOPIC
from .topics import FLOOR_TOPICS
from .topics import GROUND_MASK_TOPIC
from .topics import METRIC_TOPICS
from .topics import NORMAL_TOPICS
from .topics import NORMALS_COLORED_TOPIC
from .topics import NORMALS_TOPIC
from .topics import output_topics
from .topics import POINTS_OBSTACLES_TOPIC
from .topics import POINTS_TOPIC
from .topics import POINTS_VOXEL_TOPIC
from .topics import relative_topic
from .topics import SCALE_LAYOUT_LABEL
from .topics import SCALE_STAMPED_TOPIC
from .topics import SCALE_TOPIC
from ..geometry.backproject import backproject
from ..geometry.backproject import decimate
from ..geometry.camera_model import DistortionModelError
from ..geometry.colorize import colorize_depth
from ..geometry.colorize import normals_to_rgb
from ..geometry.confidence import depth_confidence
from ..messages.camera_info import camera_model_to_camera_info
from ..messages.camera_info import resolve_camera_model
from ..messages.errors import CodecError
from ..messages.image import array_to_image
from ..messages.pointcloud import build_pointcloud
from ..messages.pointcloud import depth_to_pointcloud


def topics_needing(wanted, depth_kind, has_normals, settings):
    """Return the predictor tasks (subset of 'depth', 'normal') that ``wanted`` topics need."""
    wanted = set(wanted)
    tasks = ()
    if depth_kind is not None and wanted & set(output_topics(depth_kind, False)):
        tasks += ('depth',)
    if has_normals and (wanted & set(NORMAL_TOPICS) or (
            'depth' in tasks and _metric_needs_normals(wanted, settings))):
        tasks += ('normal',)
    return tasks


def _metric_needs_normals(wanted, settings):
    """Return whether the metric outputs ``wanted`` use the predicted normals."""
    if settings.scale_mode == 'ground' or wanted & {DEPTH_CONFIDENCE_TOPIC, *FLOOR_TOPICS}:
        return True
    if settings.min_confidence > 0 and wanted & set(CLOUD_TOPICS):
        return True
    if settings.cloud_normals and wanted & {POINTS_TOPIC, POINTS_OBSTACLES_TOPIC}:
        return True
    # A floor up vector that may have to be estimated from the normals (the scale report
    # carries it even when no floor topic is wanted this frame).
    estimated = settings.ground_orientation == 'normals' or (
        settings.ground_orientation == 'auto' and settings.camera_pitch_deg == 0.0
        and settings.camera_roll_deg == 0.0)
    return settings.camera_height_m > 0 and settings.scale_mode != 'range' and estimated


def scale_message(report):
    """Return the Float64MultiArray ``[scale, shift, inlier_ratio, residual]`` of a report."""
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=SCALE_LAYOUT_LABEL, size=4, stride=4)]
    msg.data = report.as_list()
    return msg


def scale_stamped_message(report, header):
    """
    Return the ``depth/scale`` DiagnosticArray of a report, with the frame's ``header``.

    One DiagnosticStatus named ``scale``: level OK, or WARN when the scale is held or a fallback;
    message = the report's status; one KeyValue per report field: numbers (``scale``,
    ``shift``, ``inlier_ratio``, ``residual``) as ``repr`` text, which ``float()`` reads back
    exactly (``nan`` when unknown); vectors (``up``: the floor's unit up vector in the optical
    frame) as space-separated numbers, ``''`` when unknown; strings (``mode``, ``source``,
    ``space``, ``up_source``) as given.
    """
    status = DiagnosticStatus(name='scale', hardware_id='genpercept', message=report.status)
    status.level = DiagnosticStatus.WARN if report.source in ('held', 'fallback') \
        else DiagnosticStatus.OK
    for field in dataclasses.fields(report):
        status.values.append(KeyValue(key=field.name,
                                      value=_value_text(getattr(report, field.name))))
    return DiagnosticArray(header=header, status=[status])


def _value_text(value):
    """Return a report value as text: exact numbers, space-separated vectors, '' for None."""
    if value is None:
        return ''
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return 'true' if value else 'false'
    if isinstance(value, (int, float, np.integer, np.floating)):
        return repr(float(value))
    return ' '.join(repr(float(item)) for item in np.ravel(value))


def build_messages(frame, result, wanted, settings, scale_state, relative, depth_kind, normals,
                   up_lookup=None):
    """
    Fill ``result.outputs`` with the ``wanted`` messages of one frame.

    ``relative`` (HxW float32) and ``normals`` (HxWx3 float32, optical frame) are the
    prediction at the output resolution, or None when not predicted; ``up_lookup`` the TF
    lookup for the floor orientation (see :class:`~.frames.FramePipeline`) or None.
    """
    wanted = set(wanted)
    outputs = result.outputs
    header = Header(stamp=frame.header.stamp, frame_id=settings.frame_id or frame.header.frame_id)
    grid = relative if relative is not None else normals
    if grid is None:
        return
    height, width = grid.shape[:2]

    if relative is not None and relative_topic(depth_kind) in wanted:
        outputs[relative_topic(depth_kind)] = array_to_image(
            np.asarray(relative, dtype=np.float32), '32FC1', header)
    if normals is not None:
        if NORMALS_TOPIC in wanted:
            outputs[NORMALS_TOPIC] = array_to_image(
                np.asarray(normals, dtype=np.float32), '32FC3', header)
        if NORMALS_COLORED_TOPIC in wanted:
            outputs[NORMALS_COLORED_TOPIC] = array_to_image(normals_to_rgb(normals), 'rgb8',
                                                            header)
    needs_metric = bool(wanted & set(METRIC_TOPICS))
    if relative is None or not needs_metric:
        return

    needs_camera = (bool(wanted & {DEPTH_INFO_TOPIC, DEPTH_CONFIDENCE_TOPIC, *CLOUD_TOPICS,
                                   *FLOOR_TOPICS})
                    or settings.scale_mode in ('reference', 'ground')
                    or settings.depth_normals_check)
    camera = intrinsics = None
    if needs_camera:
        # ``camera`` describes the output grid (published as depth/camera_info);
        # ``intrinsics`` is the same model when its rays can be computed, else None.
        camera = _output_camera(frame, width, height, settings, result.problems)
        intrinsics = _ray_camera(camera, result.problems)

    depth_m, report = scale_state.metric_depth(relative, depth_kind, frame.header, intrinsics,
                                               settings, result.problems, normals, up_lookup)
    result.scale = report
    depth_m = filter_depth(depth_m, relative, depth_kind, settings)

    if DEPTH_TOPIC in wanted:
        outputs[DEPTH_TOPIC] = array_to_image(depth_m, '32FC1', header)
    if DEPTH_INFO_TOPIC in wanted and camera is not None:
        outputs[DEPTH_INFO_TOPIC] = camera_model_to_camera_info(camera, header)
    if DEPTH_COLORED_TOPIC in wanted:
        vmin, vmax = _colour_range(depth_m, report, settings)
        outputs[DEPTH_COLORED_TOPIC] = array_to_image(colorize_depth(depth_m, vmin, vmax),
                                                      'rgb8', header)
    if SCALE_STAMPED_TOPIC in wanted:
        outputs[SCALE_STAMPED_TOPIC] = scale_stamped_message(report, header)
    if SCALE_TOPIC in wanted:
        outputs[SCALE_TOPIC] = scale_message(report)
    if intrinsics is None:
        return
    if settings.depth_normals_check and normals is not None:
        result.normals_agreement_deg = normals_agreement(depth_m, intrinsics, normals)
    confidence = None
    if DEPTH_CONFIDENCE_TOPIC in wanted or (settings.min_confidence > 0
                                            and wanted & set(CLOUD_TOPICS)):
        confidence = depth_confidence(depth_m, intrinsics, normals, relative, depth_kind)
        if DEPTH_CONFIDENCE_TOPIC in wanted:
            outputs[DEPTH_CONFIDENCE_TOPIC] = array_to_image(confidence, '32FC1', header)
    obstacle = None
    floor_configured = settings.scale_mode == 'ground' or (
        settings.camera_height_m > 0 and settings.scale_mode != 'range')
    # Asked for explicitly (a subscriber) without a floor configured: say why nothing comes.
    if wanted & set(FLOOR_TOPICS) and (floor_configured or frame.wanted is not None):
        floor, obstacle = _floor(report, depth_m, intrinsics, normals, settings, result.problems)
        if floor is not None and GROUND_MASK_TOPIC in wanted:
            outputs[GROUND_MASK_TOPIC] = array_to_image(
                np.where(floor, np.uint8(255), np.uint8(0)), 'mono8', header)
    if wanted & set(CLOUD_TOPICS):
        if confidence is not None and settings.min_confidence > 0:
            depth_m = np.where(confidence >= settings.min_confidence, depth_m,
                               np.float32(np.nan))
        _build_clouds(frame, outputs, wanted, settings, header, depth_m, intrinsics, normals,
                      obstacle)


def _floor(report, depth_m, intrinsics, normals, settings, problems):
    """Return ``(floor, obstacle)`` masks, or ``(None, None)`` with a problem saying why."""
    if settings.camera_height_m <= 0 or settings.scale_mode == 'range':
        problems.append(('ground', 'ground/mask and points_obstacles need the floor: set '
                         "camera_height_m with scale_mode 'ground' (or 'fixed'/'reference')"))
        return None, None
    if report.source == 'fallback':
        problems.append(('ground', 'metric scale fell back to the assumed range: no '
                         'ground/mask or points_obstacles for this frame'))
        return None, None
    if report.up is None:
        problems.append(('ground', f'floor orientation unknown ({report.up_source or "none"}): '
                         'no ground/mask or points_obstacles for this frame'))
        return None, None
    return floor_and_obstacles(depth_m, intrinsics, normals, report.up, settings)


def _output_camera(frame, width, height, settings, problems):
    """
    Return the CameraModel of the output grid, or None with a problem explaining why.

    The input image is raw or rectified per ``settings.input_rectified``; the model (K, D, R,
    P, binning and ROI folded in) is rescaled from the input image to the output grid.
    """
    if frame.camera_info is None:
        problems.append(('camera_info', 'no camera_info received yet: publishing depth '
                         'without depth/camera_info and point clouds'))
        return None
    image_height, image_width = frame.rgb.shape[:2]
    try:
        resolved = resolve_camera_model(frame.camera_info, image_width, image_height,
                                        settings.input_rectified)
    except CodecError as error:
        problems.append(('camera_info', f'{error}: publishing depth without '
                         'depth/camera_info and point clouds'))
        return None
    if resolved.rescaled and not np.isclose(resolved.scale_x, resolved.scale_y, rtol=1e-3):
        problems.append(('camera_info_size', (
            f'camera_info describes a {resolved.info_width}x{resolved.info_height} image but '
            f'the image is {image_width}x{image_height} (aspect ratio differs): intrinsics '
            'rescaled per axis')))
    return resolved.model.scaled(width, height)


# A calibration whose rays miss more pixels than this is reported (NaN points there).
MISSING_RAYS_WARNING = 0.05


def _ray_camera(camera, problems):
    """Return ``camera`` when its pixels' rays can be computed, else None with a problem."""
    if camera is None:
        return None
    try:
        camera.check_distortion()
    except DistortionModelError as error:
        problems.append(('camera_info', f'{error}: publishing depth and depth/camera_info '
                         'without point clouds'))
        return None
    try:
        missing = camera.missing_ray_fraction()
    except ValueError as error:
        problems.append(('camera_info', f'{error}: publishing depth and depth/camera_info '
                         'without point clouds'))
        return None
    if missing > MISSING_RAYS_WARNING:
        problems.append(('camera_info', (
            f'the calibration gives no ray for {100 * missing:.3g} % of the pixels (outside '
            "the distortion model's valid field: beyond 90 deg for a fisheye, or where a "
            'strong distortion folds back); those pixels have no points: check the calibration')))
    return camera


def _colour_range(depth_m, report, settings):
    """Return the colour range: [near_m, far_m] for assumed scales, else the 2-98 % span."""
    if report.source in ('assumed', 'fallback'):
        return settings.near_m, settings.far_m
    finite = depth_m[np.isfinite(depth_m)]
    if finite.size == 0:
        return settings.near_m, settings.far_m
    low, high = np.percentile(finite, (2.0, 98.0))
    return float(low), float(max(high, low + 1e-6))


def _build_clouds(frame, outputs, wanted, settings, header, depth_m, intrinsics, normals,
                  obstacle=None):
    """Build ``points``, ``points_voxel`` and (with an ``obstacle`` mask) ``points_obstacles``."""
    height, width = depth_m.shape
    factor = settings.cloud_decimation
    cloud_depth = decimate(depth_m, factor)
    cloud_intrinsics = intrinsics.decimated(factor)
    rgb = None
    if settings.cloud_color:
        rgb = frame.rgb
        if rgb.shape[:2] != (height, width):
            shrinking = rgb.shape[0] > height
            rgb = cv2.resize(rgb, (width, height),
                             interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        rgb = decimate(rgb, factor)
    cloud_normals = None
    if settings.cloud_normals and normals is not None:
        cloud_normals = decimate(normals, factor)
    if obstacle is not None and POINTS_OBSTACLES_TOPIC in wanted:
        obstacle_depth = np.where(decimate(obstacle, factor), cloud_depth, np.float32(np.nan))
        outputs[POINTS_OBSTACLES_TOPIC] = depth_to_pointcloud(
            header, obstacle_depth, cloud_intrinsics, rgb=rgb, normals=cloud_normals)
    voxels = POINTS_VOXEL_TOPIC in wanted and settings.voxel_size > 0
    if not voxels:
        if POINTS_TOPIC in wanted:
            # Same bytes as backproject + build_pointcloud, interleaved once into the message.
            outputs[POINTS_TOPIC] = depth_to_pointcloud(header, cloud_depth, cloud_intrinsics,
                                                        rgb=rgb, normals=cloud_normals)
        return
    xyz = backproject(cloud_depth, cloud_intrinsics)
    if POINTS_TOPIC in wanted:
        outputs[POINTS_TOPIC] = build_pointcloud(header, xyz, rgb=rgb, normals=cloud_normals)
    voxel_xyz, voxel_rgb = voxel_points(xyz, rgb, settings.voxel_size)
    outputs[POINTS_VOXEL_TOPIC] = build_pointcloud(
        header, voxel_xyz[None], rgb=None if voxel_rgb is None else voxel_rgb[None])
