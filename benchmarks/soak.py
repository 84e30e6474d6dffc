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
Soak: many frames through ``genpercept_node`` (own process), memory, threads and fds sampled.

Run ``python benchmarks/soak.py --help``. Two phases against one node process:

1. closed loop: ``--frames`` frames (default 10,000), each published (with camera_info) until
   its outputs came back, every ``--sample-every`` frames the node's resident memory (VmRSS),
   thread count and open file descriptors are read from ``/proc/<pid>``. Growth is measured
   from the sample after ``--warmup-frames`` to the last one.
2. overload: the processing resolution is raised at runtime (``--overload-resolution``) so that
   inference is much slower than a ``--overload-rate`` Hz camera; for ``--overload-seconds``
   frames stamped with the wall clock are published. The node keeps only the newest frame, so
   the input rate must not build a queue: the latency of the last quarter of outputs is
   compared with the first quarter, and the node's ``frames_dropped`` count is read from
   ``/diagnostics``.

Finally SIGINT stops the node; the exit code, time to exit and any traceback are reported.
CPU, tiny weights (``genpercept make-tiny-weights`` into a temp dir unless ``--model-root``),
32x24 input at processing resolution 32 by default; torch runs one thread per process
(``OMP_NUM_THREADS=1``) so a busy machine does not thrash.
"""

import argparse
import datetime
import json
import os
import platform
import random
import signal
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
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import qos_profile_sensor_data
from ros_camera import box_room_frames
from ros_camera import spin_while_ok
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2

TOPICS = ('depth/image', 'normals/image', 'points')
NAMESPACE = '/soak'
NODE_NAME = 'genpercept_node'


def build_parser():
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model-root', default=None,
                        help='weights folder (default: tiny weights in a temp dir)')
    parser.add_argument('--frames', type=int, default=10000)
    parser.add_argument('--sample-every', type=int, default=500)
    parser.add_argument('--warmup-frames', type=int, default=500,
                        help='growth is measured from the sample at this frame')
    parser.add_argument('--width', type=int, default=32)
    parser.add_argument('--height', type=int, default=24)
    parser.add_argument('--processing-resolution', type=int, default=32)
    parser.add_argument('--overload-seconds', type=float, default=30.0)
    parser.add_argument('--overload-rate', type=float, default=30.0)
    parser.add_argument('--overload-resolution', type=int, default=256,
                        help='processing_resolution during the overload phase (slower)')
    parser.add_argument('--frame-timeout', type=float, default=10.0,
                        help='seconds to wait for one frame before counting it lost')
    parser.add_argument('--json', default=None, metavar='OUT')
    return parser


def proc_status(pid):
    """Return (rss_mib, threads, open_fds) of process ``pid`` from /proc."""
    rss_kib = threads = 0
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                rss_kib = int(line.split()[1])
            elif line.startswith('Threads:'):
                threads = int(line.split()[1])
    return rss_kib / 1024.0, threads, len(os.listdir(f'/proc/{pid}/fd'))


def counter_stamp(index):
    """Return a distinct, increasing stamp for closed-loop frame ``index``."""
    return Time(sec=1000 + index // 1000, nanosec=(index % 1000) * 1000000)


def wall_stamp():
    """Return the wall clock as (Time, float seconds)."""
    now = time.time()
    seconds = int(now)
    nanoseconds = int((now - seconds) * 1e9)
    return Time(sec=seconds, nanosec=nanoseconds), seconds + nanoseconds * 1e-9


class Probe:
    """Camera publishers, output subscribers and a /diagnostics reader on a spin thread."""

    def __init__(self, context):
        self.context = context
        self.node = Node('genpercept_soak_probe', context=context)
        self.image_pub = self.node.create_publisher(Image, f'{NAMESPACE}/image',
                                                    qos_profile_sensor_data)
        self.info_pub = self.node.create_publisher(CameraInfo, f'{NAMESPACE}/camera_info',
                                                   qos_profile_sensor_data)
        self.condition = threading.Condition()
        self.latest = dict.fromkeys(TOPICS)   # last (stamp tuple, receive time)
        self.arrivals = []                                 # (stamp s, receive time), points
        self.diagnostics = {}
        for topic in TOPICS:
            message_type = PointCloud2 if topic == 'points' else Image
            self.node.create_subscription(message_type, f'{NAMESPACE}/{topic}',
                                          self._callback(topic), 10)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=spin_while_ok, args=(self.executor, context),
                                       daemon=True)
        self.thread.start()

    def _callback(self, topic):
        def record(msg):
            received = time.time()
            stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            with self.condition:
                self.latest[topic] = (stamp, received)
                if topic == 'points':
                    self.arrivals.append((stamp[0] + stamp[1] * 1e-9, received))
                self.condition.notify_all()
        return record

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name.endswith(': camera'):
                with self.condition:
                    self.diagnostics = {item.key: item.value for item in status.values}

    def publish(self, image, info, stamp):
        """Publish ``image`` and ``info`` with ``stamp``."""
        image.header.stamp = stamp
        info.header.stamp = stamp
        self.info_pub.publish(info)
        self.image_pub.publish(image)

    def wait_outputs(self, stamp, timeout, resend=None):
        """Wait until every topic delivered ``stamp``; call ``resend`` every 0.5 s."""
        key = (stamp.sec, stamp.nanosec)
        deadline = time.monotonic() + timeout
        next_resend = time.monotonic() + 0.5
        with self.condition:
            while True:
                if all(value is not None and value[0] == key for value in self.latest.values()):
                    return True
                now = time.monotonic()
                if now >= deadline:
                    return False
                if resend is not None and now >= next_resend:
                    self.condition.release()
                    try:
                        resend()
                    finally:
                        self.condition.acquire()
                    next_resend = now + 0.5
                self.condition.wait(min(0.1, deadline - now))


def start_node(model_root, processing_resolution, log_file):
    """Start the node process (one torch thread); return the Popen."""
    command = [sys.executable, '-m', 'genpercept_ros.node', '--ros-args',
               '-r', f'__ns:={NAMESPACE}', '-p', f'model_root:={model_root}',
               '-p', 'device:=cpu', '-p', f'processing_resolution:={processing_resolution}',
               '-p', 'diagnostics_period_s:=0.5']
    env = dict(os.environ, OMP_NUM_THREADS='1', HF_HUB_OFFLINE='1', TQDM_DISABLE='1')
    return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)


def closed_loop(probe, pid, frames, info, count, sample_every, timeout, samples, lost):
    """Serve ``count`` frames one after the other; append /proc samples every N frames."""
    start = time.monotonic()
    for index in range(count):
        image = frames[index % len(frames)]
        stamp = counter_stamp(index)
        probe.publish(image, info, stamp)
        if not probe.wait_outputs(stamp, timeout, lambda: probe.publish(image, info, stamp)):
            lost.append(index)
        if (index + 1) % sample_every == 0 or index + 1 == count:
            rss, threads, fds = proc_status(pid)
            elapsed = time.monotonic() - start
            samples.append({'frame': index + 1, 'rss_mib': round(rss, 1), 'threads': threads,
                            'fds': fds, 'elapsed_s': round(elapsed, 1)})
            print(f'frame {index + 1:6d}: rss {rss:8.1f} MiB, threads {threads}, fds {fds}, '
                  f'{(index + 1) / elapsed:6.1f} frames/s', flush=True)


def set_processing_resolution(probe, value):
    """Change the node's processing_resolution at runtime; return whether it was accepted."""
    client = AsyncParameterClient(probe.node, f'{NAMESPACE}/{NODE_NAME}')
    if not client.wait_for_services(timeout_sec=10.0):
        return False
    future = client.set_parameters([Parameter('processing_resolution', value=value)])
    deadline = time.monotonic() + 10.0
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    return future.done() and all(result.successful for result in future.result().results)


