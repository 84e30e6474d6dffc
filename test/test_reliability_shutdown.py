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
SIGINT/SIGTERM with every output subscribed and an inference in flight, or while loading.

The node runs as ``python -m genpercept_ros.node`` (depth and normals, every output topic
subscribed by this test) at a processing resolution where one inference takes a good part of
a second, so the signal lands during inference. It must end by itself with exit code 0,
without a traceback, and wait for the running inference at most once.
"""

import os
import signal
import subprocess
import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Float64MultiArray

pytestmark = pytest.mark.ros

PROCESS_TIMEOUT_S = 120.0
OUTPUTS = {
    'depth_relative/image': Image, 'depth/image': Image, 'depth/camera_info': CameraInfo,
    'depth/colored': Image, 'normals/image': Image, 'normals/colored': Image,
    'points': PointCloud2, 'scale': Float64MultiArray, 'depth/scale': DiagnosticArray,
}


class NodeProcess:
    """The node in its own process; its output lines collected with arrival times."""

    def __init__(self, namespace, *parameters):
        command = [sys.executable, '-u', '-m', 'genpercept_ros.node', '--ros-args',
                   '-r', f'__ns:={namespace}', '-p', 'device:=cpu']
        for parameter in parameters:
            command += ['-p', parameter]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in iter(self.process.stdout.readline, b''):
            self.lines.append((time.monotonic(), line.decode(errors='replace')))

    def wait_line(self, text, timeout=PROCESS_TIMEOUT_S):
        """Wait until an output line contains ``text``; return whether one did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if any(text in line for _, line in list(self.lines)):
                return True
            time.sleep(0.02)
        return any(text in line for _, line in list(self.lines))

    def stop(self, signum):
        """Send ``signum``; return (exit code, seconds to exit, output text)."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout=PROCESS_TIMEOUT_S)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        waited = time.monotonic() - sent
        self._reader.join(5.0)
        return self.process.returncode, waited, ''.join(line for _, line in self.lines)


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_signal_during_inference_with_every_output_subscribed(tiny_model_root, signum):
    """Every output subscribed, a slow inference in flight: exit 0, no traceback, one wait."""
    namespace = f'/gp_shutdown_{signum.value}'
    node = NodeProcess(namespace, f'model_root:={tiny_model_root}',
                       'processing_resolution:=256')
    context = Context()
    rclpy.init(context=context)
    client = Node('genpercept_shutdown_test', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(client)
    received = set()
    for topic, message_type in OUTPUTS.items():
        client.create_subscription(message_type, f'{namespace}/{topic}',
                                   lambda msg, topic=topic: received.add(topic), 10)
    image_pub = client.create_publisher(Image, f'{namespace}/image', qos_profile_sensor_data)
    info_pub = client.create_publisher(CameraInfo, f'{namespace}/camera_info',
                                       qos_profile_sensor_data)
    rgb = np.full((48, 64, 3), 100, dtype=np.uint8)
    frame = Image(height=48, width=64, encoding='rgb8', step=192, data=rgb.tobytes())
    info = CameraInfo(width=64, height=48, k=[50.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0],
                      p=[50.0, 0.0, 31.5, 0.0, 0.0, 50.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0])
    try:
        deadline = time.monotonic() + PROCESS_TIMEOUT_S
        while received != set(OUTPUTS) and time.monotonic() < deadline:
            assert node.process.poll() is None, ''.join(line for _, line in node.lines)
            info_pub.publish(info)
            image_pub.publish(frame)
            executor.spin_once(timeout_sec=0.05)
        assert received == set(OUTPUTS), received
        # Keep frames coming so that an inference is running when the signal lands.
        busy_until = time.monotonic() + 1.0
        while time.monotonic() < busy_until:
            info_pub.publish(info)
            image_pub.publish(frame)
            executor.spin_once(timeout_sec=0.03)
        code, waited, output = node.stop(signum)
    finally:
        if node.process.poll() is None:
            node.process.kill()
        rclpy.try_shutdown(context=context)
    assert code == 0, output
    assert 'Traceback' not in output and 'Failed to publish' not in output, output
    assert output.count('inference still running at shutdown') <= 1, output
    assert waited < 10.0, output


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_signal_while_the_model_loads(tiny_model_root, signum):
    """A signal during model loading stops the node at once: exit 0, no traceback."""
    node = NodeProcess(f'/gp_loading_{signum.value}', f'model_root:={tiny_model_root}')
    try:
        assert node.wait_line('loading depth_model'), ''.join(line for _, line in node.lines)
        code, waited, output = node.stop(signum)
    finally:
        if node.process.poll() is None:
            node.process.kill()
    assert code == 0, output
    assert 'Traceback' not in output, output
    assert 'FATAL' not in output, output
    assert 'stopped during startup' in output or 'subscribed to' in output, output
    assert os.path.isdir(tiny_model_root)
