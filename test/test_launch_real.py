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
Run the installed launch files for real and check that the node publishes.

Needs the ROS 2 ``launch`` and ``launch_ros`` Python sources, which no package registry reachable
from CI serves: set ``GENPERCEPT_LAUNCH_SRC`` to the folders to put on ``PYTHONPATH`` (see
README.md, "Checking the launch files without a ROS install"). The package is built with
colcon into a temporary install space and launched from there through ``LaunchService`` in a
separate process; this process plays the camera.
"""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLCON = pathlib.Path(sys.executable).with_name('colcon')
SOURCES = os.environ.get('GENPERCEPT_LAUNCH_SRC', '')
WAIT_S = 180.0

pytestmark = [
    pytest.mark.slow, pytest.mark.ros,
    pytest.mark.skipif(not SOURCES, reason=(
        'GENPERCEPT_LAUNCH_SRC is not set: it must list the ros2/launch and ros2/launch_ros '
        'source folders (see README.md)')),
]

RUN_LAUNCH = """
import os, sys
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription, LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
path = os.path.join(get_package_share_directory('genpercept_ros'), 'launch', sys.argv[1])
service = LaunchService()
service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
    PythonLaunchDescriptionSource(path),
    launch_arguments=[tuple(item.split(':=', 1)) for item in sys.argv[2:]])]))
