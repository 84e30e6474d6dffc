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
The node's inference thread: newest frame of every camera -> pipeline -> publishers.

The executor thread only runs callbacks that store messages (:class:`CameraChannel`); this
worker takes the newest frame of every camera (waiting ``batch_window_ms`` for the other
cameras), decodes and checks it, runs :meth:`FramePipeline.process` on the batch and publishes.
Under overload the newest frame wins and nothing queues.
"""

import threading
import time

import rclpy.logging

from ..messages.errors import CodecError
from ..pipeline import decode_image
from ..pipeline import Frame
from ..pipeline import FrameSizeError
from ..pipeline import INPUT_SIZE_PROBLEM

# How long shutdown waits for the worker (an inference in progress cannot be interrupted);
# with the teardown after it the process ends within 2 s of SIGINT/SIGTERM.
WORKER_JOIN_S = 1.0


class FrameWorker:
    """
    One inference thread serving ``channels`` through the pipeline ``core.pipeline``.

    ``core`` is the :class:`~genpercept_ros.node.core.NodeCore` that owns the channels, the
    pipeline (None while unloaded), the parameters and the problem reporter.
    """

    def __init__(self, core):
        self._core = core
        self.last_batch_size = 0
        self.max_batch_size = 0
        self.normals_agreement = {}
        self._stop = threading.Event()
        self._thread = None
        self._abandoned = None

    def start(self):
        """Start a new thread (a previous one still finishing keeps its own, set, stop event)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(self._stop,),
                                        name='genpercept_worker', daemon=True)
        self._thread.start()

    def stop(self):
        """Ask the thread to stop and wait for it at most ``WORKER_JOIN_S``."""
        self._stop.set()
        with self._core.condition:
            self._core.condition.notify_all()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        if thread is self._abandoned:
            # Already waited for this one (shutdown then destroy_node): do not wait twice.
            if thread.is_alive():
                return
        else:
            thread.join(WORKER_JOIN_S)
        if thread.is_alive():
            self._abandoned = thread
            # Not the node logger: at shutdown its /rosout publisher may be gone already.
            rclpy.logging.get_logger(self._core.node.get_name()).warning(
                'inference still running at shutdown; not waiting for it')
            return
        self._thread = None

    def running(self):
        """Tell whether the thread is still alive, e.g. stuck in an inference."""
        return self._thread is not None and self._thread.is_alive()

    def is_alive(self):
        """Return whether the inference thread is alive (same as :meth:`running`)."""
        return self.running()

    # Thread ------------------------------------------------------------------------------------

    def _work(self, stop):
        core = self._core
        while not stop.is_set():
            batch = self._next_batch(stop)
            if not batch:
                continue
            try:
                self._process(batch, stop)
            except Exception as error:  # noqa: B902 - the worker must outlive any frame
                if stop.is_set() or not core.node.context.ok():
                    # A signal shut the context down while this frame was being published.
                    return
                core.problems.report(batch[0][0], 'internal', f'{type(error).__name__}: {error}')

    def _next_batch(self, stop):
        """Wait for a frame, then up to ``batch_window_ms`` for the other cameras' frames."""
        core = self._core
        channels = core.channels
        with core.condition:
            arrivals = []
            while not stop.is_set():
                arrivals = [channel.pending_since() for channel in channels
                            if channel.pending_since() is not None]
                if arrivals:
                    break
                core.condition.wait(0.25)
            if not arrivals:
                return []
            window_s = core.params['batch_window_ms'] / 1000.0
            if len(channels) > 1 and window_s > 0:
                deadline = min(arrivals) + window_s
                while not stop.is_set():
                    remaining = deadline - time.monotonic()
                    missing = [channel for channel in channels
                               if channel.pending_since() is None]
                    if not missing or remaining <= 0:
                        break
                    core.condition.wait(remaining)
            return [(channel, channel.take()) for channel in channels
                    if channel.pending_since() is not None]

    def _process(self, batch, stop):
        core = self._core
        pipeline = core.pipeline
        if pipeline is None:
            return
        frames, sources = [], []
        for channel, (msg, arrival) in batch:
            wanted = channel.wanted_topics()
            if not wanted:
                channel.stats.skipped_no_subscribers += 1
                continue
            try:
                # The pixel count is checked on the header, before decoding; the model's size
                # rule once, by the pipeline (an ``input_size`` problem in the result).
                rgb = decode_image(msg, max_pixels=pipeline.settings.max_input_pixels)
            except FrameSizeError as error:
                core.problems.report(channel, INPUT_SIZE_PROBLEM, str(error))
                continue
            except CodecError as error:
                core.problems.report(channel, 'decode', f'cannot decode input image: {error}')
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
            refused = False
            for kind, message in result.problems:
                # A refused frame is an error; anything else the frame was still served with.
                refused = refused or kind == INPUT_SIZE_PROBLEM
                core.problems.report(channel, kind, message,
                                     level='error' if kind == INPUT_SIZE_PROBLEM else 'warning')
            if refused:
                continue
            for topic, message in result.outputs.items():
                publisher = channel.publishers.get(topic)
                if publisher is not None:
                    publisher.publish(message)
            if result.normals_agreement_deg is not None:
                self.normals_agreement[channel.name] = result.normals_agreement_deg
            latency = time.monotonic() - arrival
            channel.stats.processed += 1
            channel.stats.latency_sum_s += latency
            channel.stats.latency_max_s = max(channel.stats.latency_max_s, latency)

    def _check_stamp(self, channel, stamp):
        """Report image stamps that go backwards (bag loop, restarted driver or clock)."""
        seconds = stamp.sec + stamp.nanosec * 1e-9
        last, channel.last_stamp_s = channel.last_stamp_s, seconds
        if last is not None and seconds < last:
            self._core.problems.report(channel, 'time_backwards', (
                f'image stamp went backwards by {last - seconds:.3f} s (bag loop or restarted '
                'driver?); frame served, scale tracking restarts'), level='warning')

    def _predict(self, pipeline, frames, sources):
        """Run the pipeline; on failure retry frames one by one so one bad frame stays alone."""
        problems = self._core.problems
        try:
            return pipeline.process(frames)
        except Exception as error:  # noqa: B902 - any model failure must not stop the node
            # torch is loaded with the model; importing its error type here costs nothing.
            from ..model.runtime import OutOfMemoryError
            from ..model.runtime import release_cached_memory
            if isinstance(error, OutOfMemoryError):
                release_cached_memory(pipeline.predictor)
                for channel, _ in sources:
                    problems.report(channel, 'out_of_memory', (
                        f'inference ran out of memory ({error}); frame dropped, cache freed. '
                        'Lower processing_resolution or use fewer cameras per node.'))
                return [None] * len(frames)
            if len(frames) == 1:
                problems.report(sources[0][0], 'inference',
                                f'inference failed: {type(error).__name__}: {error}')
                return [None]
        results = []
        for frame, source in zip(frames, sources):
            results.extend(self._predict(pipeline, [frame], [source]))
        return results
