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

"""Predictor API: inputs, batching, tasks, output sizes, devices/dtypes, speed options."""

import argparse
import functools
import os

from genpercept_ros.model import predictor as predictor_module
from genpercept_ros.model.predictor import GenPerceptPredictor
from genpercept_ros.model.predictor import PredictionOutput
import numpy as np
import pytest
import torch


@functools.lru_cache(maxsize=None)
def _load(root, depth='depth-v2', normal='normal-v2', **kwargs):
    return GenPerceptPredictor.from_pretrained(depth, normal, model_root=root, device='cpu',
                                               dtype='fp32', **dict(kwargs))


def _image(height, width, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_output_dataclass_fields(tiny_model_root):
    out = _load(tiny_model_root).predict([_image(30, 40)], processing_resolution=48)
    assert isinstance(out, PredictionOutput)
    assert out.depth_kind == 'relative_depth'
    assert out.depth_model == 'depth-v2' and out.normal_model == 'normal-v2'
    assert out.depth[0].shape == (30, 40) and out.depth[0].dtype == np.float32
    assert out.normals[0].shape == (30, 40, 3) and out.normals[0].dtype == np.float32
    assert 0.0 <= out.depth[0].min() and out.depth[0].max() <= 1.0
    np.testing.assert_allclose(np.linalg.norm(out.normals[0], axis=-1), 1.0, atol=1e-5)
    assert out.processing_size == [(36, 48)]
    assert {'preprocess', 'encode', 'unet', 'decode', 'to_host', 'total'} <= set(out.timings)


def test_mixed_sizes_in_one_call_equal_separate_calls(tiny_model_root):
    predictor = _load(tiny_model_root)
    images = [_image(30, 40, 1), _image(33, 21, 2), _image(30, 40, 3)]
    together = predictor.predict(images, processing_resolution=48)
    for index, image in enumerate(images):
        alone = predictor.predict([image], processing_resolution=48)
        assert together.processing_size[index] == alone.processing_size[0]
        # Batched convolutions pick other kernels: only the last bits move.
        np.testing.assert_allclose(together.depth[index], alone.depth[0], atol=1e-3)
        np.testing.assert_allclose(together.normal_raw[index], alone.normal_raw[0], atol=1e-3)


def test_batch_array_and_tensor_inputs(tiny_model_root):
    predictor = _load(tiny_model_root)
    batch = np.stack([_image(24, 32, 4), _image(24, 32, 5)])
    from_array = predictor.predict(batch, processing_resolution=32)
    from_tensor = predictor.predict(torch.from_numpy(batch), processing_resolution=32)
    single = predictor.predict(batch[1], processing_resolution=32)
    assert len(from_array.depth) == 2
    np.testing.assert_array_equal(from_array.depth[1], from_tensor.depth[1])
    np.testing.assert_allclose(from_array.depth[1], single.depth[0], atol=1e-3)


def test_processing_output_resolution(tiny_model_root):
    out = _load(tiny_model_root).predict([_image(30, 45)], processing_resolution=64,
                                         output_resolution='processing')
    assert out.processing_size == [(42, 64)]
    assert out.depth[0].shape == (42, 64) and out.normals[0].shape == (42, 64, 3)


def test_task_subset(tiny_model_root):
    out = _load(tiny_model_root).predict([_image(24, 24)], processing_resolution=32,
                                         tasks=('normal',))
    assert out.depth is None and out.depth_kind is None and out.normals is not None
    with pytest.raises(ValueError, match='not available'):
        _load(tiny_model_root, normal=None).predict([_image(24, 24)], tasks=('normal',))


@pytest.mark.parametrize('bad, message', [
    ([], 'at least one image'),
    ([np.zeros((20, 20), np.uint8)], 'expected HxWx3'),
    ([np.zeros((20, 20, 4), np.uint8)], 'expected HxWx3'),
    ([np.zeros((20, 20, 3), np.float32)], 'expected uint8'),
    (np.zeros((2, 2, 20, 20, 3), np.uint8), 'BxHxWx3'),
    (['image.png'], 'numpy array or torch tensor'),
])
def test_bad_inputs(tiny_model_root, bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _load(tiny_model_root).predict(bad, processing_resolution=32)


def test_bad_arguments(tiny_model_root):
    predictor = _load(tiny_model_root)
    with pytest.raises(ValueError, match='output_resolution'):
        predictor.predict([_image(20, 20)], output_resolution='native')
    with pytest.raises(ValueError, match='at least 8 pixels'):
        predictor.predict([_image(4, 200)], processing_resolution=64)


def test_channels_last_matches_default(tiny_model_root):
    image = [_image(30, 40, 6)]
    plain = _load(tiny_model_root).predict(image, processing_resolution=48)
    fast = _load(tiny_model_root, channels_last=True).predict(image, processing_resolution=48)
    # Other convolution kernels for the NHWC layout: same maths, last bits differ.
    np.testing.assert_allclose(fast.depth[0], plain.depth[0], atol=1e-3)
    np.testing.assert_allclose(fast.normal_raw[0], plain.normal_raw[0], atol=1e-3)


def test_bf16_on_cpu_runs_close_to_fp32(tiny_model_root):
    image = [_image(30, 40, 7)]
    reference = _load(tiny_model_root).predict(image, processing_resolution=48)
    bf16 = GenPerceptPredictor.from_pretrained('depth-v2', None, model_root=tiny_model_root,
                                               device='cpu', dtype='bf16')
    assert bf16.dtype == torch.bfloat16 and 'VAE bf16' in bf16.describe()
    out = bf16.predict(image, processing_resolution=48)
    assert np.isfinite(out.depth[0]).all()
    # Random weights amplify rounding more than trained ones; this only guards against a
    # broken low-precision path (wrong casts give errors of order 0.5).
    assert np.abs(out.depth[0] - reference.depth[0]).mean() < 0.02


def test_device_and_dtype_resolution():
    cpu, cuda = torch.device('cpu'), torch.device('cuda')
    assert predictor_module.resolve_dtype(None, cpu) == torch.float32
    assert predictor_module.resolve_dtype(None, cuda) == torch.bfloat16
    assert predictor_module.resolve_dtype('fp16', cuda) == torch.float16
    assert predictor_module.vae_dtype_for(torch.float16) == torch.bfloat16
    assert predictor_module.vae_dtype_for(torch.float32) == torch.float32
    assert predictor_module.resolve_device('cpu') == cpu
    expected_auto = cuda if torch.cuda.is_available() else cpu
    assert predictor_module.resolve_device('auto') == expected_auto
    assert predictor_module.resolve_device(None) == expected_auto
    with pytest.raises(ValueError, match='unsupported dtype'):
        predictor_module.resolve_dtype('int8', cpu)
    with pytest.raises(ValueError, match='cpu, cuda or cuda:N'):
        predictor_module.resolve_device('tpu')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'):
            predictor_module.resolve_device('cuda:0')


def test_out_of_memory_passes_through(tiny_model_root, monkeypatch):
    predictor = GenPerceptPredictor.from_pretrained('depth-v2', None, model_root=tiny_model_root,
                                                    device='cpu')

    def exhausted(*args, **kwargs):
        raise torch.OutOfMemoryError('CUDA out of memory (simulated)')

    monkeypatch.setattr(predictor, '_encode', exhausted)
    with pytest.raises(predictor_module.OutOfMemoryError):
        predictor.predict([_image(20, 20)], processing_resolution=32)
    predictor.free_memory()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_bf16_matches_cpu_fp32(tiny_model_root):
    image = [_image(60, 80, 8)]
    reference = _load(tiny_model_root).predict(image, processing_resolution=64)
    gpu = GenPerceptPredictor.from_pretrained('depth-v2', 'normal-v2', model_root=tiny_model_root,
                                              device='cuda', dtype='bf16')
    out = gpu.predict([torch.from_numpy(image[0]).cuda()], processing_resolution=64)
    assert np.abs(out.depth[0] - reference.depth[0]).max() < 2e-2


def test_make_tiny_weights_cli_layout(tmp_path, capsys):
    from safetensors import safe_open
    from genpercept_ros.model import tiny_weights
    parser = argparse.ArgumentParser()
    tiny_weights.add_arguments(parser)
    args = parser.parse_args([str(tmp_path), '--seed', '3', '--models', 'disparity-dpt-v2'])
    assert tiny_weights.run(args) == 0
    assert 'tiny weights under' in capsys.readouterr().out
    unet = tmp_path / 'genpercept-models/unet_disparity_dpt_head_v2'
    with safe_open(str(unet / 'diffusion_pytorch_model.safetensors'), 'pt') as handle:
        keys = list(handle.keys())
    assert 'conv_in.weight' in keys and not any(k.startswith('conv_out') for k in keys)
    with safe_open(str(tmp_path / 'genpercept-models/dpt_head_identity/model.safetensors'),
                   'pt') as handle:
        assert 'neck.fusion_stage.layers.3.residual_layer1.convolution2.weight' in handle.keys()
    text = tmp_path / 'stable-diffusion-2-1/text_encoder/model.safetensors'
    with safe_open(str(text), 'pt') as handle:
        assert all(key.startswith('text_model.') for key in handle.keys())
    for name in ('vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'):
        assert (tmp_path / 'stable-diffusion-2-1/tokenizer' / name).is_file()


def test_full_size_configs_are_the_sd21_ones():
    from genpercept_ros.model import configs
    from genpercept_ros.model.tiny_weights import tokenizer_vocab
    unet = configs.unet_config(full_size=True)
    assert unet['block_out_channels'] == [320, 640, 1280, 1280]
    assert unet['attention_head_dim'] == [5, 10, 20, 20] and unet['cross_attention_dim'] == 1024
    assert configs.vae_config(True)['block_out_channels'] == [128, 256, 512, 512]
    assert configs.text_encoder_config(True)['num_hidden_layers'] == 23
    vocab = tokenizer_vocab(full_size=True)
    assert len(vocab) == 49408 and vocab.index('<|startoftext|>') == 49406 and vocab[0] == '!'


def test_return_raw_false_skips_the_normal_raw_copy(tiny_model_root):
    predictor = _load(tiny_model_root)
    full = predictor.predict([_image(30, 40, 9)], processing_resolution=48)
    lean = predictor.predict([_image(30, 40, 9)], processing_resolution=48, return_raw=False)
    assert lean.normal_raw is None
    np.testing.assert_array_equal(lean.normals[0], full.normals[0])
    np.testing.assert_array_equal(lean.depth_raw[0], full.depth_raw[0])
    # Normals follow from the raw output: (2 r - 1) * (1, -1, -1), renormalised.
    vectors = (full.normal_raw[0] * 2 - 1) * np.array([1, -1, -1], np.float32)
    vectors /= np.linalg.norm(vectors, axis=-1, keepdims=True)
    np.testing.assert_allclose(full.normals[0], vectors, atol=1e-6)


def test_warmup_runs_a_prediction(tiny_model_root):
    out = _load(tiny_model_root).warmup(40, 50, processing_resolution=48, batch_size=2)
    assert len(out.depth) == 2 and out.depth[0].shape == (40, 50)


def test_strided_views_are_accepted(tiny_model_root):
    bgr = _image(30, 40, 10)
    view = bgr[:, :, ::-1]                      # negative strides, as from a BGR camera
    out = _load(tiny_model_root).predict([view], processing_resolution=48)
    copy = _load(tiny_model_root).predict([view.copy()], processing_resolution=48)
    np.testing.assert_array_equal(out.depth[0], copy.depth[0])


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get('GENPERCEPT_TEST_COMPILE'),
                    reason='torch.compile takes minutes on CPU; set GENPERCEPT_TEST_COMPILE=1')
def test_torch_compile_matches_eager(tiny_model_root):
    image = [_image(48, 64, 11)]
    eager = _load(tiny_model_root, 'disparity-dpt-v2').predict(image, processing_resolution=64)
    compiled_predictor = GenPerceptPredictor.from_pretrained(
        'disparity-dpt-v2', 'normal-v2', model_root=tiny_model_root, device='cpu', dtype='fp32')
    compiled_predictor.compile_models()
    compiled = compiled_predictor.predict(image, processing_resolution=64)
    np.testing.assert_allclose(compiled.depth[0], eager.depth[0], atol=1e-4)
    np.testing.assert_allclose(compiled.normal_raw[0], eager.normal_raw[0], atol=1e-4)


def test_profile_flag_keeps_stage_timings(tiny_model_root):
    predictor = GenPerceptPredictor.from_pretrained(
        'disparity-dpt-v2', None, model_root=tiny_model_root, device='cpu', profile=True)
    out = predictor.predict([_image(40, 40, 12)], processing_resolution=48)
    assert {'preprocess', 'encode', 'unet', 'head', 'postprocess', 'to_host'} <= set(out.timings)
    assert out.timings['total'] >= out.timings['unet'] > 0
