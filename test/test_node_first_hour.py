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
The node's first hour (issue 16), each failing command as a real ``genpercept_node`` process.

``--help`` prints and exits; ``-p far_m:=8`` (an integer for a double) is accepted and stored as
a double, also at run time; unknown and deprecated names are named at start-up; random weights
are announced in the log and on ``/diagnostics`` (WARN, ``weights: random``); a lifecycle node
logs each transition and its process exits 0 once shut down.
"""

import os
import signal
import subprocess
import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from genpercept_ros.model.registry import MODELS
from lifecycle_msgs.msg import State
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from lifecycle_msgs.srv import GetState
import pytest
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import GetParameters
from rcl_interfaces.srv import SetParameters
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

pytestmark = pytest.mark.ros

PROCESS_TIMEOUT_S = 90.0


class NodeProcess:
    """``python -m genpercept_ros.node`` (as the console script) with its output collected."""

    def __init__(self, *arguments, env=None):
        command = [sys.executable, '-u', '-m', 'genpercept_ros.node', *arguments]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=dict(os.environ, HF_HUB_OFFLINE='1', **(env or {})))
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in iter(self.process.stdout.readline, b''):
            self.lines.append(line.decode(errors='replace'))

    def text(self):
        """Return everything the process wrote so far."""
        return ''.join(self.lines)

    def wait_line(self, text, timeout=PROCESS_TIMEOUT_S):
        """Wait until an output line contains ``text``; return whether one did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if text in self.text():
                return True
            time.sleep(0.05)
        return text in self.text()

    def finish(self, timeout=PROCESS_TIMEOUT_S):
        """Wait for the exit code (kill and fail after ``timeout``)."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f'the node did not exit within {timeout} s:\n{self.text()}')
        finally:
            self._reader.join(2.0)

    def kill(self):
        """End the process if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Client:
    """A test node in its own context, spun by a thread."""

    def __init__(self, name):
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.diagnostics = []
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append,
                                      10)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: B902 - shutdown races end the loop
                return

    def call(self, service_type, name, request, timeout=30.0):
        """Call a service and return its response (fail on timeout)."""
        client = self.node.create_client(service_type, name)
        assert client.wait_for_service(timeout_sec=timeout), f'{name} never appeared'
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert future.done(), f'{name} did not answer'
        return future.result()

    def model_status(self, namespace):
        """Return the newest ``<namespace>/genpercept_node: model`` status, or None."""
        for array in reversed(list(self.diagnostics)):
            for status in array.status:
                if status.name == f'{namespace}/genpercept_node: model':
                    return status
        return None

    def close(self):
        """Shut the context down."""
        rclpy.try_shutdown(context=self.context)
        self._thread.join(2.0)


@pytest.fixture
def client():
    """Provide a test client node for one test."""
    instance = Client('genpercept_first_hour_client')
    yield instance
    instance.close()


