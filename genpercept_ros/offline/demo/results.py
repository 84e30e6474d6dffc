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


def save_frame_files(out, messages, scene, intrinsics_msg):
    """Write the PNG, PLY and camera YAML files of one processed frame; return their names."""
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