sys.exit(service.run())
"""


def launch_environment(install):
    env = dict(os.environ)
    prefix = install / 'genpercept_ros'
    site = next(prefix.glob('lib/python3*/site-packages'))
    env['PYTHONPATH'] = os.pathsep.join(
        [SOURCES, str(site)] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    env['AMENT_PREFIX_PATH'] = str(prefix)
    return env


@pytest.fixture(scope='module')
def install(tmp_path_factory):
    """Build the package with colcon; skip (with the reason) when launch sources are unusable."""
    probe = subprocess.run(
        [sys.executable, '-c', 'import launch, launch_ros.actions'], capture_output=True,
        text=True, env=dict(os.environ, PYTHONPATH=SOURCES), timeout=120)
    if probe.returncode != 0:
        pytest.skip(f'GENPERCEPT_LAUNCH_SRC does not provide launch/launch_ros: '
                    f'{probe.stderr.strip().splitlines()[-1:]}')
    if not COLCON.exists():
        pytest.skip('colcon-common-extensions is not installed')
    base = tmp_path_factory.mktemp('colcon')
    src = base / 'src' / 'genpercept_ros'
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        '.venv', '.git', 'build', 'install', 'log', '__pycache__', '*.egg-info', 'demo_output',
        '.pytest_cache', '.hypothesis'))
    result = subprocess.run(
        [str(COLCON), 'build', '--base-paths', str(base / 'src'), '--build-base',
         str(base / 'build'), '--install-base', str(base / 'install')],
        cwd=base, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return base / 'install'


class SyntheticCamera:
    """A camera driver stand-in: publishes Image + CameraInfo, records the node's outputs."""

    def __init__(self, image_topic, info_topic, outputs):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import CameraInfo
        from sensor_msgs.msg import Image
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('synthetic_camera', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.image_pub = self.node.create_publisher(Image, image_topic, 10)
        self.info_pub = self.node.create_publisher(CameraInfo, info_topic, 10)
        self.received = {}
        for topic, message_type in outputs.items():
            self.node.create_subscription(message_type, topic, self._keeper(topic), 10)
        self.height, self.width = 48, 64
        rgb = np.zeros((self.height, self.width, 3), np.uint8)
        rgb[..., 0] = np.linspace(0, 255, self.width, dtype=np.uint8)[None]
        rgb[..., 1] = np.linspace(0, 255, self.height, dtype=np.uint8)[:, None]
        self.rgb = rgb

    def _keeper(self, topic):
        def keep(msg):
            self.received[topic] = msg
        return keep

    def publish(self):
        from sensor_msgs.msg import CameraInfo
        from sensor_msgs.msg import Image
        info = CameraInfo(width=self.width, height=self.height, distortion_model='plumb_bob')
        info.header.stamp = self.node.get_clock().now().to_msg()
        info.header.frame_id = 'synthetic_optical_frame'
        info.k = [50.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [50.0, 0.0, 31.5, 0.0, 0.0, 50.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0]
        self.info_pub.publish(info)
        image = Image(height=self.height, width=self.width, encoding='rgb8',
                      step=self.width * 3, data=self.rgb.tobytes())
        image.header = info.header
        self.image_pub.publish(image)

    def wait_for(self, topics, process):
        deadline = time.monotonic() + WAIT_S
        last_publish = 0.0
        while (time.monotonic() < deadline and process.poll() is None
               and not set(topics) <= set(self.received)):
            if time.monotonic() - last_publish > 0.5:
                last_publish = time.monotonic()
                self.publish()
            self.executor.spin_once(timeout_sec=0.05)
        return {topic: self.received.get(topic) for topic in topics}

    def close(self):
        import rclpy
        self.node.destroy_node()
        self.executor.shutdown()
        rclpy.try_shutdown(context=self.context)


def start_launch(install, launch_file, arguments, log_path):
    log = open(log_path, 'w')
    return subprocess.Popen(
        [sys.executable, '-c', RUN_LAUNCH, launch_file] + list(arguments),
        env=launch_environment(install), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)


def stop_launch(process):
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def run_and_collect(install, tmp_path, launch_file, arguments, cameras):
    """Launch, play one synthetic camera per (image, camera_info, namespace) and collect."""
    from sensor_msgs.msg import Image
    from sensor_msgs.msg import PointCloud2
    log_path = tmp_path / 'launch.log'
    process = start_launch(install, launch_file, arguments, log_path)
    players = [SyntheticCamera(image, info, {f'{ns}/depth/colored': Image,
                                             f'{ns}/points': PointCloud2})
               for image, info, ns in cameras]
    try:
        results = {}
        for player, (_, _, ns) in zip(players, cameras):
            results.update(player.wait_for([f'{ns}/depth/colored', f'{ns}/points'], process))
    finally:
        for player in players:
            player.close()
        stop_launch(process)
    missing = [topic for topic, msg in results.items() if msg is None]
    assert not missing, f'no message on {missing}; launch log:\n{log_path.read_text()[-4000:]}'
    return results


def unique_namespace(prefix):
    return f'{prefix}_{os.getpid()}_{int(time.monotonic() * 1000) % 100000}'


def test_single_camera_lifecycle_with_remapped_driver_topics(install, tiny_model_root, tmp_path):
    ns = unique_namespace('gp')
    driver = f'/{ns}_driver/camera/color'
    results = run_and_collect(install, tmp_path, 'genpercept.launch.py', [
        f'namespace:={ns}', f'image_topic:={driver}/image_raw', 'lifecycle:=true',
        f'model_root:={tiny_model_root}', 'device:=cpu', 'processing_resolution:=64',
        'output_resolution:=input'], [(f'{driver}/image_raw', f'{driver}/camera_info', f'/{ns}')])
    colored = results[f'/{ns}/depth/colored']
    assert (colored.encoding, colored.height, colored.width) == ('rgb8', 48, 64)
    assert colored.header.frame_id == 'synthetic_optical_frame'
    cloud = results[f'/{ns}/points']
    assert (cloud.height, cloud.width) == (48, 64)
    assert {'x', 'y', 'z'} <= {field.name for field in cloud.fields}


def test_multi_camera_single_process(install, tiny_model_root, tmp_path):
    cameras = [unique_namespace('front'), unique_namespace('left')]
    results = run_and_collect(install, tmp_path, 'genpercept_multi_camera.launch.py', [
        f'cameras:={",".join(cameras)}', 'single_process:=true',
        'image_topic:=/{camera}/color/image_raw', f'model_root:={tiny_model_root}',
        'device:=cpu', 'processing_resolution:=64', 'normal_model:=none'],
        [(f'/{camera}/color/image_raw', f'/{camera}/color/camera_info', f'/{camera}')
         for camera in cameras])
    for camera in cameras:
        assert results[f'/{camera}/points'].header.frame_id == 'synthetic_optical_frame'
