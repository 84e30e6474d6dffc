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

"""Weight resolution and loading faults: each gives one clear WeightsError with the remedy."""

import json
import shutil

from genpercept_ros.model.predictor import GenPerceptPredictor
from genpercept_ros.model.weights import WeightsError
import pytest
import torch


UNET = 'genpercept-models/unet_depth_v2'


@pytest.fixture(scope='module')
def depth_only_root(tmp_path_factory):
    from genpercept_ros.model.tiny_weights import make_tiny_weights
    return make_tiny_weights(tmp_path_factory.mktemp('depth_only'), models=['depth-v2'])


@pytest.fixture
def root(depth_only_root, tmp_path):
    copy = tmp_path / 'root'
    shutil.copytree(depth_only_root, copy)
    return copy


def _load(root, **kwargs):
    return GenPerceptPredictor.from_pretrained('depth-v2', None, model_root=root, device='cpu',
                                               dtype='fp32', **kwargs)


def test_loads_from_the_real_layout(root):
    predictor = _load(root)
    assert predictor.tasks == ('depth',)
    assert predictor.depth_spec.name == 'depth-v2' and predictor.normal_spec is None
    assert 'depth=depth-v2' in predictor.describe()


def test_missing_file_names_it_and_the_download_command(root):
    (root / UNET / 'diffusion_pytorch_model.safetensors').unlink()
    with pytest.raises(WeightsError) as error:
        _load(root)
    message = str(error.value)
    assert 'unet_depth_v2/diffusion_pytorch_model.safetensors' in message
    assert f'genpercept download --model-root {root} --models depth-v2' in message


def test_missing_variant_that_was_not_downloaded(root):
    with pytest.raises(WeightsError, match='unet_normal_v2/config.json.*--models normal-v2'):
        GenPerceptPredictor.from_pretrained(None, 'normal-v2', model_root=root, device='cpu')


def test_missing_model_root_folder(tmp_path):
    with pytest.raises(WeightsError, match='does not exist.*genpercept download'):
        _load(tmp_path / 'nowhere')


@pytest.mark.parametrize('damage', ['truncate', 'garbage'])
def test_corrupt_safetensors(root, damage):
    path = root / UNET / 'diffusion_pytorch_model.safetensors'
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2] if damage == 'truncate' else b'\x07' * 100)
    with pytest.raises(WeightsError, match='corrupt or truncated safetensors.*unet_depth_v2'):
        _load(root)


def test_pickle_is_refused_unless_allowed(root):
    from safetensors.torch import load_file
    path = root / UNET / 'diffusion_pytorch_model.safetensors'
    torch.save(load_file(path), path.with_suffix('.bin'))
    path.unlink()
    with pytest.raises(WeightsError, match='pickle.*refused.*allow_pickle'):
        _load(root)
    predictor = _load(root, allow_pickle=True)
    assert predictor.tasks == ('depth',)


def test_config_with_wrong_architecture(root):
    config_path = root / UNET / 'config.json'
    config = json.loads(config_path.read_text())
    config['in_channels'] = 8
    config_path.write_text(json.dumps(config))
    with pytest.raises(WeightsError, match='in_channels is 8, expected 4'):
        _load(root)


def test_config_that_does_not_fit_the_weights(root):
    config_path = root / UNET / 'config.json'
    config = json.loads(config_path.read_text())
    config['block_out_channels'] = [64, 64, 128, 128]
    config_path.write_text(json.dumps(config))
    with pytest.raises(WeightsError, match='does not match the expected architecture.*shape'):
        _load(root)


def test_unet_from_another_model_family(root):
    from genpercept_ros.model import configs
    from genpercept_ros.model.tiny_weights import write_unet
    configs_copy = dict(configs.TINY_UNET_OVERRIDES)
    try:
        configs.TINY_UNET_OVERRIDES['cross_attention_dim'] = 48
        write_unet(root / UNET, seed=0, full_size=False)
    finally:
        configs.TINY_UNET_OVERRIDES.clear()
        configs.TINY_UNET_OVERRIDES.update(configs_copy)
    with pytest.raises(WeightsError, match='cross_attention_dim 48 does not match'):
        _load(root)


