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
Without network: the hub is asked once, then the cache alone decides, in about a second.

The network is made unreachable with ``HF_ENDPOINT=http://127.0.0.1:9`` (the discard port,
closed: connection refused) so nothing leaves the machine, and ``HF_HUB_OFFLINE`` is unset, as
on a robot whose network is simply down. huggingface_hub itself would retry each file for
~24 s before giving up. Each case runs in a fresh interpreter because huggingface_hub reads
``HF_ENDPOINT`` and the cache location when imported.
"""

import os
from pathlib import Path
import shutil
import subprocess
import sys

from genpercept_ros.model.registry import REPO_FOLDERS
import pytest

# Generous: the hub client's retries alone take ~24 s per file; the probe fails at once.
FAST_S = 10.0
UNREACHABLE = 'http://127.0.0.1:9'


def offline_env(tmp_path, **extra):
    """Return an environment with the hub unreachable and an empty (or given) HF cache."""
    env = dict(os.environ, HF_ENDPOINT=UNREACHABLE, HF_HOME=str(tmp_path / 'hf'),
               HF_HUB_CACHE=str(tmp_path / 'hf' / 'hub'))
    env.pop('HF_HUB_OFFLINE', None)
    env.update(extra)
    return env


def run_python(code, env, timeout=120):
    """Run ``code`` in a fresh interpreter; return (exit code, output)."""
    done = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=env, timeout=timeout)
    return done.returncode, done.stdout.decode(errors='replace')


# The libraries are imported before the clock starts: only the weight lookup is timed.
LOAD = """
import time
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from genpercept_ros.model.predictor import GenPerceptPredictor
from genpercept_ros.model.weights import WeightsError
start = time.monotonic()
try:
    GenPerceptPredictor.from_pretrained('depth-v2', None, model_root=None, device='cpu')
    print('LOADED')
except WeightsError as error:
    print('ERROR', error)
print('SECONDS', time.monotonic() - start)
"""


def seconds(output):
    """Return the SECONDS value printed by a probe."""
    return float(output.rsplit('SECONDS', 1)[1].split()[0])


def test_no_weights_and_no_network_fails_fast_with_the_remedy(tmp_path):
    """Weights from the hub cache, none cached, hub unreachable: a clear WeightsError at once."""
    code, output = run_python(LOAD, offline_env(tmp_path))
    assert code == 0, output
    assert 'ERROR cannot get' in output, output
    assert 'it is not in the Hugging Face cache and the hub http://127.0.0.1:9 is unreachable' \
        in output
    assert 'genpercept download --models depth-v2' in output
    took = seconds(output)
    print(f'failed after {took:.2f} s')
    assert took < FAST_S, output


def test_node_without_weights_and_network_exits_with_the_message(tmp_path):
    """The node process: exit 1, one fatal line with the reason and the remedy."""
    done = subprocess.run(
        [sys.executable, '-m', 'genpercept_ros.node', '--ros-args', '-p', 'device:=cpu',
         '-p', "normal_model:=''"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=offline_env(tmp_path),
        timeout=120)
    text = done.stdout.decode(errors='replace')
    assert done.returncode == 1, text
    assert 'could not start' in text and 'is unreachable' in text, text
    assert 'genpercept download --models depth-v2' in text and 'Traceback' not in text
    assert 'Retrying in' not in text, text


def test_download_without_network_fails_fast_with_copy_instructions(tmp_path):
    """``genpercept download`` asks the hub once and says what to copy where."""
    code, output = run_python(
        'import time, sys\n'
        'from genpercept_ros.cli import main\n'
        'start = time.monotonic()\n'
        f'code = main(["download", "--model-root", {str(tmp_path / "root")!r}, '
        '"--models", "depth-v2"])\n'
        'print("SECONDS", time.monotonic() - start)\n'
        'sys.exit(code)\n', offline_env(tmp_path))
    assert code == 1, output
    assert f'the Hugging Face hub {UNREACHABLE} is unreachable' in output, output
    assert 'Download on a machine with internet access' in output
    assert 'Retrying in' not in output
    took = seconds(output)
    print(f'download failed after {took:.2f} s')
    assert took < FAST_S, output


def hub_cache_from(model_root, cache):
    """Lay out ``model_root``'s repos as a huggingface_hub cache (refs/main -> one snapshot)."""
    revision = 'a' * 40
    for repo_id, folder in REPO_FOLDERS.items():
        source = Path(model_root) / folder
        if not source.is_dir():
            continue
        repo = cache / f'models--{repo_id.replace("/", "--")}'
        shutil.copytree(source, repo / 'snapshots' / revision)
        (repo / 'refs').mkdir(parents=True)
        (repo / 'refs' / 'main').write_text(revision)


def test_cached_weights_load_fast_without_network(tiny_model_root, tmp_path):
    """Cached weights and no network: the cache serves every file without per-file retries."""
    hub_cache_from(tiny_model_root, tmp_path / 'hf' / 'hub')
    code, output = run_python(LOAD, offline_env(tmp_path))
    assert code == 0 and 'LOADED' in output, output
    took = seconds(output)
    print(f'loaded from the cache after {took:.2f} s')
    assert took < FAST_S, output


def test_hf_hub_offline_is_honoured_without_asking_the_hub(tmp_path):
    """With HF_HUB_OFFLINE=1 the hub is never asked; the message names the offline cache."""
    env = offline_env(tmp_path, HF_HUB_OFFLINE='1')
    code, output = run_python(
        'import genpercept_ros.model.weights as weights\n'
        'def refuse(*args, **kwargs):\n'
        '    raise AssertionError("the hub was asked despite HF_HUB_OFFLINE")\n'
        'weights.hub_unreachable_reason = refuse\n' + LOAD, env)
    assert code == 0, output
    assert 'from the offline Hugging Face cache' in output, output
    assert seconds(output) < FAST_S


@pytest.mark.parametrize('reachable', [True, False])
def test_probe_tells_answering_from_silent_hubs(reachable, tmp_path):
    """Any HTTP answer (here a 404 from a local server) is reachable; a closed port is not."""
    code, output = run_python(
        'import http.server, threading, os\n'
        'server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)\n'
        'threading.Thread(target=server.serve_forever, daemon=True).start()\n'
        f'if {reachable}:\n'
        '    import huggingface_hub.constants as c\n'
        '    c.ENDPOINT = f"http://127.0.0.1:{server.server_port}"\n'
        'from genpercept_ros.model.weights import hub_unreachable_reason\n'
        'print("REASON", hub_unreachable_reason())\n', offline_env(tmp_path))
    assert code == 0, output
    if reachable:
        assert 'REASON None' in output, output
    else:
        assert 'REASON http://127.0.0.1:9 is unreachable (ConnectError' in output, output
