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
genpercept_node as a process: startup failures exit non-zero, signals end it cleanly.

The node runs as ``python -m genpercept_ros.node`` exactly as the console script does.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image

pytestmark = pytest.mark.ros

# A hang is the failure these tests look for; a clean process needs far less.
PROCESS_TIMEOUT_S = 60.0


def run_node(*ros_args, lifecycle=False):
    """Run the node to completion; return (exit code, combined output)."""
    command = [sys.executable, '-m', 'genpercept_ros.node']
    if lifecycle:
        command.append('--lifecycle')
    command += ['--ros-args', *ros_args]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=PROCESS_TIMEOUT_S, env=dict(os.environ, HF_HUB_OFFLINE='1'))
    return done.returncode, done.stdout.decode(errors='replace')


def test_missing_weights_exit_nonzero_with_remedy(tmp_path):
    """A model_root without weights ends the process with one clear message and the remedy."""
    code, output = run_node('-p', f'model_root:={tmp_path / "missing"}', '-p', 'device:=cpu')
    assert code != 0
    assert 'could not start' in output and 'genpercept download' in output
    assert 'Traceback' not in output


def test_invalid_startup_parameters_exit_nonzero():
    """Out-of-range and inconsistent values at startup are refused with the reason."""
    code, output = run_node('-p', 'near_m:=5.0', '-p', 'far_m:=1.0')
    assert code != 0 and 'near_m' in output and 'Traceback' not in output
    code, output = run_node('-p', 'processing_resolution:=-5')
    assert code != 0 and 'processing_resolution' in output and 'Traceback' not in output
    code, output = run_node('-p', 'scale_mode:=metric')
    assert code != 0 and 'scale_mode' in output
    code, output = run_node('-p', 'normal_model:=')
    assert code != 0 and 'invalid command line' in output and 'Traceback' not in output


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_signal_during_inference_exits_cleanly(tiny_model_root, signum):
    """SIGINT/SIGTERM while frames stream in: exit code 0, no traceback, no hang."""
    namespace = f'/gp_proc_{signum.value}'
    command = [sys.executable, '-m', 'genpercept_ros.node', '--ros-args', '-r',
               f'__ns:={namespace}', '-p', f'model_root:={tiny_model_root}',
               '-p', 'device:=cpu', '-p', 'processing_resolution:=64']
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    context = Context()
    rclpy.init(context=context)
    node = Node('genpercept_signal_test', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    received = []
    node.create_subscription(Image, f'{namespace}/depth/image', received.append, 10)
    image_pub = node.create_publisher(Image, f'{namespace}/image', qos_profile_sensor_data)
    info_pub = node.create_publisher(CameraInfo, f'{namespace}/camera_info',
                                     qos_profile_sensor_data)
    rgb = np.full((48, 64, 3), 128, dtype=np.uint8)
    frame = Image(height=48, width=64, encoding='rgb8', step=192, data=rgb.tobytes())
    frame.header.frame_id = 'camera_optical'
    stop = threading.Event()

    def stream():
        while not stop.is_set():
            info_pub.publish(CameraInfo(width=64, height=48))
            image_pub.publish(frame)
            executor.spin_once(timeout_sec=0.01)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    try:
        deadline = time.monotonic() + PROCESS_TIMEOUT_S
        while not received and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert received, 'the node never published depth'
        process.send_signal(signum)
        output, _ = process.communicate(timeout=PROCESS_TIMEOUT_S)
    finally:
        stop.set()
        streamer.join(2.0)
        if process.poll() is None:
            process.kill()
        rclpy.try_shutdown(context=context)
    text = output.decode(errors='replace')
    assert process.returncode == 0, text
    assert 'Traceback' not in text


def test_sigterm_during_a_long_inference_exits_promptly(tiny_model_root):
    """An inference that cannot be interrupted does not hold the process past the join bound."""
    namespace = '/gp_proc_long'
    command = [sys.executable, '-m', 'genpercept_ros.node', '--ros-args', '-r',
               f'__ns:={namespace}', '-p', f'model_root:={tiny_model_root}',
               '-p', 'device:=cpu', '-p', 'processing_resolution:=640', '-p', "normal_model:=''"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    context = Context()
    rclpy.init(context=context)
    node = Node('genpercept_long_test', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    node.create_subscription(Image, f'{namespace}/depth/image', lambda msg: None, 10)
    image_pub = node.create_publisher(Image, f'{namespace}/image', qos_profile_sensor_data)
    frame = Image(height=480, width=640, encoding='rgb8', step=1920, data=bytes(640 * 480 * 3))
    try:
        deadline = time.monotonic() + PROCESS_TIMEOUT_S
        # Wait until the node has subscribed, then keep it busy for a while.
        while image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert process.poll() is None
        busy_until = time.monotonic() + 2.0
        while time.monotonic() < busy_until:
            image_pub.publish(frame)
            executor.spin_once(timeout_sec=0.1)
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        output, _ = process.communicate(timeout=PROCESS_TIMEOUT_S)
        waited = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
        rclpy.try_shutdown(context=context)
    text = output.decode(errors='replace')
    assert process.returncode == 0, text
    assert 'Traceback' not in text and 'Failed to publish' not in text
    # The worker join is bounded (1.5 s); a hang would wait for the whole inference.
    assert waited < 10.0, text
