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

"""``/diagnostics`` content: model, rates, latency, drops, errors and scale per camera."""

from dataclasses import dataclass
import math

from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from diagnostic_msgs.msg import KeyValue


@dataclass
class _Snapshot:
    received: int = 0
    processed: int = 0
    latency_sum_s: float = 0.0


class Diagnostics:
    """Turn the node's counters into a DiagnosticArray, with rates over each period."""

    def __init__(self, node_name):
        self.node_name = node_name
        self._previous = {}

    def build(self, stamp, now_s, model_status, channels, scale_reports, extra=None):
        """
        Return a DiagnosticArray: one status for the model, one per camera.

        ``model_status`` is ``(level, message, {key: value})``; ``scale_reports`` maps camera
        name to its last ScaleReport (or None); ``extra`` maps camera name to further values.
        """
        array = DiagnosticArray()
        array.header.stamp = stamp
        level, message, values = model_status
        array.status.append(_status(f'{self.node_name}: model', level, message, values))
        for channel in channels:
            array.status.append(self._camera_status(now_s, channel,
                                                    scale_reports.get(channel.name),
                                                    (extra or {}).get(channel.name, {})))
        return array

    def _camera_status(self, now_s, channel, report, extra):
        stats = channel.stats
        previous_time, previous = self._previous.get(channel.name, (None, _Snapshot()))
        elapsed = None if previous_time is None else now_s - previous_time
        processed_now = stats.processed - previous.processed
        input_rate = _rate(stats.received - previous.received, elapsed)
        output_rate = _rate(processed_now, elapsed)
        latency = ((stats.latency_sum_s - previous.latency_sum_s) / processed_now
                   if processed_now else math.nan)
        self._previous[channel.name] = (now_s, _Snapshot(stats.received, stats.processed,
                                                         stats.latency_sum_s))
        values = {
            'input_rate_hz': _fmt(input_rate),
            'output_rate_hz': _fmt(output_rate),
            'latency_ms': _fmt(latency * 1000.0),
            'latency_max_ms': _fmt(stats.latency_max_s * 1000.0),
            'frames_received': str(stats.received),
            'frames_processed': str(stats.processed),
            'frames_dropped': str(stats.dropped),
            'frames_skipped_no_subscribers': str(stats.skipped_no_subscribers),
            'camera_info': 'received' if channel.camera_info is not None else 'missing',
        }
        for kind, count in sorted(stats.problems.items()):
            values[f'errors.{kind}'] = str(count)
        values['errors_total'] = str(sum(stats.problems.values()))
        level, message = DiagnosticStatus.OK, 'ok'
        if report is not None:
            values.update({
                'scale_mode': report.mode, 'scale_source': report.source,
                'scale_status': report.status, 'scale_space': report.space,
                'scale': _fmt(report.scale), 'shift': _fmt(report.shift),
                'inlier_ratio': _fmt(report.inlier_ratio), 'residual': _fmt(report.residual),
            })
            if report.up is not None:
                values['floor_up_source'] = report.up_source
                values['floor_up'] = ' '.join(f'{value:.4f}' for value in report.up)
            if report.source == 'assumed':
                message = f'metric depth uses an assumed scale ({report.status})'
            elif report.source in ('held', 'fallback'):
                level, message = DiagnosticStatus.WARN, f'scale: {report.status}'
        values.update(extra)
        if channel.camera_info is None and stats.processed:
            level = DiagnosticStatus.WARN
            message = 'no camera_info: no depth/camera_info and no point clouds'
        name = f'{self.node_name}: camera {channel.name}' if channel.name else \
            f'{self.node_name}: camera'
        return _status(name, level, message, values)


def _status(name, level, message, values):
    status = DiagnosticStatus()
    status.name = name
    status.level = level
    status.message = message
    status.hardware_id = 'genpercept'
    status.values = [KeyValue(key=str(key), value=str(value)) for key, value in values.items()]
    return status


def _rate(count, elapsed):
    if not elapsed or elapsed <= 0:
        return math.nan
    return count / elapsed


def _fmt(value):
    return 'nan' if value is None or not math.isfinite(value) else f'{value:.4g}'
