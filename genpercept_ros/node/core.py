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

The executor thread only runs callbacks that store messages; the :class:`FrameWorker` thread
runs the pipeline and publishes (see :mod:`.worker`); problems go through one
:class:`ProblemReporter` (see :mod:`.problems`).
"""

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult

from .camera import CameraChannel
from .camera import make_qos
from .diagnostics import Diagnostics
from .ground_tf import create_tf_listener
from .ground_tf import tf2_available
from .ground_tf import tf_up_lookup
from .parameters import declare_parameters
from .problems import ProblemReporter
from .worker import FrameWorker
from ..model.weights import weights_origin
from ..pipeline import FramePipeline
from ..pipeline import PipelineSettings
from ..pipeline.parameters import PARAMETER_SPECS
from ..pipeline.parameters import validate_parameters


class NodeCore:
    """The node's behaviour, attached to an rclpy ``Node`` or ``LifecycleNode``."""

    def __init__(self, node):
        """Declare and validate parameters (raises ``ValueError`` for invalid values)."""
        self.node = node
        self.logger = node.get_logger()
        self.params = declare_parameters(node)
        self.settings = PipelineSettings.from_parameters(self.params)
        if self.settings.ground_orientation == 'tf' and not tf2_available():
            raise ValueError("`ground_orientation` is 'tf' but tf2_ros cannot be imported: "
                             'install tf2_ros (ros-<distro>-tf2-ros) or use '
                             "'parameters' (camera_pitch_deg/camera_roll_deg) or 'normals'.")
        node.add_on_set_parameters_callback(self._on_set_parameters)
        self.pipeline = None
        self._tf_buffer = None
        self._tf_listener = None
        self.device = None
        self.dtype = None
        self.load_time_s = None
        self.weights = None
        self.condition = threading.Condition()
        self.channels = [CameraChannel(name, self.condition)
                         for name in (self.params['cameras'] or [''])]
        self.problems = ProblemReporter(self.logger)
        self._worker = FrameWorker(self)
        self._active = False
        self._diagnostics = Diagnostics(node.get_fully_qualified_name())
        self._diagnostics_publisher = None
        self._diagnostics_timer = None

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
        if settings.ground_orientation == 'tf' and not tf2_available():
            reason = "ground_orientation 'tf' needs tf2_ros, which cannot be imported"
            self.logger.warning(f'rejected parameter change: {reason}')
            return SetParametersResult(successful=False, reason=reason)
        self.params = checked
        self.settings = settings
        if self.pipeline is not None:
            self.pipeline.settings = settings
            self._listen_to_tf()
        return SetParametersResult(successful=True)

    # Floor orientation from TF -----------------------------------------------------------------

    def _floor_needs_tf(self):
        settings = self.settings
        floor_known = settings.scale_mode == 'ground' or (
            settings.camera_height_m > 0 and settings.scale_mode != 'range')
        return floor_known and settings.ground_orientation in ('auto', 'tf')

    def _listen_to_tf(self):
        """Start a TF listener once the floor needs one and tf2_ros is importable."""
        if self._tf_buffer is None and self._floor_needs_tf() and tf2_available():
            buffer, self._tf_listener = create_tf_listener(self.node)
            self.use_tf_buffer(buffer)
            self.logger.info(f'floor orientation from TF: {self.settings.base_frame} -> '
                             'image frame_id')

    def use_tf_buffer(self, buffer):
        """Take the floor orientation from ``buffer`` (a tf2_ros Buffer or its interface)."""
        self._tf_buffer = buffer
        if self.pipeline is not None:
            self.pipeline.up_lookup = tf_up_lookup(buffer)

    # Model -----------------------------------------------------------------------------------

    def load_model(self):
        """Load the predictor (raises WeightsError/ValueError/RuntimeError with the reason)."""
        from ..model.predictor import GenPerceptPredictor
        from ..model.runtime import DTYPE_NAMES
        from ..model.runtime import resolve_device
        from ..model.runtime import resolve_dtype
        params = self.params
        device = resolve_device(params['device'])
        dtype = resolve_dtype(params['dtype'], device)
        self.device, self.dtype = str(device), DTYPE_NAMES[dtype]
        where = params['model_root'] or 'the Hugging Face cache'
        self.logger.info(
            f"loading depth_model={params['depth_model']!r} "
            f"normal_model={params['normal_model']!r} from {where} "
            f'on {self.device} ({self.dtype})')
        start = time.monotonic()
        predictor = GenPerceptPredictor.from_pretrained(
            depth_model=params['depth_model'] or None,
            normal_model=params['normal_model'] or None,
            model_root=params['model_root'] or None, device=device, dtype=dtype,
            allow_pickle=params['allow_pickle'], acceleration=params['acceleration'],
            decoder=params['decoder'],
            warn=self.logger.warning)
        self.load_time_s = time.monotonic() - start
        self.weights = weights_origin(params['model_root'] or None,
                                      [name for name in (params['depth_model'],
                                                         params['normal_model']) if name])
        self.pipeline = FramePipeline(predictor, self.settings)
        if self._tf_buffer is not None:
            self.pipeline.up_lookup = tf_up_lookup(self._tf_buffer)
        self._listen_to_tf()
        self.logger.info(f'loaded {predictor.describe()} in {self.load_time_s:.2f} s')
        if not self.weights.meaningful:
            rule = '!' * 78
            self.logger.warning(
                f'\n{rule}\n! PREDICTIONS ARE NOT MEANINGFUL: {self.weights.reason}.\n'
                '! Depth, normals and clouds are noise. Real weights: genpercept download '
                '--model-root DIR,\n! then -p model_root:=DIR.\n' + rule)

    def unload_model(self):
        """Drop the predictor and free accelerator memory."""
        self.pipeline = None
        self.weights = None
        from ..model.runtime import release_cached_memory
        release_cached_memory()

    # Topics ----------------------------------------------------------------------------------

    def create_publishers(self):
        """Advertise every output of every camera, and /diagnostics."""
        qos = make_qos(self.params['output_reliability'], self.params['output_qos_depth'])
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
        self._worker.start()
        self._active = True
        transport = 'image/compressed' if self.params['image_transport'] == 'compressed' \
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
        self._worker.stop()

    def worker_running(self):
        """Return whether a worker thread is still running (e.g. stuck in inference)."""
        return self._worker.running()

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
            self.problems.report(channel, 'reference', f'cannot use metric reference: {error}')

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
            weights = self.weights
            level, message = DiagnosticStatus.OK, predictor.describe()
            if weights is not None and not weights.meaningful:
                level = DiagnosticStatus.WARN
                message = f'predictions are not meaningful: {weights.reason}'
            model_status = (level, message, {
                'weights': weights.kind if weights is not None else 'unknown',
                'predictions_meaningful': 'true' if weights and weights.meaningful else 'false',
                'depth_model': self.params['depth_model'] or 'disabled',
                'normal_model': self.params['normal_model'] or 'disabled',
                'model_root': self.params['model_root'] or 'huggingface cache',
                'licences': _licences(predictor),
                'device': str(self.device), 'dtype': str(self.dtype),
                'acceleration': predictor.acceleration.active,
                'acceleration_reason': predictor.acceleration.summary(),
                'decoder': predictor.decoder,
                'decoder_detail': predictor.decoder_summary(),
                'load_time_s': f'{self.load_time_s:.3f}',
                'processing_resolution': str(self.settings.processing_resolution),
                'output_resolution': self.settings.output_resolution,
                'state': 'active' if self._active else 'inactive',
                'batch_size_last': str(self._worker.last_batch_size),
                'batch_size_max': str(self._worker.max_batch_size),
            })
            scale_reports = {channel.name: pipeline.scale_status(channel.name)
                             for channel in self.channels}
        extra = {name: {'normals_agreement_median_deg': f'{value:.3g}'}
                 for name, value in self._worker.normals_agreement.items()}
        publisher.publish(self._diagnostics.build(
            self.node.get_clock().now().to_msg(), time.monotonic(), model_status,
            self.channels, scale_reports, extra))


def _licences(predictor):
    """Return 'model: licence; ...' of the loaded models (as the start-up log line names them)."""
    specs = (getattr(predictor, 'depth_spec', None), getattr(predictor, 'normal_spec', None))
    return '; '.join(f'{spec.name}: {getattr(spec, "licence", "unknown")}'
                     for spec in specs if spec is not None) or 'none'
