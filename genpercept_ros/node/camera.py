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

"""One camera served by the node: its subscriptions, publishers and newest-frame slot."""

from collections import Counter
from dataclasses import dataclass
from dataclasses import field
import time

from rclpy.qos import HistoryPolicy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import CompressedImage
from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2

from ..pipeline.topics import message_type

_RELIABILITY = {'best_effort': ReliabilityPolicy.BEST_EFFORT,
                'reliable': ReliabilityPolicy.RELIABLE}


def make_qos(reliability, depth):
    """Return a keep-last QoS profile with the given reliability name and depth."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth),
                      reliability=_RELIABILITY[reliability])


@dataclass
class CameraStats:
    """Counters of one camera since start, read by diagnostics."""

    received: int = 0
    dropped: int = 0
    skipped_no_subscribers: int = 0
    processed: int = 0
    latency_sum_s: float = 0.0
    latency_max_s: float = 0.0
    problems: Counter = field(default_factory=Counter)


class CameraChannel:
    """
    Topics of one camera (relative names under ``prefix``) and its newest unprocessed frame.

    Callbacks only store messages; :meth:`take` hands the newest frame to the worker. A frame
    replaced before the worker took it counts as dropped, so nothing ever queues up.
    """

    def __init__(self, name, condition):
        self.name = name
        self.prefix = f'{name}/' if name else ''
        self.stats = CameraStats()
        self.camera_info = None
        self.reference_info = None
        self.publishers = {}
        self._subscriptions = []
        self._condition = condition
        self._pending = None
        # Stamp (seconds) of the last frame taken by the worker, to notice time going back.
        self.last_stamp_s = None

    def topic(self, relative):
        """Return this camera's name for a relative topic."""
        return self.prefix + relative

    # Wiring -------------------------------------------------------------------------------

    def create_publishers(self, node, topics, qos):
        """Advertise every output topic with ``qos`` (overridable by parameters)."""
        for relative in topics:
            self.publishers[relative] = node.create_publisher(
                message_type(relative), self.topic(relative), qos,
                qos_overriding_options=QoSOverridingOptions.with_default_policies())

    def create_subscriptions(self, node, params, on_reference, callback_group=None):
        """Subscribe the image, camera_info and (for reference mode) metric reference topics."""
        qos = make_qos(params['input_reliability'], params['input_qos_depth'])
        options = QoSOverridingOptions.with_default_policies()
        if params['image_transport'] == 'compressed':
            image_type, image_topic = CompressedImage, 'image/compressed'
        else:
            image_type, image_topic = Image, 'image'
        subscriptions = [
            node.create_subscription(image_type, self.topic(image_topic), self.store_frame, qos,
                                     qos_overriding_options=options,
                                     callback_group=callback_group),
            node.create_subscription(CameraInfo, self.topic('camera_info'),
                                     self._store_camera_info, qos,
                                     qos_overriding_options=options,
                                     callback_group=callback_group),
        ]
        if params['reference_type'] == 'points':
            subscriptions.append(node.create_subscription(
                PointCloud2, self.topic('reference/points'),
                lambda msg: on_reference(self, msg), qos, qos_overriding_options=options,
                callback_group=callback_group))
        else:
            subscriptions.append(node.create_subscription(
                Image, self.topic('reference/depth'), lambda msg: on_reference(self, msg), qos,
                qos_overriding_options=options, callback_group=callback_group))
            subscriptions.append(node.create_subscription(
                CameraInfo, self.topic('reference/camera_info'), self._store_reference_info,
                qos, qos_overriding_options=options, callback_group=callback_group))
        self._subscriptions = subscriptions

    def destroy_subscriptions(self, node):
        """Stop receiving; a pending frame is discarded."""
        for subscription in self._subscriptions:
            node.destroy_subscription(subscription)
        self._subscriptions = []
        with self._condition:
            self._pending = None

    def destroy_publishers(self, node):
        """Withdraw every output topic."""
        for publisher in self.publishers.values():
            node.destroy_publisher(publisher)
        self.publishers = {}

    # Callbacks (executor thread) ------------------------------------------------------------

    def store_frame(self, msg):
        """Keep ``msg`` as the newest frame and wake the worker."""
        with self._condition:
            self.stats.received += 1
            if self._pending is not None:
                self.stats.dropped += 1
            self._pending = (msg, time.monotonic())
            self._condition.notify_all()

    def _store_camera_info(self, msg):
        self.camera_info = msg

    def _store_reference_info(self, msg):
        self.reference_info = msg

    # Worker side ------------------------------------------------------------------------------

    def pending_since(self):
        """Return the monotonic arrival time of the pending frame, or None (hold the lock)."""
        return None if self._pending is None else self._pending[1]

    def take(self):
        """Return and clear ``(msg, arrival_time)`` of the newest frame (hold the lock)."""
        pending, self._pending = self._pending, None
        return pending

    def wanted_topics(self):
        """Return the relative output topics that currently have subscribers."""
        wanted = set()
        for relative, publisher in self.publishers.items():
            try:
                if publisher.get_subscription_count() > 0:
                    wanted.add(relative)
            except Exception:  # noqa: B902 - a publisher destroyed during shutdown
                continue
        return frozenset(wanted)
