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

"""The rclpy part of ``genpercept demo``: camera, node and recorder in one executor."""

import shutil
import sys
import time

from genpercept_ros.model.registry import get_model_spec
import numpy as np

from .results import complete_topics
from .results import depth_accuracy
from .results import NAMESPACE
from .results import percentiles_ms
from .results import save_frame_files
from .results import strict_json

DISCOVERY_TIMEOUT_S = 10.0


def scale_mode_of(args):
    """Return the node's scale_mode for the demo options (``--metric-reference`` = reference)."""
    if args.scale_mode is not None:
        return args.scale_mode
    return 'reference' if args.metric_reference else 'range'


def _node_parameters(args, model_root):
    from rclpy.parameter import Parameter
    from .nodes import GROUND_CAMERA_HEIGHT_M
    from .nodes import GROUND_CAMERA_PITCH_DEG
    resolution = args.processing_resolution
    values = {'model_root': str(model_root or ''), 'depth_model': args.depth_model,
              'normal_model': args.normal_model, 'device': args.device, 'dtype': args.dtype,
              'processing_resolution': int(resolution),
              'scale_mode': scale_mode_of(args),
              'near_m': 0.8, 'far_m': 6.5, 'diagnostics_period_s': 1.0}
    if values['scale_mode'] == 'ground':
        values.update({'camera_height_m': GROUND_CAMERA_HEIGHT_M,
                       'ground_orientation': 'parameters',
                       'camera_pitch_deg': GROUND_CAMERA_PITCH_DEG})
    return [Parameter(name, value=value) for name, value in values.items()], values


