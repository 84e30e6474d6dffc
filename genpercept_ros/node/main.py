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
``genpercept_node``: GenPercept depth, normals and point clouds for ROS 2 cameras.

Subscribes (relative names, one namespace per camera; ``cameras: [a, b]`` serves ``a/...`` and
``b/...`` from one node and batches their frames):
  ``image`` (sensor_msgs/Image) or ``image/compressed`` (``image_transport: compressed``),
  ``camera_info``, and for ``scale_mode: reference`` ``reference/depth`` (+
  ``reference/camera_info``) or ``reference/points``.
Publishes (every message carries the input image header):
  ``depth_relative/image`` or ``disparity_relative/image`` (32FC1, unitless),
  ``depth/image`` (32FC1 metres, NaN invalid), ``depth/camera_info``, ``depth/colored`` (rgb8),
  ``normals/image`` (32FC3 optical-frame unit normals), ``normals/colored`` (rgb8),
  ``points`` (organized PointCloud2), ``points_voxel`` (``voxel_size > 0``), ``depth/scale``
  (diagnostic_msgs/DiagnosticArray with the frame's header: scale, shift, inlier_ratio,
  residual, mode, source, space), ``scale`` (deprecated: std_msgs/Float64MultiArray
  [scale, shift, inlier_ratio, residual], no header) and ``/diagnostics``.
Parameters: see ``config/genpercept.yaml`` (``genpercept_node --help`` lists them,
``ros2 param describe`` shows ranges).

``genpercept_node --lifecycle`` runs the same node as a managed (lifecycle) node: configure
loads the model, activate subscribes, deactivate stops work, cleanup frees the model, shutdown
(from any state) ends the process with exit code 0.
"""

import os
import signal
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.signals import install_signal_handlers
from rclpy.signals import SignalHandlerOptions
from rclpy.task import Future

from .core import NodeCore
from .process import tune_allocator
from ..pipeline.parameters import describe_parameters

NODE_NAME = 'genpercept_node'
LIFECYCLE_FLAG = '--lifecycle'
HELP_FLAGS = ('-h', '--help')
USAGE = f"""usage: {NODE_NAME} [-h] [{LIFECYCLE_FLAG}] [--ros-args [-p NAME:=VALUE ...]
                       [--params-file FILE] [-r __ns:=/NAMESPACE] [-r image:=TOPIC] ...]