def test_hub_offline_without_cache(monkeypatch, tmp_path):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HOME', str(tmp_path / 'hf'))
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'hf' / 'hub'))
    with pytest.raises(WeightsError) as error:
        GenPerceptPredictor.from_pretrained('depth-v2', None, model_root=None, device='cpu')
    message = str(error.value)
    assert 'offline Hugging Face cache' in message
    assert 'genpercept download --models depth-v2' in message


def test_unknown_variant_and_wrong_task():
    with pytest.raises(ValueError, match='valid names: depth-v2'):
        GenPerceptPredictor.from_pretrained('depth-v3', None)
    with pytest.raises(ValueError, match='predicts normal, not depth'):
        GenPerceptPredictor.from_pretrained('normal-v2', None)
    with pytest.raises(ValueError, match='enable at least one'):
        GenPerceptPredictor.from_pretrained('', None)


def test_full_size_v2_unet_config_follows_sd21_like_the_reference():
    from genpercept_ros.model import configs
    from genpercept_ros.model.loaders import as_reference_v2_config
    checkpoint = configs.unet_config(full_size=True)
    checkpoint['attention_head_dim'] = 8          # shape-neutral, differs from SD 2.1
    assert as_reference_v2_config(checkpoint, 'x')['attention_head_dim'] == [5, 10, 20, 20]
    tiny = configs.unet_config(full_size=False)
    assert as_reference_v2_config(tiny, 'x') == tiny


def _unet_configs(root, channels, models=('depth-v2', 'normal-v2')):
    """Write only the UNet config.json of ``models`` with ``block_out_channels``."""
    from genpercept_ros.model.registry import get_model_spec
    from genpercept_ros.model.registry import REPO_FOLDERS
    for name in models:
        spec = get_model_spec(name)
        folder = root / REPO_FOLDERS[spec.unet_repo] / spec.unet_subfolder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / 'config.json').write_text(json.dumps({'block_out_channels': channels}))
    return root


def test_weights_origin_tells_random_reduced_and_real(tmp_path, depth_only_root):
    """The one check every entry point uses: marker first, then the UNet width of SD 2.1."""
    from genpercept_ros.model.weights import RANDOM_WEIGHTS_MARKER
    from genpercept_ros.model.weights import weights_origin
    # make-tiny-weights marks its output.
    origin = weights_origin(depth_only_root, ['depth-v2'])
    assert (origin.kind, origin.meaningful) == ('random', False)
    assert RANDOM_WEIGHTS_MARKER in origin.reason and str(depth_only_root) in origin.reason
    # The published width (SD 2.1's block_out_channels) without the marker counts as real.
    real = _unet_configs(tmp_path / 'real', [320, 640, 1280, 1280])
    origin = weights_origin(real, ['depth-v2', 'normal-v2'])
    assert (origin.kind, origin.meaningful) == ('genpercept', True)
    # A config without the key is completed from SD 2.1, as the loader does.
    keyless = _unet_configs(tmp_path / 'keyless', None)
    assert weights_origin(keyless, ['depth-v2']).meaningful
    # The marker wins over a real-looking config.
    (real / RANDOM_WEIGHTS_MARKER).write_text('random')
    assert weights_origin(real, ['depth-v2']).kind == 'random'
    # Narrow UNets without the marker: reduced-size, named with the widths.
    narrow = _unet_configs(tmp_path / 'narrow', [32, 32, 64, 64], models=('depth-v2',))
    origin = weights_origin(narrow, ['depth-v2'])
    assert origin.kind == 'reduced_size' and not origin.meaningful
    assert '[32, 32, 64, 64]' in origin.reason
    # Missing weights are a WeightsError with the remedy, not a verdict.
    with pytest.raises(WeightsError, match='genpercept download'):
        weights_origin(tmp_path / 'narrow', ['normal-v2'])