def _spin_until(executor, condition, timeout_s, tick=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        executor.spin_once(timeout_sec=0.02)
        if tick is not None:
            tick()
    return condition()


def _diagnostics_summary(msg):
    if msg is None:
        return None
    return [{'name': status.name, 'level': int.from_bytes(status.level, 'little')
             if isinstance(status.level, bytes) else int(status.level),
             'message': status.message,
             'values': {kv.key: kv.value for kv in status.values}} for status in msg.status]


def run_demo(args, out, frames, width, height, model_root, meaningful, note, started):
    """Run camera -> node -> recorder and write the results; return the exit status."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from genpercept_ros.node import GenPerceptNode
    from ..bag_io import BagWriter
    from .nodes import render_frames
    from .nodes import Recorder
    from .nodes import SyntheticCamera

    parameters, values = _node_parameters(args, model_root)
    intrinsics, scenes = render_frames(width, height, frames,
                                       values.get('camera_pitch_deg', 0.0))
    reference = values['scale_mode'] == 'reference'
    bag_path = out / 'bag'
    if bag_path.exists():
        if not (bag_path / 'metadata.yaml').is_file():
            print(f'genpercept demo: error: {bag_path} exists and is not a rosbag2 folder; '
                  'choose another --output', file=sys.stderr)
            return 2
        shutil.rmtree(bag_path)
    context = Context()
    rclpy.init(context=context)
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    nodes = []
    writer = None
    try:
        load_started = time.monotonic()
        try:
            node = GenPerceptNode(namespace=NAMESPACE, context=context,
                                  parameter_overrides=parameters)
        except Exception as error:  # noqa: B902 - any load failure ends the demo clearly
            print(f'genpercept demo: error: genpercept_node could not start: '
                  f'{type(error).__name__}: {error}', file=sys.stderr)
            return 1
        load_s = time.monotonic() - load_started
        nodes.append(node)
        output_topics = node.core.pipeline.output_topics()
        depth_kind = get_model_spec(values['depth_model']).output_kind
        topics = complete_topics(depth_kind)
        writer = BagWriter(bag_path, 'sqlite3')
        recorder = Recorder(NAMESPACE, output_topics, writer, context=context,
                            record_reference=reference)
        camera = SyntheticCamera(scenes, intrinsics, args.rate, NAMESPACE, context=context,
                                 publish_depth=reference)
        nodes += [recorder, camera]
        for item in nodes:
            executor.add_node(item)
        connected = _spin_until(
            executor, lambda: camera.input_subscribers() >= 2
            and all(node.count_subscribers(f'{NAMESPACE}/{t}') >= 1 for t in topics),
            DISCOVERY_TIMEOUT_S)
        if not connected:
            print('genpercept demo: warning: discovery incomplete after '
                  f'{DISCOVERY_TIMEOUT_S:.0f} s; starting anyway', file=sys.stderr)
        print(f'genpercept demo: {node.core.pipeline.predictor.describe()}, loaded in '
              f'{load_s:.1f} s; camera {width}x{height} at {args.rate:g} Hz, {frames} frames, '
              f'processing resolution {values["processing_resolution"]}', flush=True)
        camera.start()
        publish_started = time.monotonic()
        deadline = started + args.time_limit
        _spin_until(executor, lambda: camera.done or time.monotonic() > deadline,
                    max(0.0, deadline - time.monotonic()), recorder.flush)
        publish_s = time.monotonic() - publish_started
        last = camera.published_stamps[-1] if camera.published_stamps else None

        def finished():
            return last is None or last in recorder.complete_stamps(topics)
        # Newest frame wins in the node, so the last published frame is always processed:
        # wait for it (bounded by --time-limit).
        timed_out = not _spin_until(executor, finished, max(0.0, deadline - time.monotonic()),
                                    recorder.flush)
        _spin_until(executor, lambda: False, 0.3, recorder.flush)  # let the stragglers arrive
        # The summary reports the node's own diagnostics: wait for one sent after the last frame
        # (a short run can end before the first diagnostics period has passed).
        diagnostics_count = recorder.counts.get('/diagnostics', 0)
        _spin_until(executor,
                    lambda: recorder.counts.get('/diagnostics', 0) > diagnostics_count,
                    min(values['diagnostics_period_s'] + 1.0,
                        max(0.0, deadline - time.monotonic())), recorder.flush)
        recorder.flush()
        summary = _summarise(args, camera, recorder, scenes, intrinsics, values, model_root,
                             meaningful, note, load_s, publish_s, timed_out, out,
                             node.core.device, node.core.dtype)
    finally:
        for item in nodes:
            executor.remove_node(item)
            item.destroy_node()
        executor.shutdown(timeout_sec=1.0)
        if writer is not None:
            writer.close()
        rclpy.try_shutdown(context=context)
    summary['wall_time_s'] = round(time.monotonic() - started, 2)
    (out / 'summary.json').write_text(strict_json(summary))
    _report(out, summary)
    return 0 if summary['frames_processed'] > 0 else 1


def _summarise(args, camera, recorder, scenes, intrinsics, values, model_root, meaningful, note,
               load_s, publish_s, timed_out, out, device, dtype):
    from genpercept_ros.messages.camera_info import intrinsics_to_camera_info
    from genpercept_ros.messages.image import image_to_array
    depth_kind = get_model_spec(values['depth_model']).output_kind
    topics = complete_topics(depth_kind)
    complete = recorder.complete_stamps(topics)
    latencies = recorder.latencies_ns(topics)
    published = len(camera.published_stamps)
    summary = {
        'predictions_meaningful': bool(meaningful),
        'weights': {'model_root': model_root or 'Hugging Face cache', 'note': note,
                    'depth_model': values['depth_model'],
                    'normal_model': values['normal_model']},
        'device': str(device), 'dtype': str(dtype),
        'processing_resolution': values['processing_resolution'],
        'camera': {'width': intrinsics.width, 'height': intrinsics.height,
                   'rate_hz': args.rate, 'frames_published': published,
                   'publish_duration_s': round(publish_s, 3)},
        'frames_processed': len(complete),
        'frames_dropped': published - len(complete),
        'processed_rate_hz': None,
        'latency_ms': percentiles_ms(list(latencies.values())),
        'timed_out_waiting_for_last_frame': bool(timed_out),
        'model_load_s': round(load_s, 2),
        'messages_recorded': dict(sorted(recorder.counts.items())),
        'depth_vs_ground_truth': None,
        'files': {'bag': 'bag'},
    }
    if len(complete) > 1:
        span_s = (max(latencies[s] + s for s in complete)
                  - min(latencies[s] + s for s in complete)) / 1e9
        summary['processed_rate_hz'] = round((len(complete) - 1) / span_s, 3) if span_s else None
    if complete:
        newest = complete[-1]
        messages = recorder.messages_for(newest)
        scene = scenes[camera.frame_of_stamp[newest]]
        info = intrinsics_to_camera_info(intrinsics, messages['points'].header)
        summary['files'].update(save_frame_files(
            out, messages, scene, info, colour_range=(values['near_m'], values['far_m']),
            prediction_title='prediction' if meaningful else 'prediction (random weights)'))
        relative = image_to_array(messages[topics[0]]).astype(np.float32)
        if relative.shape == scene.depth.shape:
            accuracy = depth_accuracy(relative, depth_kind, scene.depth)
            accuracy['note'] = ('relative depth of the newest frame against the rendered '
                                'ground truth after a scale/shift fit'
                                + ('' if meaningful else '; random weights, so meaningless'))
            summary['depth_vs_ground_truth'] = accuracy
        if 'depth/image' in messages:
            metric = image_to_array(messages['depth/image']).astype(np.float64)
            if metric.shape == scene.depth.shape:
                summary['metric_depth_vs_ground_truth'] = metric_error(
                    metric, scene.depth, values['scale_mode'], meaningful, values)
        if 'scale' in messages:
            summary['scale'] = dict(zip(('scale', 'shift', 'inlier_ratio', 'residual'),
                                        (float(v) for v in messages['scale'].data)))
        elif 'scale' in recorder.latest:
            summary['scale'] = dict(zip(('scale', 'shift', 'inlier_ratio', 'residual'),
                                        (float(v) for v in recorder.latest['scale'].data)))
    summary['diagnostics'] = _diagnostics_summary(recorder.diagnostics)
    return summary


def metric_error(metric, truth, scale_mode, meaningful=True, values=None):
    """Return AbsRel of the published metric depth against the true depth, with its source."""
    ok = np.isfinite(metric) & np.isfinite(truth) & (truth > 0)
    values = values or {}
    if scale_mode == 'reference':
        note = ('scale fitted per frame to the true depth on reference/depth (the node falls '
                'back to the range mapping when a fit is rejected; see /diagnostics)')
    elif scale_mode == 'ground':
        note = (f"scale fitted per frame from the floor seen {values.get('camera_height_m')} m "
                f"below the camera, pitched down {values.get('camera_pitch_deg')} deg, with the "
                'predicted normals (the node falls back to the range mapping when it finds no '
                'floor; see /diagnostics and scale)')
    else:
        note = f'{scale_mode} scale (assumed, not measured)'
    if not meaningful:
        note += '; random weights, so meaningless'
    result = {'abs_rel': None, 'valid_ratio': 0.0, 'scale_mode': scale_mode, 'note': note}
    if scale_mode == 'ground':
        result.update(camera_height_m=values.get('camera_height_m'),
                      camera_pitch_deg=values.get('camera_pitch_deg'))
    if ok.any():
        result.update(abs_rel=float(np.mean(np.abs(metric[ok] - truth[ok]) / truth[ok])),
                      valid_ratio=float(ok.mean()))
    return result


def _report(out, summary):
    latency = summary['latency_ms']
    lines = [
        f'genpercept demo: {summary["frames_processed"]} of '
        f'{summary["camera"]["frames_published"]} frames processed'
        + (f', latency p50 {latency["p50"]:.0f} ms, p90 {latency["p90"]:.0f} ms'
           if latency else ''),
        f'genpercept demo: results in {out.resolve()}/',
    ]
    for key, name in summary['files'].items():
        if isinstance(name, str):
            lines.append(f'    {key:14s} {out / name}')
    lines.append(f'    {"summary":14s} {out / "summary.json"}')
    if not summary['predictions_meaningful']:
        lines.append('genpercept demo: REMINDER: random weights were used; the predictions '
                     'are NOT meaningful (see summary.json).')
    print('\n'.join(lines), flush=True)