def overload(probe, pid, frames, info, rate, seconds):
    """Publish at ``rate`` Hz with wall-clock stamps; return latency and drop figures."""
    with probe.condition:
        probe.arrivals.clear()
        before = dict(probe.diagnostics)
    published = []
    period = 1.0 / rate
    next_time = time.time()
    until = next_time + seconds
    rss_samples = []
    index = 0
    while time.time() < until:
        now = time.time()
        if now < next_time:
            time.sleep(min(next_time - now, 0.005))
            continue
        stamp, stamp_s = wall_stamp()
        probe.publish(frames[index % len(frames)], info, stamp)
        published.append(stamp_s)
        index += 1
        next_time += period
        if index % int(rate) == 0:
            rss_samples.append(proc_status(pid)[0])
    time.sleep(3.0)   # the frame in flight and the last diagnostics
    with probe.condition:
        arrivals = list(probe.arrivals)
        after = dict(probe.diagnostics)
    latencies = [received - stamp for stamp, received in arrivals]
    quarter = max(1, len(latencies) // 4)

    def counter(values, name):
        return int(values.get(name, 0))

    return {
        'rate_hz': rate, 'seconds': seconds, 'published': len(published),
        'processed': len(arrivals),
        'dropped_by_node': counter(after, 'frames_dropped') - counter(before, 'frames_dropped'),
        'latency_s_p50': _round(np.percentile(latencies, 50)) if latencies else None,
        'latency_s_p99': _round(np.percentile(latencies, 99)) if latencies else None,
        'latency_s_max': _round(max(latencies)) if latencies else None,
        'latency_s_first_quarter_median': _round(np.median(latencies[:quarter]))
        if latencies else None,
        'latency_s_last_quarter_median': _round(np.median(latencies[-quarter:]))
        if latencies else None,
        'rss_mib_min': _round(min(rss_samples)) if rss_samples else None,
        'rss_mib_max': _round(max(rss_samples)) if rss_samples else None,
    }


def _round(value):
    return round(float(value), 3)


def stop_node(process, output_path):
    """SIGINT the node; return exit code, seconds to exit and whether a traceback appeared."""
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30.0)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    waited = time.monotonic() - sent
    with open(output_path, errors='replace') as log:
        text = log.read()
    return {'exit_code': process.returncode, 'exit_s': round(waited, 2),
            'traceback': 'Traceback' in text, 'log_tail': text[-2000:]}


