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
Weights and parameter faults at startup: one FATAL line with the remedy, exit 1, no traceback.

Each case damages a copy of tiny real-layout weights (depth only) and starts the node as the
console script does (``python -m genpercept_ros.node --ros-args -p ...``). The unit-level
checks of each message are in test_model_weights.py; here the process behaviour is checked.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.ros

PROCESS_TIMEOUT_S = 120.0
UNET = os.path.join('genpercept-models', 'unet_depth_v2')
VAE = os.path.join('stable-diffusion-2-1', 'vae')


@pytest.fixture(scope='module')
def depth_only_root(tmp_path_factory):
    """Tiny depth-v2 weights in the real layout."""
    from genpercept_ros.model.tiny_weights import make_tiny_weights
    return make_tiny_weights(tmp_path_factory.mktemp('startup_weights'), models=['depth-v2'])


def node_command(*parameters):
    """Return the command line of the node with ``-p`` parameters."""
    command = [sys.executable, '-m', 'genpercept_ros.node', '--ros-args',
               '-p', 'device:=cpu', '-p', "normal_model:=''"]
    for parameter in parameters:
        command += ['-p', parameter]
    return command


def run_node(*parameters, env=None):
    """Run the node to its end; return (exit code, output)."""
    done = subprocess.run(node_command(*parameters), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=PROCESS_TIMEOUT_S,
                          env=dict(os.environ, HF_HUB_OFFLINE='1', **(env or {})))
    return done.returncode, done.stdout.decode(errors='replace')


def truncate(path):
    """Cut a file in half."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def edit_config(path, **changes):
    """Change keys of a JSON config file."""
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def make_pickle_only(path):
    """Replace a safetensors file by the same tensors as a pickle (.bin) checkpoint."""
    import torch
    from safetensors.torch import load_file
    torch.save(load_file(path), path.with_suffix('.bin'))
    path.unlink()


UNET_WEIGHTS = os.path.join(UNET, 'diffusion_pytorch_model.safetensors')
VAE_WEIGHTS = os.path.join(VAE, 'diffusion_pytorch_model.safetensors')

# (case, damage(root), fragments of the FATAL line)
WEIGHTS_FAULTS = [
    ('missing model_root folder', lambda root: shutil.rmtree(root),
     ['does not exist', 'genpercept download --model-root']),
    ('missing UNet weights file', lambda root: (root / UNET_WEIGHTS).unlink(),
     ['unet_depth_v2/diffusion_pytorch_model.safetensors',
      'genpercept download --model-root', '--models depth-v2']),
    ('missing VAE config', lambda root: (root / VAE / 'config.json').unlink(),
     ['vae/config.json', 'genpercept download']),
    ('truncated UNet safetensors', lambda root: truncate(root / UNET_WEIGHTS),
     ['corrupt or truncated safetensors', 'unet_depth_v2']),
    ('garbage VAE safetensors', lambda root: (root / VAE_WEIGHTS).write_bytes(b'\x07' * 100),
     ['corrupt or truncated safetensors', 'vae']),
    ('config not JSON', lambda root: (root / UNET / 'config.json').write_text('{"in_ch'),
     ['cannot read config', 'config.json']),
    ('wrong architecture in config', lambda root: edit_config(root / UNET / 'config.json',
                                                              in_channels=8),
     ['in_channels is 8, expected 4']),
    ('config does not fit the weights',
     lambda root: edit_config(root / UNET / 'config.json',
                              block_out_channels=[64, 64, 128, 128]),
     ['does not match the expected architecture', 'shape']),
    ('pickle-only checkpoint', lambda root: make_pickle_only(root / UNET_WEIGHTS),
     ['pickle', 'allow_pickle']),
]


def check_fatal(code, output, fragments):
    """Assert exit code 1 and exactly one FATAL line that holds every fragment."""
    assert code == 1, output
    assert 'Traceback' not in output, output
    fatal = [line for line in output.splitlines() if '[FATAL]' in line]
    assert len(fatal) == 1, output
    for fragment in fragments:
        assert fragment in fatal[0], (fragment, fatal[0])


@pytest.fixture(scope='module')
def fault_runs(depth_only_root, tmp_path_factory):
    """Start the node once per damaged copy, all at once (startup is mostly imports)."""
    processes = {}
    for name, damage, _ in WEIGHTS_FAULTS:
        root = tmp_path_factory.mktemp('fault') / 'root'
        shutil.copytree(depth_only_root, root)
        damage(root)
        processes[name] = subprocess.Popen(
            node_command(f'model_root:={root}'), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=dict(os.environ, HF_HUB_OFFLINE='1'))
    runs = {}
    try:
        for name, process in processes.items():
            output, _ = process.communicate(timeout=PROCESS_TIMEOUT_S)
            runs[name] = (process.returncode, output.decode(errors='replace'))
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    return runs


@pytest.mark.parametrize('case', WEIGHTS_FAULTS, ids=[case[0] for case in WEIGHTS_FAULTS])
def test_weights_fault_ends_startup_with_the_remedy(fault_runs, case):
    """Each damaged weights folder: one FATAL line naming the file and remedy, exit 1."""
    name, _, fragments = case
    code, output = fault_runs[name]
    check_fatal(code, output, ['could not start', *fragments])


def test_hub_offline_without_cache(tmp_path):
    """No model_root, hub offline and an empty cache: the download command is the remedy."""
    hf_home = tmp_path / 'hf'
    code, output = run_node(env={'HF_HOME': str(hf_home),
                                 'HF_HUB_CACHE': str(hf_home / 'hub')})
    check_fatal(code, output, ['offline Hugging Face cache', 'genpercept download'])


def test_pickle_checkpoint_loads_when_allowed(depth_only_root, tmp_path):
    """allow_pickle:=true loads the same pickle checkpoint; SIGINT then ends it with 0."""
    root = tmp_path / 'root'
    shutil.copytree(depth_only_root, root)
    make_pickle_only(root / UNET_WEIGHTS)
    process = subprocess.Popen(node_command(f'model_root:={root}', 'allow_pickle:=true'),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=dict(os.environ, HF_HUB_OFFLINE='1'))
    lines = []
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline().decode(errors='replace')
            lines.append(line)
            if not line or 'subscribed to' in line:
                break
        assert any('subscribed to' in line for line in lines), ''.join(lines)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=PROCESS_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
    text = ''.join(lines) + output.decode(errors='replace')
    assert process.returncode == 0, text
    assert 'Traceback' not in text


@pytest.mark.parametrize('parameter, fragment', [
    ('max_input_pixels:=10', 'max_input_pixels'),
    ('batch_window_ms:=-1.0', 'batch_window_ms'),
    ('cloud_decimation:=0', 'cloud_decimation'),
    ('device:=tpu', 'device'),
    ('dtype:=fp8', 'dtype'),
    ('depth_model:=depth-v9', 'depth_model'),
    ('cameras:=[front, front]', 'cameras'),
    ('fit_min_inlier_ratio:=2.0', 'fit_min_inlier_ratio'),
])
def test_out_of_range_startup_parameter(parameter, fragment):
    """Out-of-range or unknown values at startup: FATAL naming the parameter, exit 1."""
    code, output = run_node(parameter)
    check_fatal(code, output, ['could not start', fragment])
