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
The demo's two helper nodes: a synthetic camera and a recorder.

`SyntheticCamera` publishes a rendered box room (known depth) as ``image`` (rgb8) and
``camera_info`` at a fixed rate while the camera dollies slowly forward and back. `Recorder`
subscribes to the camera and to every output of ``genpercept_node``, writes all of it into a
rosbag2 as it arrives and keeps the newest complete set of outputs for the PNG and PLY files.
"""

from collections import deque
import math
import threading

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import HistoryPolicy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image

from ..bag_io import stamp_ns
from ...geometry.synthetic import box_room
from ...geometry.synthetic import DEFAULT_BOXES
from ...geometry.synthetic import intrinsics_from_fov
from ...messages.camera_info import intrinsics_to_camera_info
from ...messages.image import array_to_image
from ...pipeline.topics import message_type

FRAME_ID = 'demo_camera_optical_frame'
ROOM_DEPTH_M = 6.0
DOLLY_AMPLITUDE_M = 0.4
DOLLY_PERIOD_FRAMES = 40
# The camera of `--scale-mode ground`: box_room's camera height, tilted down.
GROUND_CAMERA_HEIGHT_M = 1.2
GROUND_CAMERA_PITCH_DEG = 12.0


def render_frames(width, height, count, pitch_deg=0.0):
    """
    Render ``count`` frames of the box room with the camera dollying forward and back.

    Moving the camera forward by ``dz`` is the same as moving the room and boxes back by ``dz``,
    which `box_room` renders exactly; the camera stays 1.2 m above the floor, pitched down by
    ``pitch_deg`` (> 0 looks down, as the node's ``camera_pitch_deg``). Returns
    ``(intrinsics, [SyntheticScene])``.
    """
    intrinsics = intrinsics_from_fov(width, height, fov_deg=80.0)
    pitch = math.radians(pitch_deg)
    # Columns: the camera's x, y, z axes in the room (level optical) frame.
    orientation = [[1.0, 0.0, 0.0],
                   [0.0, math.cos(pitch), math.sin(pitch)],
                   [0.0, -math.sin(pitch), math.cos(pitch)]]
    scenes = []
    for index in range(count):
        dz = DOLLY_AMPLITUDE_M * math.sin(2.0 * math.pi * index / DOLLY_PERIOD_FRAMES)
        boxes = tuple(((x0, y0, z0 - dz), (x1, y1, z1 - dz))
                      for (x0, y0, z0), (x1, y1, z1) in DEFAULT_BOXES)
        scenes.append(box_room(width, height, intrinsics=intrinsics,
                               room_size=(4.0, 2.6, ROOM_DEPTH_M - dz), boxes=boxes,
                               camera_height=GROUND_CAMERA_HEIGHT_M,
                               orientation=orientation if pitch_deg else None))
    return intrinsics, scenes


class SyntheticCamera(Node):
    """Publish pre-rendered frames as Image + CameraInfo at ``rate_hz``, then stop."""

    def __init__(self, scenes, intrinsics, rate_hz, namespace, context=None,
                 publish_depth=False):
        """
        Prepare the frames; `start` begins publishing.

        ``publish_depth`` also publishes the true depth (32FC1 metres) on ``reference/depth``,
        as a depth sensor registered to the camera would.
        """
        super().__init__('synthetic_camera', namespace=namespace, context=context)
        # Reliable so the recorder gets every frame; the node's best-effort subscription
        # matches a reliable publisher too.
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                         reliability=ReliabilityPolicy.RELIABLE)
        self._image_pub = self.create_publisher(Image, 'image', qos)
        self._info_pub = self.create_publisher(CameraInfo, 'camera_info', qos)
        self._depth_pub = (self.create_publisher(Image, 'reference/depth', qos)
                           if publish_depth else None)
        self.scenes = scenes
        self.intrinsics = intrinsics
        self.rate_hz = float(rate_hz)
        self.published_stamps = []
        self.frame_of_stamp = {}
        self.done = False
        self._timer = None

    def input_subscribers(self):
        """Return how many subscribers the image topic has."""
        return self._image_pub.get_subscription_count()

    def start(self):
        """Start the publishing timer."""
        self._timer = self.create_timer(1.0 / self.rate_hz, self._publish_next)

    def _publish_next(self):
        index = len(self.published_stamps)
        if index >= len(self.scenes):
            self.done = True
            self._timer.cancel()
            return
        header = Image().header
        header.stamp = self.get_clock().now().to_msg()
        header.frame_id = FRAME_ID
        image = array_to_image(self.scenes[index].rgb, 'rgb8', header)
        info = intrinsics_to_camera_info(self.intrinsics, header)
        self._info_pub.publish(info)
        if self._depth_pub is not None:
            self._depth_pub.publish(array_to_image(self.scenes[index].depth, '32FC1', header))
        self._image_pub.publish(image)
        stamp = stamp_ns(header.stamp)
        self.published_stamps.append(stamp)
        self.frame_of_stamp[stamp] = index


class Recorder(Node):
    """
    Subscribe to the camera and the node's outputs and record them into a bag.

    ``output_topics`` are relative to ``namespace``. Callbacks run in executor threads (one at
    a time: one mutually exclusive group) and only queue the messages; `flush`, called from the
    thread that created the bag writer (sqlite3 objects are bound to their thread), writes them.
    """

    def __init__(self, namespace, output_topics, bag_writer, context=None,
                 record_reference=False):
        """Create the subscriptions (reliable, as the node publishes)."""
        super().__init__('demo_recorder', namespace=namespace, context=context)
        self._lock = threading.Lock()
        self._bag = bag_writer
        self._queue = deque()
        self.namespace_prefix = namespace.rstrip('/')
        self.received = {}       # stamp -> {relative topic: receive time ns}
        self.latest = {}         # relative topic -> newest message
        self.by_stamp = {}       # stamp -> {relative topic: message} for the PNG/PLY outputs
        self.counts = {}
        self.diagnostics = None
        group = MutuallyExclusiveCallbackGroup()
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                              reliability=ReliabilityPolicy.RELIABLE)
        self.output_topics = tuple(output_topics)
        for relative in self.output_topics:
            self.create_subscription(message_type(relative), relative,
                                     self._callback(relative, output=True), reliable,
                                     callback_group=group)
        self.create_subscription(Image, 'image', self._callback('image', output=False),
                                 reliable, callback_group=group)
        self.create_subscription(CameraInfo, 'camera_info',
                                 self._callback('camera_info', output=False), reliable,
                                 callback_group=group)
        if record_reference:
            self.create_subscription(Image, 'reference/depth',
                                     self._callback('reference/depth', output=False),
                                     reliable, callback_group=group)
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10,
                                 callback_group=group)

    def _callback(self, relative, output):
        full = f'{self.namespace_prefix}/{relative}'

        def callback(msg):
            now = self.get_clock().now().nanoseconds
            self._queue.append((full, msg, now))
            with self._lock:
                self.counts[full] = self.counts.get(full, 0) + 1
                if output:
                    stamp = stamp_ns(msg.header.stamp) if hasattr(msg, 'header') else None
                    if stamp is not None:
                        self.received.setdefault(stamp, {})[relative] = now
                        self.by_stamp.setdefault(stamp, {})[relative] = msg
                        self._forget_old(stamp)
                    self.latest[relative] = msg
        return callback

    def _forget_old(self, newest):
        # Keep a few stamps only: clouds are megabytes each.
        for stamp in sorted(self.by_stamp)[:-3]:
            if stamp != newest:
                del self.by_stamp[stamp]

    def _on_diagnostics(self, msg):
        now = self.get_clock().now().nanoseconds
        self._queue.append(('/diagnostics', msg, now))
        with self._lock:
            self.counts['/diagnostics'] = self.counts.get('/diagnostics', 0) + 1
            self.diagnostics = msg

    def flush(self):
        """Write the queued messages to the bag (call from the bag writer's thread)."""
        while self._queue:
            topic, msg, stamp = self._queue.popleft()
            self._bag.write_message(topic, msg, stamp)

    def complete_stamps(self, required):
        """Return the stamps for which every topic in ``required`` arrived."""
        with self._lock:
            return sorted(s for s, topics in self.received.items() if set(required) <= set(topics))

    def latencies_ns(self, required):
        """Return ``{stamp: last receive time - stamp}`` over the stamps with all ``required``."""
        with self._lock:
            return {s: max(t[r] for r in required) - s for s, t in self.received.items()
                    if set(required) <= set(t)}

    def messages_for(self, stamp):
        """Return ``{relative topic: message}`` kept for ``stamp`` (the newest few stamps)."""
        with self._lock:
            return dict(self.by_stamp.get(stamp, {}))
