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
End to end: ``genpercept_node`` in its own process fed by a synthetic camera at a fixed rate.

Run ``python benchmarks/bench_node_e2e.py --help``. The camera publishes box-room frames
(``genpercept_ros.geometry.synthetic.box_room``) as rgb8 Images with camera_info, best effort,
at ``--rate`` Hz for ``--seconds`` after a warm-up; every header stamp is the wall-clock publish
time, so publish-to-output latency is ``receive time - stamp`` for each output topic. Reported:
latency p50/p90/p99/max per topic, the share of published frames that produced each output
(the node keeps only the newest frame, so the rest are dropped by design), and the output rate.
CPU: tiny weights (written to a temp dir when ``--model-root`` is not given) at 64x48; GPU:
pass ``--model-root`` (real or ``make-tiny-weights --full-size`` weights), ``--device cuda``.
"""

import argparse
import datetime
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time

try:
    import genpercept_ros  # noqa: F401
except ImportError:  # run as a script from a checkout without installing the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from builtin_interfaces.msg import Time
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from ros_camera import box_room_frames
from ros_camera import spin_while_ok
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2

DEFAULT_TOPICS = ('depth/image', 'normals/image', 'points')
NODE_COMMAND = 'import sys; from genpercept_ros.node import main; sys.exit(main())'


def build_parser():
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model-root', default=None,
                        help='weights folder (default: tiny weights in a temp dir)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dtype', default='auto')
    parser.add_argument('--width', type=int, default=64)
    parser.add_argument('--height', type=int, default=48)
    parser.add_argument('--processing-resolution', type=int, default=None,
                        help='node processing_resolution (default: the longest image edge)')
    parser.add_argument('--rate', type=float, default=30.0, help='camera rate, Hz')
    parser.add_argument('--seconds', type=float, default=10.0, help='measured duration')
    parser.add_argument('--warmup-seconds', type=float, default=3.0,
                        help='camera runs this long before measuring (after first output)')
    parser.add_argument('--topics', default=','.join(DEFAULT_TOPICS),
                        help='output topics to subscribe to and time (comma-separated)')
    parser.add_argument('--param', action='append', default=[], metavar='NAME:=VALUE',
                        help='extra node parameter (repeatable), e.g. acceleration:=compile')
    parser.add_argument('--node-env', action='append', default=[], metavar='NAME=VALUE',
                        help='extra environment of the node process (repeatable), e.g. '
                             'OMP_NUM_THREADS=1 on a CPU shared with other jobs')
    parser.add_argument('--startup-timeout', type=float, default=600.0)
    parser.add_argument('--json', default=None, metavar='OUT')
    return parser


def percentile(values, q):
    """Return the ``q`` percentile of ``values`` (linear interpolation), None when empty."""
    return float(np.percentile(values, q)) if len(values) else None


def stamp_now():
    """Return the wall-clock time as a builtin_interfaces/Time and as float seconds."""
    now = time.time()
    seconds = int(now)
    nanoseconds = int((now - seconds) * 1e9)
    return Time(sec=seconds, nanosec=nanoseconds), seconds + nanoseconds * 1e-9


class Probe:
    """The camera and the output subscribers, spun on a background thread."""

    def __init__(self, namespace, topics, context):
        self.context = context
        self.node = Node('genpercept_bench_probe', context=context)
        self.image_pub = self.node.create_publisher(Image, f'{namespace}/image',
                                                    qos_profile_sensor_data)
        self.info_pub = self.node.create_publisher(CameraInfo, f'{namespace}/camera_info',
                                                   qos_profile_sensor_data)
        self.lock = threading.Lock()
        self.arrivals = {topic: [] for topic in topics}  # (stamp, receive time)
        for topic in topics:
            message_type = PointCloud2 if topic.startswith('points') else Image
            self.node.create_subscription(message_type, f'{namespace}/{topic}',
                                          self._callback(topic), 10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=spin_while_ok, args=(self.executor, context),
                                       daemon=True)
        self.thread.start()

    def _callback(self, topic):
        def record(msg):
            received = time.time()
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            with self.lock:
                self.arrivals[topic].append((stamp, received))
        return record

    def publish(self, image, info):
        """Stamp ``image`` and ``info`` with the current time and publish; return the stamp."""
        stamp, seconds = stamp_now()
        image.header.stamp = stamp
        info.header.stamp = stamp
        self.info_pub.publish(info)
        self.image_pub.publish(image)
        return seconds

    def received(self, topic):
        """Return a copy of the (stamp, receive time) list of ``topic``."""
        with self.lock:
            return list(self.arrivals[topic])


def run_camera(probe, frames, info, rate, until, published):
    """Publish frames at ``rate`` Hz on a fixed schedule until ``until`` (time.time())."""
    period = 1.0 / rate
    next_time = time.time()
    index = 0
    while True:
        now = time.time()
        if now >= until:
            return
        if now < next_time:
            time.sleep(min(next_time - now, 0.005))
            continue
        published.append(probe.publish(frames[index % len(frames)], info))
        index += 1
        next_time += period
        if next_time < now - period:  # fell behind (machine busy): keep the rate, skip ticks
            next_time = now + period


def start_node(args, namespace, model_root, env):
    """Start genpercept_node in its own process; return the Popen."""
    resolution = args.processing_resolution or max(args.width, args.height)
    parameters = [f'model_root:={model_root}', f'device:={args.device}',
                  f'dtype:={args.dtype}', f'processing_resolution:={resolution}']
    parameters += args.param
    command = [sys.executable, '-c', NODE_COMMAND, '--ros-args', '-r', f'__ns:={namespace}']
    for parameter in parameters:
        command += ['-p', parameter]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def summarise(published, arrivals, start, end):
    """Return latency and delivery statistics of frames published in [start, end)."""
    sent = [stamp for stamp in published if start <= stamp < end]
    sent_keys = {round(stamp, 6) for stamp in sent}
    result = {}
    for topic, entries in arrivals.items():
        latencies = [(received - stamp) * 1000.0 for stamp, received in entries
                     if round(stamp, 6) in sent_keys]
        result[topic] = {
            'outputs': len(latencies),
            'share_processed': len(latencies) / len(sent) if sent else None,
            'output_rate_hz': len(latencies) / (end - start),
            'latency_ms': {'p50': percentile(latencies, 50), 'p90': percentile(latencies, 90),
                           'p99': percentile(latencies, 99),
                           'max': max(latencies) if latencies else None,
                           'mean': float(np.mean(latencies)) if latencies else None}}
    return len(sent), result


def main(argv=None):
    """Run the benchmark; return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    env = dict(os.environ)
    env.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(101, 200)))
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env.setdefault('HF_HUB_OFFLINE', '1')
    for item in args.node_env:
        name, separator, value = item.partition('=')
        if not separator or not name:
            raise SystemExit(f'--node-env expects NAME=VALUE, got {item!r}')
        env[name] = value
    for key in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE'):
        os.environ[key] = env[key]
    topics = [topic.strip() for topic in args.topics.split(',') if topic.strip()]
    with tempfile.TemporaryDirectory(prefix='gp_e2e_') as scratch:
        model_root, weights_kind = args.model_root, 'given'
        if model_root is None:
            from genpercept_ros.model.tiny_weights import make_tiny_weights
            model_root = make_tiny_weights(os.path.join(scratch, 'weights'),
                                           models=['depth-v2', 'normal-v2'])
            weights_kind = 'tiny random (temporary)'
        return measure(args, argv, env, topics, str(model_root), weights_kind)


