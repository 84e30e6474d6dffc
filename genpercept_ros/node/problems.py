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
Problem reports of the node: counted per camera and kind, logged throttled.

The same message (numbers ignored, so a stream of e.g. corrupt frames of varying byte counts
is one message) is logged at most every :data:`LOG_THROTTLE_S` per camera, with the count of
reports skipped since; every report is counted in the camera's diagnostics.
"""

import re
import time

# The same problem is logged at most this often per camera (the count goes to diagnostics).
LOG_THROTTLE_S = 5.0
_THROTTLE_KEYS = 256
_NUMBERS = re.compile(r'\d+(\.\d+)?')


class ProblemReporter:
    """Count and log problems of the node's cameras (``logger``: an rclpy logger)."""

    def __init__(self, logger):
        self.logger = logger
        self._last = {}

    def report(self, channel, kind, message, level='error'):
        """
        Count a problem of ``channel`` in diagnostics and log it, throttled.

        :param channel: the :class:`~genpercept_ros.node.camera.CameraChannel` concerned.
        :param kind: problem kind (``decode``, ``input_size``, ``camera_info``, ...).
        :param message: what went wrong and what the node did about it.
        :param level: ``'error'`` or ``'warning'``.
        """
        channel.stats.problems[kind] += 1
        key = (channel.name, kind, _NUMBERS.sub('#', message))
        if len(self._last) > _THROTTLE_KEYS:
            self._last.clear()
        now = time.monotonic()
        last, suppressed = self._last.get(key, (None, 0))
        if last is not None and now - last < LOG_THROTTLE_S:
            self._last[key] = (last, suppressed + 1)
            return
        self._last[key] = (now, 0)
        where = f'[{channel.name}] ' if channel.name else ''
        more = f' ({suppressed} more since the last report)' if suppressed else ''
        text = f'{where}{kind}: {message}{more}'
        # rclpy refuses different severities from one call site, hence two calls.
        if level == 'error':
            self.logger.error(text)
        else:
            self.logger.warning(text)