@pytest.mark.parametrize('flag', ['--help', '-h'])
def test_help_prints_usage_and_parameters_then_exits(flag):
    """``genpercept_node --help`` lists every parameter and exits 0 without rclpy or the hub."""
    from genpercept_ros.pipeline.parameters import DEPRECATED_NAMES
    from genpercept_ros.pipeline.parameters import PARAMETERS
    # In a fresh interpreter: rclpy must stay uninitialised, and neither the hub client nor torch
    # may be imported (no model, no network).
    probe = ('import sys, rclpy\n'
             'from genpercept_ros.node.main import main\n'
             f'code = main(["genpercept_node", {flag!r}])\n'
             'loaded = [m for m in ("torch", "huggingface_hub") if m in sys.modules]\n'
             'print("RESULT", code, rclpy.ok(), loaded)\n')
    done = subprocess.run([sys.executable, '-c', probe], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=60,
                          env=dict(os.environ, HF_ENDPOINT='http://127.0.0.1:9'))
    text = done.stdout.decode()
    assert done.returncode == 0, text
    assert text.startswith('usage: genpercept_node')
    assert 'RESULT 0 False []' in text
    for spec in PARAMETERS:
        assert f'\n  {spec.name} ({spec.kind}, default ' in text, spec.name
    for old, new in DEPRECATED_NAMES.items():
        assert f'{old}: deprecated name of {new}' in text
    # As the console script runs it: the same text, exit code 0.
    done = subprocess.run([sys.executable, '-m', 'genpercept_ros.node', flag],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert done.returncode == 0 and done.stdout.decode().startswith('usage: genpercept_node')


def test_typed_names_and_random_weights_are_handled_at_startup(tiny_model_root, client):
    """
    ``-p far_m:=8 -p no_such_param:=3 -p input_transport:=compressed`` with random weights.

    The integer becomes the double 8.0 (and ``set_parameters`` with an integer works later);
    the unknown name is named with the closest known one; the old name works with a deprecation
    warning; the random weights are said loudly in the log and on /diagnostics.
    """
    namespace = '/gp_first_hour_params'
    node = NodeProcess('--ros-args', '-r', f'__ns:={namespace}', '-p', 'device:=cpu',
                       '-p', f'model_root:={tiny_model_root}', '-p', 'processing_resolution:=64',
                       '-p', 'diagnostics_period_s:=0.2', '-p', 'far_m:=8',
                       '-p', 'no_such_param:=3', '-p', 'nearm:=1.0',
                       '-p', 'input_transport:=compressed')
    try:
        assert node.wait_line('subscribed to'), node.text()
        text = node.text()
        assert 'InvalidParameterTypeException' not in text and 'Traceback' not in text, text
        assert 'unknown parameter no_such_param (closest known parameter: `' in text, text
        assert 'unknown parameter nearm (closest known parameter: `near_m`)' in text, text
        assert 'parameter `input_transport` is deprecated; use `image_transport`' in text, text
        assert 'subscribed to image/compressed' in text, text
        assert 'PREDICTIONS ARE NOT MEANINGFUL' in text and 'GENPERCEPT_RANDOM_WEIGHTS' in text

        service = f'{namespace}/genpercept_node'
        values = client.call(GetParameters, f'{service}/get_parameters', GetParameters.Request(
            names=['far_m', 'image_transport'])).values
        assert values[0].type == ParameterType.PARAMETER_DOUBLE and values[0].double_value == 8.0
        assert values[1].string_value == 'compressed'
        # At run time too: `ros2 param set ... far_m 9` sends an integer.
        result = client.call(SetParameters, f'{service}/set_parameters', SetParameters.Request(
            parameters=[Parameter('far_m', Parameter.Type.INTEGER, 9).to_parameter_msg()]))
        assert result.results[0].successful, result.results[0].reason
        values = client.call(GetParameters, f'{service}/get_parameters',
                             GetParameters.Request(names=['far_m'])).values
        assert values[0].type == ParameterType.PARAMETER_DOUBLE and values[0].double_value == 9.0
        # A string for a double is still refused, with the reason.
        result = client.call(SetParameters, f'{service}/set_parameters', SetParameters.Request(
            parameters=[Parameter('far_m', Parameter.Type.STRING, 'far').to_parameter_msg()]))
        assert not result.results[0].successful

        deadline = time.monotonic() + 20.0
        while client.model_status(namespace) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        status = client.model_status(namespace)
        assert status is not None, 'no model status on /diagnostics'
        values = {item.key: item.value for item in status.values}
        assert status.level == DiagnosticStatus.WARN
        assert 'not meaningful' in status.message and 'GENPERCEPT_RANDOM_WEIGHTS' in \
            status.message
        assert values['weights'] == 'random' and values['predictions_meaningful'] == 'false'
        # The licence of what was loaded, as the registry states it.
        assert values['licences'] == (f"depth-v2: {MODELS['depth-v2'].licence}; "
                                      f"normal-v2: {MODELS['normal-v2'].licence}"), values
        node.process.send_signal(signal.SIGINT)
        assert node.finish() == 0, node.text()
    finally:
        node.kill()


def test_lifecycle_logs_each_transition_and_exits_after_shutdown(tiny_model_root, client):
    """configure, activate, deactivate, then shutdown: finalized, and the process exits 0."""
    namespace = '/gp_first_hour_lifecycle'
    node = NodeProcess('--lifecycle', '--ros-args', '-r', f'__ns:={namespace}',
                       '-p', 'device:=cpu', '-p', f'model_root:={tiny_model_root}',
                       '-p', 'processing_resolution:=64')
    service = f'{namespace}/genpercept_node'
    try:
        steps = [(Transition.TRANSITION_CONFIGURE, State.PRIMARY_STATE_INACTIVE),
                 (Transition.TRANSITION_ACTIVATE, State.PRIMARY_STATE_ACTIVE),
                 (Transition.TRANSITION_DEACTIVATE, State.PRIMARY_STATE_INACTIVE)]
        for transition, state in steps:
            response = client.call(ChangeState, f'{service}/change_state',
                                   ChangeState.Request(transition=Transition(id=transition)))
            assert response.success, (transition, node.text())
            current = client.call(GetState, f'{service}/get_state', GetState.Request())
            assert current.current_state.id == state
        response = client.call(ChangeState, f'{service}/change_state', ChangeState.Request(
            transition=Transition(id=Transition.TRANSITION_INACTIVE_SHUTDOWN)))
        assert response.success, node.text()
        code = node.finish()
    finally:
        node.kill()
    text = node.text()
    assert code == 0, text
    assert 'Traceback' not in text, text
    for line in ('lifecycle: configure done (unconfigured -> inactive)',
                 'lifecycle: activate done (inactive -> active)',
                 'lifecycle: deactivate done (active -> inactive)',
                 'lifecycle: shutdown done (inactive -> finalized)'):
        assert line in text, text