GenPercept depth, normals and point clouds for ROS 2 cameras (one-step diffusion).
Subscribes image (or image/compressed) and camera_info (+ reference/* in scale_mode reference);
publishes depth_relative/image (disparity_relative/image for disparity models; unitless),
depth/image (32FC1 metres, NaN invalid), depth/camera_info, depth/colored, depth/confidence,
depth/scale (and the deprecated scale), normals/image, normals/colored, points, points_voxel,
points_obstacles and ground/mask (when the floor is known) and /diagnostics, each with the
input image's header.

options:
  -h, --help    show this help and the parameters, then exit
  {LIFECYCLE_FLAG}   run as a lifecycle (managed) node: configure loads the model, activate
                subscribes, deactivate stops, cleanup frees the model, shutdown exits (code 0)

example:
  ros2 run genpercept_ros {NODE_NAME} --ros-args -p model_root:=$HOME/genpercept_models \\
      -p far_m:=8 -r image:=/camera/color/image_raw -r camera_info:=/camera/color/camera_info

parameters (config/genpercept.yaml; `ros2 param describe` gives the same ranges):"""


class GenPerceptNode(Node):
    """The node: loads the model at construction and serves until destroyed."""

    def __init__(self, node_name=NODE_NAME, **kwargs):
        """Declare parameters, load the model and start (raises when any of it fails)."""
        super().__init__(node_name, **kwargs)
        # Never done: the plain node serves until a signal ends it.
        self.finished = Future()
        self.core = NodeCore(self)
        self.core.load_model()
        self.core.create_publishers()
        self.core.activate()

    def destroy_node(self):
        """Stop the worker, then destroy the node."""
        if getattr(self, 'core', None) is not None:
            self.core.shutdown()
        return super().destroy_node()


class GenPerceptLifecycleNode(LifecycleNode):
    """The same node as a managed node (Nav2 style)."""

    def __init__(self, node_name=NODE_NAME, **kwargs):
        """Declare and validate parameters only; the model loads on configure."""
        super().__init__(node_name, **kwargs)
        # Done once the node is finalized (shutdown): main() then ends the process with 0.
        self.finished = Future()
        self.core = NodeCore(self)
        self.get_logger().info('lifecycle: unconfigured (configure loads the model)')

    def _transition(self, name, state, target, result=TransitionCallbackReturn.SUCCESS):
        """Log one transition (``name`` from ``state`` towards ``target``); return ``result``."""
        outcome = 'done' if result == TransitionCallbackReturn.SUCCESS else 'FAILED'
        self.get_logger().info(f'lifecycle: {name} {outcome} ({state.label} -> '
                               f'{target if outcome == "done" else state.label})')
        return result

    def on_configure(self, state):
        """Load the model and advertise the outputs."""
        self.get_logger().info(f'lifecycle: configure ({state.label} -> inactive) ...')
        try:
            self.core.load_model()
            self.core.create_publishers()
        except Exception as error:  # noqa: B902 - report any load failure as FAILURE
            self.get_logger().error(f'configure failed: {error}')
            self.core.destroy_publishers()
            self.core.unload_model()
            return self._transition('configure', state, 'inactive',
                                    TransitionCallbackReturn.FAILURE)
        return self._transition('configure', state, 'inactive')

    def on_activate(self, state):
        """Subscribe the inputs and start the worker."""
        self.core.activate()
        return self._transition('activate', state, 'active', super().on_activate(state))

    def on_deactivate(self, state):
        """Unsubscribe and stop the worker."""
        self.core.deactivate()
        return self._transition('deactivate', state, 'inactive', super().on_deactivate(state))

    def on_cleanup(self, state):
        """Withdraw the outputs and free the model (and GPU memory)."""
        self.core.destroy_publishers()
        self.core.unload_model()
        return self._transition('cleanup', state, 'unconfigured')

    def on_shutdown(self, state):
        """Stop everything from any state; the process then exits with code 0."""
        self.core.shutdown()
        self.core.destroy_publishers()
        self.core.unload_model()
        result = self._transition('shutdown', state, 'finalized')
        # main() sees this after the executor has answered the change_state request.
        self.finished.set_result(True)
        return result

    def on_error(self, state):
        """Stop work after an error in a transition."""
        self.core.shutdown()
        return self._transition('error processing', state, 'unconfigured')

    def destroy_node(self):
        """Stop the worker, then destroy the node."""
        if getattr(self, 'core', None) is not None:
            self.core.shutdown()
        return super().destroy_node()


def main(args=None, exit_process=True):
    """
    Run ``genpercept_node`` (``--lifecycle`` for the managed node).

    Once rclpy is initialised the process ends right after the node's cleanup
    (``os._exit``): the interpreter's teardown of torch can take seconds, and a signal must
    end the node within 2 s. ``exit_process=False`` returns the exit code instead.
    """
    argv = list(sys.argv if args is None else args)
    ros_start = argv.index('--ros-args') if '--ros-args' in argv else len(argv)
    if any(arg in HELP_FLAGS for arg in argv[1:ros_start]):
        # Before rclpy.init and before the model: --help never reaches for the network.
        print(USAGE)
        print(describe_parameters())
        return 0
    # Multi-MB output buffers are reused instead of page-faulted in every frame (BENCHMARKS.md).
    tune_allocator()
    lifecycle = LIFECYCLE_FLAG in argv
    argv = [arg for arg in argv if arg != LIFECYCLE_FLAG]
    try:
        # rclpy's handlers only shut the context down, which a model still loading would not
        # notice for many seconds; until the node is up SIGINT and SIGTERM interrupt instead.
        rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    except Exception as error:  # noqa: B902 - rcl reports bad command lines as RCLError
        print(f'{NODE_NAME}: invalid command line: {error}', file=sys.stderr)
        return 2
    logger = rclpy.logging.get_logger(NODE_NAME)
    signals = []

    def interrupt(signum, frame):
        signals.append(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)
    node = executor = None
    try:
        node = GenPerceptLifecycleNode() if lifecycle else GenPerceptNode()
        executor = _make_executor(node)
        # Returns once a lifecycle node is finalized; the plain node spins until a signal.
        executor.spin_until_future_complete(node.finished)
    except (KeyboardInterrupt, ExternalShutdownException):
        if node is None:
            logger.info(f'{NODE_NAME} stopped during startup (signal)')
            rclpy.try_shutdown()
            return _leave(0, exit_process)
    except Exception as error:  # noqa: B902 - any startup failure ends the process cleanly
        if node is None and signals:
            # The KeyboardInterrupt surfaced as another error inside a native call.
            logger.info(f'{NODE_NAME} stopped during startup (signal)')
            rclpy.try_shutdown()
            return _leave(0, exit_process)
        if node is None:
            logger.fatal(f'{NODE_NAME} could not start: {type(error).__name__}: {error}')
            rclpy.try_shutdown()
            return _leave(1, exit_process)
        if rclpy.ok():
            raise
        # Otherwise a signal shut the context down in the middle of a callback: a clean stop.
    finally:
        if node is not None:
            node.core.shutdown()
            stuck = node.core.worker_running()
            if executor is not None:
                executor.shutdown(timeout_sec=0.5)
            node.destroy_node()
            rclpy.try_shutdown()
    # An inference still running cannot be interrupted: never tear torch down under it.
    return _leave(0, exit_process or stuck)


def _make_executor(node):
    """
    Return a SingleThreadedExecutor for ``node`` with rclpy's signal handlers installed.

    From here on a signal only records itself in Python (an executor whose constructor was
    interrupted fails noisily when collected, and a KeyboardInterrupt inside a pybind11 call
    surfaces as a RuntimeError); rclpy's handlers, installed last and chaining to that,
    shut the context down, which ends the spin. A signal before that raises KeyboardInterrupt.
    """
    pending = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda received, frame: pending.append(received))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    install_signal_handlers(SignalHandlerOptions.ALL)
    if pending:
        raise KeyboardInterrupt(signal.Signals(pending[0]).name)
    return executor


def _leave(code, exit_process):
    """Return ``code``, or end the process now with it (after flushing the output)."""
    if not exit_process:
        return code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
