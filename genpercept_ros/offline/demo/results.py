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

"""What the demo measures and saves: latency percentiles, depth accuracy, frame files."""

import json
import math

import numpy as np

NAMESPACE = '/demo_camera'
# Topics whose arrival marks a frame as processed (the slowest outputs to build), for a depth
# model; disparity models publish disparity_relative/image instead (complete_topics).
COMPLETE_TOPICS = ('depth_relative/image', 'depth/colored', 'normals/colored', 'points')


def complete_topics(depth_kind):
    """Return COMPLETE_TOPICS with the relative topic the depth model of ``depth_kind`` uses."""
    from genpercept_ros.pipeline.topics import relative_topic
    return (relative_topic(depth_kind),) + COMPLETE_TOPICS[1:]


def percentiles_ms(values_ns):
    """Return p50/p90/p99/max/mean of nanosecond values in milliseconds (None when empty)."""
    if not values_ns:
        return None
    ms = np.asarray(values_ns, dtype=np.float64) / 1e6
    return {'p50': float(np.percentile(ms, 50)), 'p90': float(np.percentile(ms, 90)),
            'p99': float(np.percentile(ms, 99)), 'max': float(ms.max()),
            'mean': float(ms.mean()), 'count': int(ms.size)}


def strict_json(value):
    """
    Return ``value`` as strict JSON text (RFC 8259): NaN and infinities become ``null``.

    numpy scalars and arrays become plain numbers and lists. Python's default would write bare
    ``NaN``, which strict parsers (JavaScript, jq, ``json.loads`` with ``parse_constant``)
    refuse.
    """
    def clean(item):
        if isinstance(item, dict):
            return {str(key): clean(child) for key, child in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(child) for child in item]
        if isinstance(item, np.ndarray):
            return clean(item.tolist())
        if isinstance(item, np.generic):
            item = item.item()
        if isinstance(item, float) and not math.isfinite(item):
            return None
        return item
    return json.dumps(clean(value), indent=2, allow_nan=False) + '\n'


def depth_accuracy(relative, kind, ground_truth):
    """
    Compare a relative depth map with the scene's true depth after a scale/shift fit.

    The fit is the evaluation protocol's alignment (depth space for depth variants, disparity
    space for disparity variants); returns AbsRel and delta < 1.25 over the valid pixels.
    """
    from genpercept_ros.geometry.scale import fit_scale_shift
    from genpercept_ros.geometry.scale import space_for_kind
    valid = np.isfinite(ground_truth) & (ground_truth > 0)
    fit = fit_scale_shift(relative, ground_truth, valid, space=space_for_kind(kind),
                          min_inlier_ratio=0.0, inlier_threshold=0.1)
    if not np.isfinite(fit.scale):
        return {'fitted': False, 'reason': fit.reason}
    metric = fit.to_metric(relative)
    ok = valid & np.isfinite(metric)
    if not ok.any():
        return {'fitted': False, 'reason': 'the fitted depth has no valid pixel'}
    ratio = metric[ok] / ground_truth[ok]
    return {'fitted': True, 'scale': fit.scale, 'shift': fit.shift,
            'abs_rel': float(np.mean(np.abs(metric[ok] - ground_truth[ok]) / ground_truth[ok])),
            'delta1': float(np.mean(np.maximum(ratio, 1.0 / ratio) < 1.25))}


def _label(image, text, origin, scale=0.5):
    """Draw white text with a dark outline (readable on any colour) on an RGB image."""
    import cv2
    for colour, thickness in (((0, 0, 0), 2), ((255, 255, 255), 1)):
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness,
                    cv2.LINE_AA)