def growth(samples, warmup_frames):
    """Return growth figures from the first sample at/after ``warmup_frames`` to the last."""
    base = next((sample for sample in samples if sample['frame'] >= warmup_frames), samples[0])
    last = samples[-1]
    return {'from_frame': base['frame'], 'to_frame': last['frame'],
            'rss_growth_percent': round(100.0 * (last['rss_mib'] - base['rss_mib'])
                                        / base['rss_mib'], 2),
            'rss_max_mib': max(sample['rss_mib'] for sample in samples),
            'threads': (base['threads'], last['threads']), 'fds': (base['fds'], last['fds'])}


def run_soak(args, model_root):
    """Run both phases against a fresh node process; return the report dict."""
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.randint(101, 200)))
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    report = {'date_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds'), 'machine': f'{platform.machine()} {os.cpu_count()} cpus',
        'python': platform.python_version(), 'frames': args.frames,
        'size': f'{args.width}x{args.height}',
        'processing_resolution': args.processing_resolution, 'topics': list(TOPICS)}
    frames, info = box_room_frames(args.width, args.height, count=16, shift_px=1)
    log = tempfile.NamedTemporaryFile('w+', prefix='genpercept_soak_', suffix='.log',
                                      delete=False)
    process = start_node(model_root, args.processing_resolution, log)
    context = Context()
    rclpy.init(context=context)
    try:
        probe = Probe(context)
        first = counter_stamp(-1)
        resend = (lambda: probe.publish(frames[0], info, first))
        if not probe.wait_outputs(first, 300.0, resend):
            raise RuntimeError(f'the node produced no output; log: {log.name}')
        report['at_start'] = dict(zip(('rss_mib', 'threads', 'fds'),
                                      proc_status(process.pid)))
        samples, lost = [], []
        started = time.monotonic()
        closed_loop(probe, process.pid, frames, info, args.frames, args.sample_every,
                    args.frame_timeout, samples, lost)
        report['closed_loop_s'] = round(time.monotonic() - started, 1)
        report['samples'] = samples
        report['lost_frames'] = len(lost)
        report['growth'] = growth(samples, args.warmup_frames)
        if args.overload_seconds > 0:
            accepted = set_processing_resolution(probe, args.overload_resolution)
            report['overload_resolution_accepted'] = accepted
            report['overload'] = overload(probe, process.pid, frames, info,
                                          args.overload_rate, args.overload_seconds)
            report['overload']['processing_resolution'] = args.overload_resolution
        with probe.condition:
            report['diagnostics'] = {key: value for key, value in probe.diagnostics.items()
                                     if key.startswith(('frames_', 'errors'))}
        report['at_end'] = dict(zip(('rss_mib', 'threads', 'fds'), proc_status(process.pid)))
    finally:
        report['shutdown'] = stop_node(process, log.name) if process.poll() is None else \
            {'exit_code': process.returncode, 'exit_s': None, 'traceback': None}
        rclpy.try_shutdown(context=context)
    report['node_log'] = log.name
    return report


def main(argv=None):
    """Run the soak; print and optionally write the JSON report; return 0 when it held."""
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='genpercept_soak_weights_') as scratch:
        model_root = args.model_root
        if model_root is None:
            model_root = os.path.join(scratch, 'tiny')
            subprocess.run([sys.executable, '-m', 'genpercept_ros.cli', 'make-tiny-weights',
                            model_root], check=True, stdout=subprocess.DEVNULL)
        report = run_soak(args, model_root)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, 'w') as out:
            out.write(text + '\n')
    held = (report['growth']['rss_growth_percent'] < 5.0 and report['lost_frames'] == 0
            and report['growth']['threads'][1] <= report['growth']['threads'][0]
            and report['growth']['fds'][1] <= report['growth']['fds'][0]
            and report['shutdown']['exit_code'] == 0 and not report['shutdown']['traceback'])
    return 0 if held else 1


if __name__ == '__main__':
    sys.exit(main())
