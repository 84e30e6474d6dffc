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
What the plain and the lifecycle node share: parameters, model, topics, worker, diagnostics.

The executor thread only runs callbacks that store messages; one worker thread takes the
newest frame of every camera (waiting ``batch_window_ms`` for the other cameras), runs the
pipeline on them as one batch and publishes.
"""

import gc
import re
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
import rclpy.logging

from .messages.errors import CodecError
from .node_camera import CameraChannel
from .node_camera import make_qos
from .node_diagnostics import Diagnostics
from .node_parameters import declare_parameters
from .pipeline import check_frame_size
from .pipeline import decode_image
from .pipeline import Frame
from .pipeline import FramePipeline
from .pipeline import FrameSizeError
from .pipeline import INPUT_SIZE_PROBLEM
from .pipeline import PipelineSettings
from .pipeline_parameters import PARAMETER_SPECS
from .pipeline_parameters import resolve_device
from .pipeline_parameters import resolve_dtype
from .pipeline_parameters import validate_parameters

# The same problem is logged at most this often per camera (the count goes to diagnostics).
LOG_THROTTLE_S = 5.0
_THROTTLE_KEYS = 256
_NUMBERS = re.compile(r'\d+(\.\d+)?')
# How long shutdown waits for the worker (an inference in progress cannot be interrupted);
# with the teardown after it the process ends within 2 s of SIGINT/SIGTERM.
WORKER_JOIN_S = 1.0


def is_out_of_memory(error):
    """Return whether ``error`` is a (CUDA) out-of-memory error."""
    return type(error).__name__ == 'OutOfMemoryError' or 'out of memory' in str(error).lower()


def free_device_memory(predictor=None):
    """Release cached accelerator memory (no-op without CUDA); never raises."""
    if predictor is not None:
        try:
            predictor.free_memory()
        except Exception:  # noqa: B902 - freeing memory must never raise
            pass
    gc.collect()
    try:
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: B902 - freeing memory must never raise
        pass


class NodeCore:
    """The node's behaviour, attached to an rclpy ``Node`` or ``LifecycleNode``."""

    def __init__(self, node):
        """Declare and validate parameters (raises ``ValueError`` for invalid values)."""
        self.node = node
        self.logger = node.get_logger()
        self.params = declare_parameters(node)
        self.settings = PipelineSettings.from_parameters(self.params)
        node.add_on_set_parameters_callback(self._on_set_parameters)
        self.pipeline = None
        self.device = None
        self.dtype = None
        self.load_time_s = None
        self.max_batch_size = 0
        self.last_batch_size = 0
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._worker = None
        self._abandoned_worker = None
        self._active = False
        self.channels = [CameraChannel(name, self._condition)
                         for name in (self.params['cameras'] or [''])]
        self._diagnostics = Diagnostics(node.get_fully_qualified_name())
        self._diagnostics_publisher = None
        self._diagnostics_timer = None
        self._throttle = {}
        self._normals_agreement = {}

    # Parameters ----------------------------------------------------------------------------

    def _on_set_parameters(self, parameters):
        candidate = dict(self.params)
        for parameter in parameters:
            if parameter.name in PARAMETER_SPECS:
                candidate[parameter.name] = parameter.value
        try:
            checked = validate_parameters(candidate)
            settings = PipelineSettings.from_parameters(checked)
        except ValueError as error:
            self.logger.warning(f'rejected parameter change: {error}')
            return SetParametersResult(successful=False, reason=str(error))
        self.params = checked
        self.settings = settings
        if self.pipeline is not None:
            self.pipeline.settings = settings
        return SetParametersResult(successful=True)

    # Model -----------------------------------------------------------------------------------

    def load_model(self):
        """Load the predictor (raises WeightsError/ValueError/RuntimeError with the reason)."""
        import torch

        from .model.predictor import GenPerceptPredictor
        params = self.params
        self.device = resolve_device(params['device'], torch.cuda.is_available())
        self.dtype = resolve_dtype(params['dtype'], self.device)
        where = params['model_root'] or 'the Hugging Face cache'
        self.logger.info(
            f"loading depth_model={params['depth_model']!r} "
            f"normal_model={params['normal_model']!r} from {where} "
            f'on {self.device} ({self.dtype})')
        start = time.monotonic()
        predictor = GenPerceptPredictor.from_pretrained(
            depth_model=params['depth_model'] or None,
            normal_model=params['normal_model'] or None,
            model_root=params['model_root'] or None, device=self.device, dtype=self.dtype,
            allow_pickle=params['allow_pickle'])
        self.load_time_s = time.monotonic() - start
        self.pipeline = FramePipeline(predictor, self.settings)
        self.logger.info(f'loaded {predictor.describe()} in {self.load_time_s:.2f} s')

    def unload_model(self):
        """Drop the predictor and free accelerator memory."""
        self.pipeline = None
        free_device_memory()

    # Topics ----------------------------------------------------------------------------------

    def create_publishers(self):
        """Advertise every output of every camera, and /diagnostics."""
        qos = make_qos(self.params['output_reliability'], self.params['output_depth'])
        topics = self.pipeline.output_topics()
        for channel in self.channels:
            channel.create_publishers(self.node, topics, qos)
        self._diagnostics_publisher = self.node.create_publisher(DiagnosticArray,
                                                                 '/diagnostics', 10)
        self._diagnostics_timer = self.node.create_timer(self.params['diagnostics_period_s'],
                                                         self.publish_diagnostics)
        names = ', '.join(channel.topic(topic) for channel in self.channels for topic in topics)
        self.logger.info(f'publishing {names}')

    def destroy_publishers(self):
        """Withdraw all outputs."""
        for channel in self.channels:
            channel.destroy_publishers(self.node)
        if self._diagnostics_timer is not None:
            self.node.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        if self._diagnostics_publisher is not None:
            self.node.destroy_publisher(self._diagnostics_publisher)
            self._diagnostics_publisher = None

    def activate(self):
        """Subscribe the inputs and start the worker."""
        for channel in self.channels:
            channel.create_subscriptions(self.node, self.params, self._on_reference)
        # A fresh event per worker: a previous worker still finishing an inference keeps its
        # own (set) event and ends instead of serving alongside the new one.
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, args=(self._stop,),
                                        name='genpercept_worker', daemon=True)
        self._worker.start()
        self._active = True
        transport = 'image/compressed' if self.params['input_transport'] == 'compressed' \
            else 'image'
        inputs = ', '.join(channel.topic(transport) for channel in self.channels)
        self.logger.info(f'subscribed to {inputs} (+ camera_info)')

    def deactivate(self):
        """Unsubscribe and stop the worker (waits for a running inference up to a bound)."""
        self._active = False
        for channel in self.channels:
            channel.destroy_subscriptions(self.node)
        self.stop_worker()

    def stop_worker(self):
        """Ask the worker to stop and wait for it at most ``WORKER_JOIN_S``."""
        self._stop.set()
        with self._condition:
            self._condition.notify_all()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            if worker is self._abandoned_worker:
                # Already waited for this one (shutdown then destroy_node): do not wait twice.
                if worker.is_alive():
                    return
            else:
                worker.join(WORKER_JOIN_S)
            if worker.is_alive():
                self._abandoned_worker = worker
                # Not the node logger: at shutdown its /rosout publisher may be gone already.
                rclpy.logging.get_logger(self.node.get_name()).warning(
                    'inference still running at shutdown; not waiting for it')
                return
        self._worker = None

    def worker_running(self):
        """Return whether a worker thread is still running (e.g. stuck in inference)."""
        return self._worker is not None and self._worker.is_alive()

    def shutdown(self):
        """Stop everything (idempotent)."""
        self.stop_worker()
        if self._active:
            self._active = False
            for channel in self.channels:
                try:
                    channel.destroy_subscriptions(self.node)
                except Exception:  # noqa: B902 - the context may already be gone
                    pass

    # Callbacks -------------------------------------------------------------------------------

    def _on_reference(self, channel, msg):
        if self.settings.scale_mode != 'reference' or self.pipeline is None:
            return
        try:
            self.pipeline.add_reference(msg, camera=channel.name,
                                        camera_info=channel.reference_info)
        except (TypeError, ValueError) as error:
            self.report_problem(channel, 'reference', f'cannot use metric reference: {error}')

    def publish_diagnostics(self):
        """Publish one DiagnosticArray (timer callback)."""
        publisher = self._diagnostics_publisher
        if publisher is None:
            return
        pipeline = self.pipeline
        scale_reports = {}
        if pipeline is None:
            model_status = (DiagnosticStatus.ERROR, 'model not loaded', {})
        else:
            predictor = pipeline.predictor
            model_status = (DiagnosticStatus.OK, predictor.describe(), {
                'depth_model': self.params['depth_model'] or 'disabled',
                'normal_model': self.params['normal_model'] or 'disabled',
                'model_root': self.params['model_root'] or 'huggingface cache',
                'device': str(self.device), 'dtype': str(self.dtype),
                'load_time_s': f'{self.load_time_s:.3f}',
                'processing_resolution': str(self.settings.processing_resolution),
                'output_resolution': self.settings.output_resolution,
                'state': 'active' if self._active else 'inactive',
                'batch_size_last': str(self.last_batch_size),
                'batch_size_max': str(self.max_batch_size),
            })
            scale_reports = {channel.name: pipeline.scale_status(channel.name)
                             for channel in self.channels}
        extra = {name: {'normals_agreement_median_deg': f'{value:.3g}'}
                 for name, value in self._normals_agreement.items()}
        publisher.publish(self._diagnostics.build(
            self.node.get_clock().now().to_msg(), time.monotonic(), model_status,
            self.channels, scale_reports, extra))

    def report_problem(self, channel, kind, message, level='error'):
        """Count a problem in diagnostics and log it, throttled per camera and message."""
        channel.stats.problems[kind] += 1
        # Distinct messages are logged separately; the same one at most every LOG_THROTTLE_S.
        # Numbers are left out of the key so that a stream of e.g. corrupt frames of varying
        # byte counts is still one message.
        key = (channel.name, kind, _NUMBERS.sub('#', message))
        if len(self._throttle) > _THROTTLE_KEYS:
            self._throttle.clear()
        now = time.monotonic()
        last, suppressed = self._throttle.get(key, (None, 0))
        if last is not None and now - last < LOG_THROTTLE_S:
            self._throttle[key] = (last, suppressed + 1)
            return
        self._throttle[key] = (now, 0)
        where = f'[{channel.name}] ' if channel.name else ''
        more = f' ({suppressed} more since the last report)' if suppressed else ''
        text = f'{where}{kind}: {message}{more}'
        # rclpy refuses different severities from one call site, hence two calls.
        if level == 'error':
            self.logger.error(text)
        else:
            self.logger.warning(text)

    # Worker ------------------------------------------------------------------------------------

    def _work(self, stop):
        while not stop.is_set():
            batch = self._next_batch(stop)
            if not batch:
                continue
            try:
                self._process(batch, stop)
            except Exception as error:  # noqa: B902 - the worker must outlive any frame
                if stop.is_set() or not self.node.context.ok():
                    # A signal shut the context down while this frame was being published.
                    return
                self.report_problem(batch[0][0], 'internal',
                                    f'{type(error).__name__}: {error}')

    def _next_batch(self, stop):
        """Wait for a frame, then up to ``batch_window_ms`` for the other cameras' frames."""
        with self._condition:
            arrivals = []
            while not stop.is_set():
                arrivals = [channel.pending_since() for channel in self.channels
                            if channel.pending_since() is not None]
                if arrivals:
                    break
                self._condition.wait(0.25)
            if not arrivals:
                return []
            window_s = self.params['batch_window_ms'] / 1000.0
            if len(self.channels) > 1 and window_s > 0:
                deadline = min(arrivals) + window_s
                while not stop.is_set():
                    remaining = deadline - time.monotonic()
                    missing = [channel for channel in self.channels
                               if channel.pending_since() is None]
                    if not missing or remaining <= 0:
                        break
                    self._condition.wait(remaining)
            return [(channel, channel.take()) for channel in self.channels
                    if channel.pending_since() is not None]

    def _process(self, batch, stop):
        pipeline = self.pipeline
        if pipeline is None:
            return
        frames, sources = [], []
        for channel, (msg, arrival) in batch:
            wanted = channel.wanted_topics()
            if not wanted:
                channel.stats.skipped_no_subscribers += 1
                continue
            settings = pipeline.settings
            try:
                rgb = decode_image(msg, max_pixels=settings.max_input_pixels)
                check_frame_size(rgb.shape[1], rgb.shape[0], settings)
            except FrameSizeError as error:
                self.report_problem(channel, INPUT_SIZE_PROBLEM, str(error))
                continue
            except CodecError as error:
                self.report_problem(channel, 'decode', f'cannot decode input image: {error}')
                continue
            self._check_stamp(channel, msg.header.stamp)
            frames.append(Frame(rgb=rgb, header=msg.header, camera_info=channel.camera_info,
                                camera=channel.name, wanted=wanted))
            sources.append((channel, arrival))
        if not frames:
            return
        self.last_batch_size = len(frames)
        self.max_batch_size = max(self.max_batch_size, len(frames))
        results = self._predict(pipeline, frames, sources)
        for (channel, arrival), result in zip(sources, results):
            if result is None or stop.is_set():
                continue
            for kind, message in result.problems:
                self.report_problem(channel, kind, message, level='warning')
            for topic, message in result.outputs.items():
                publisher = channel.publishers.get(topic)
                if publisher is not None:
                    publisher.publish(message)
            if result.normals_agreement_deg is not None:
                self._normals_agreement[channel.name] = result.normals_agreement_deg
            latency = time.monotonic() - arrival
            channel.stats.processed += 1
            channel.stats.latency_sum_s += latency
            channel.stats.latency_max_s = max(channel.stats.latency_max_s, latency)

    def _check_stamp(self, channel, stamp):
        """Report image stamps that go backwards (bag loop, restarted driver or clock)."""
        seconds = stamp.sec + stamp.nanosec * 1e-9
        last, channel.last_stamp_s = channel.last_stamp_s, seconds
        if last is not None and seconds < last:
            self.report_problem(channel, 'time_backwards', (
                f'image stamp went backwards by {last - seconds:.3f} s (bag loop or restarted '
                'driver?); frame served, scale tracking restarts'), level='warning')

    def _predict(self, pipeline, frames, sources):
        """Run the pipeline; on failure retry frames one by one so one bad frame stays alone."""
        try:
            return pipeline.process(frames)
        except Exception as error:  # noqa: B902 - any model failure must not stop the node
            if is_out_of_memory(error):
                free_device_memory(pipeline.predictor)
                for channel, _ in sources:
                    self.report_problem(channel, 'out_of_memory', (
                        f'inference ran out of memory ({error}); frame dropped, cache freed. '
                        'Lower processing_resolution or use fewer cameras per node.'))
                return [None] * len(frames)
            if len(frames) == 1:
                self.report_problem(sources[0][0], 'inference',
                                    f'inference failed: {type(error).__name__}: {error}')
                return [None]
        results = []
        for frame, source in zip(frames, sources):
            results.extend(self._predict(pipeline, [frame], [source]))
        return results