def colour_bar(width, near_m, far_m, height=16, margin=30):
    """
    Return an RGB strip: the Spectral bar from ``near_m`` to ``far_m`` labelled in metres.

    The bar spans the columns ``[margin, width - margin)`` (near left, far right, as
    `colorize_depth` maps low to high), with ticks and the near, middle and far values in
    metres below it. Returns ``(height + 26, width, 3)`` uint8.
    """
    import cv2
    from genpercept_ros.geometry.colorize import colorize_depth
    strip = np.full((height + 26, width, 3), 32, dtype=np.uint8)
    span = max(width - 2 * margin, 2)
    ramp = np.linspace(near_m, far_m, span, dtype=np.float32)[None].repeat(height, axis=0)
    strip[:height, margin:margin + span] = colorize_depth(ramp, near_m, far_m)
    for text, x in ((f'near {near_m:.3g} m', margin),
                    (f'{(near_m + far_m) / 2:.3g} m', margin + span // 2),
                    (f'far {far_m:.3g} m', margin + span - 1)):
        strip[height:height + 5, max(x - 1, 0):x + 1] = 255
        (text_width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        left = int(np.clip(x - text_width // 2, 2, max(2, width - text_width - 2)))
        _label(strip, text, (left, height + 21), scale=0.45)
    return strip


PICTURE_MIN_PANEL_WIDTH = 320


def depth_comparison(predicted_m, truth_m, near_m, far_m, titles=('prediction', 'ground truth')):
    """
    Return the demo's depth picture: predicted and true metric depth side by side.

    Both (H, W) float metre maps are coloured over the same ``[near_m, far_m]`` (Spectral, NaN
    black), enlarged ``k`` times (nearest pixel, the smallest integer making a panel at least
    :data:`PICTURE_MIN_PANEL_WIDTH` wide, so titles and labels stay legible), with a shared
    `colour_bar` below; the titles are written in the top-left corners.
    Returns ``(k H + bar, 2 k W + 4, 3)`` uint8 RGB.
    """
    import cv2
    from genpercept_ros.geometry.colorize import colorize_depth
    height, width = np.shape(truth_m)
    factor = max(1, -(-PICTURE_MIN_PANEL_WIDTH // width))
    panels = []
    for depth, title in zip((predicted_m, truth_m), titles):
        panel = colorize_depth(np.asarray(depth, dtype=np.float32), near_m, far_m)
        if factor > 1:
            panel = cv2.resize(panel, (width * factor, height * factor),
                               interpolation=cv2.INTER_NEAREST)
        _label(panel, title, (6, 20))
        panels.append(panel)
    gap = np.full((panels[0].shape[0], 4, 3), 32, dtype=np.uint8)
    top = np.concatenate([panels[0], gap, panels[1]], axis=1)
    return np.concatenate([top, colour_bar(top.shape[1], near_m, far_m)], axis=0)


def save_frame_files(out, messages, scene, intrinsics_msg, colour_range=None,
                     prediction_title='prediction'):
    """
    Write the PNG, PLY and camera YAML files of one processed frame; return their names.

    With ``colour_range = (near_m, far_m)`` and the frame's ``depth/image``, ``depth.png``
    shows the predicted metric depth next to the scene's true depth with a colour bar in metres.
    """
    import cv2
    from genpercept_ros.messages.image import image_to_array
    from genpercept_ros.messages.pointcloud import pointcloud_to_xyz
    from ..camera_yaml import camera_info_to_yaml
    from ..ply import write_ply
    files = {}
    cv2.imwrite(str(out / 'input.png'), scene.rgb[:, :, ::-1])
    files['input'] = 'input.png'
    for name, topic in (('depth_colored', 'depth/colored'), ('normals', 'normals/colored')):
        if topic in messages:
            cv2.imwrite(str(out / f'{name}.png'), image_to_array(messages[topic])[:, :, ::-1])
            files[name] = f'{name}.png'
    if colour_range is not None and 'depth/image' in messages:
        predicted = image_to_array(messages['depth/image'])
        if predicted.shape == scene.depth.shape:
            picture = depth_comparison(predicted, scene.depth, *colour_range,
                                       titles=(prediction_title, 'ground truth'))
            cv2.imwrite(str(out / 'depth.png'), picture[:, :, ::-1])
            files['depth'] = 'depth.png'
    if 'points' in messages:
        xyz = pointcloud_to_xyz(messages['points'])
        rgb = scene.rgb if scene.rgb.shape[:2] == xyz.shape[:2] else None
        normals = None
        if 'normals/image' in messages:
            normals = image_to_array(messages['normals/image'])
            normals = normals if normals.shape[:2] == xyz.shape[:2] else None
        count = write_ply(out / 'cloud.ply', xyz, rgb, normals)
        files['cloud'] = 'cloud.ply'
        files['cloud_points'] = count
    if intrinsics_msg is not None:
        (out / 'camera_info.yaml').write_text(camera_info_to_yaml(intrinsics_msg, 'demo_camera'))
        files['camera_info'] = 'camera_info.yaml'
    return files