def measure(args, argv, env, topics, model_root, weights_kind):
    """Start the node, drive the camera, collect and report the figures."""
    namespace = f'/gp_bench_{os.getpid()}'
    frames, info = box_room_frames(args.width, args.height, count=30, shift_px=5)
    context = Context()
    rclpy.init(context=context)
    node_process = start_node(args, namespace, model_root, env)
    log_lines = []
    reader = threading.Thread(target=lambda: log_lines.extend(node_process.stdout), daemon=True)
    reader.start()
    try:
        probe = Probe(namespace, topics, context)
        published = []
        started = time.time()
        # Start-up: publish until the first output arrives (model load, first call).
        while not probe.received(topics[0]):
            if node_process.poll() is not None:
                raise SystemExit('genpercept_node exited during start-up:\n'
                                 + ''.join(log_lines[-20:]))
            if time.time() - started > args.startup_timeout:
                raise SystemExit(f'no output within {args.startup_timeout} s')
            run_camera(probe, frames, info, args.rate, time.time() + 0.5, published)
        startup_s = time.time() - started
        window_start = time.time() + args.warmup_seconds
        window_end = window_start + args.seconds
        run_camera(probe, frames, info, args.rate, window_end, published)
        time.sleep(min(5.0, 1.0 + args.seconds / 10))  # let the last frames come out
        arrivals = {topic: probe.received(topic) for topic in topics}
    finally:
        node_process.terminate()
        try:
            node_process.wait(10)
        except subprocess.TimeoutExpired:
            node_process.kill()
        rclpy.try_shutdown(context=context)
    sent, per_topic = summarise(published, arrivals, window_start, window_end)
    report = {
        'date_utc': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'command': 'python benchmarks/bench_node_e2e.py ' + ' '.join(argv),
        'platform': platform.platform(), 'cpu_count': os.cpu_count(),
        'load_average': os.getloadavg(), 'weights': model_root, 'weights_kind': weights_kind,
        'device': args.device, 'dtype': args.dtype, 'size': [args.width, args.height],
        'node_env': args.node_env, 'rate_hz': args.rate, 'seconds': args.seconds,
        'startup_s': startup_s,
        'published': sent, 'topics': per_topic}
    print(f'published {sent} frames at {args.rate:g} Hz over {args.seconds:g} s '
          f'({args.width}x{args.height}, {args.device}, {weights_kind}); start-up '
          f'{startup_s:.1f} s')
    for topic, stats in per_topic.items():
        latency = stats['latency_ms']
        share = stats['share_processed']
        print(f"  {topic:>16}: {stats['outputs']:4d} outputs ({(share or 0) * 100:5.1f} % of "
              f"frames, {stats['output_rate_hz']:.1f} Hz), latency ms p50 "
              f"{latency['p50'] or float('nan'):.1f} p90 {latency['p90'] or float('nan'):.1f} "
              f"p99 {latency['p99'] or float('nan'):.1f} max {latency['max'] or float('nan'):.1f}")
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as stream:
            json.dump(report, stream, indent=2)
        print(f'wrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
