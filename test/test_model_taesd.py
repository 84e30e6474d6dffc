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
The optional fast decoder ``decoder='taesd'`` (diffusers AutoencoderTiny), with tiny weights.

The independent expectation is diffusers' own ``AutoencoderTiny.from_pretrained(folder)
.decode(latent)`` on the x0 latent restated from the UNet output (GenPercept v2: x0 = -v) with
TAESD's ``scaling_factor`` 1.0, i.e. the SD-scaled latent unchanged, and the v2 recipe restated
by hand: channel mean, clip to [-1, 1], (x + 1) / 2.
"""

import shutil

from genpercept_ros.model.predictor import GenPerceptPredictor
from genpercept_ros.model.predictor import TAESD_KEY
from genpercept_ros.model.weights import WeightsError
import numpy as np
import pytest
import torch

H, W = 48, 64   # processing size = input size: no resize in the comparison


def _image():
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def _load(root, decoder, depth='depth-v2', normal='', dtype='fp32'):
    return GenPerceptPredictor.from_pretrained(
        depth, normal, model_root=root, device='cpu', dtype=dtype, acceleration='eager',
        decoder=decoder)


def test_tiny_taesd_weights_have_the_hub_layout(tiny_model_root):
    from safetensors import safe_open
    folder = tiny_model_root / 'taesd'
    assert (folder / 'config.json').is_file()
    with safe_open(str(folder / 'diffusion_pytorch_model.safetensors'), 'pt') as handle:
        keys = set(handle.keys())
    # AutoencoderTiny's real key names: Sequential layers of the encoder and decoder.
    assert 'decoder.layers.0.weight' in keys and 'encoder.layers.0.weight' in keys
    import json
    config = json.loads((folder / 'config.json').read_text())
    assert config['_class_name'] == 'AutoencoderTiny'
    assert config['scaling_factor'] == 1.0 and config['latent_channels'] == 4


def test_taesd_decode_equals_autoencoder_tiny_on_the_sd_scaled_latent(tiny_model_root):
    from diffusers import AutoencoderTiny
    predictor = _load(tiny_model_root, 'taesd')
    assert predictor.decoder == 'taesd'
    assert 'taesd (madebyollin/taesd, MIT' in predictor.describe()
    captured = {}
    unet = predictor._unets['depth']
    taesd = predictor._vaes[TAESD_KEY]
    hooks = [
        unet.register_forward_hook(
            lambda _m, _i, out: captured.__setitem__('v', out.sample.detach().clone())),
        taesd.decoder.register_forward_hook(
            lambda _m, inputs, out: captured.update(z=inputs[0].detach().clone(),
                                                    decoded=out.detach().clone()))]
    try:
        result = predictor.predict([_image()], processing_resolution=W)
    finally:
        for hook in hooks:
            hook.remove()
    x0 = -captured['v']             # GenPercept v2: one beta = 1 DDIM step, x0 = -v
    # TAESD takes the SD-scaled latent as it is (scaling_factor 1.0): no division by 0.18215.
    torch.testing.assert_close(captured['z'], x0, rtol=0, atol=0)
    reference = AutoencoderTiny.from_pretrained(str(tiny_model_root / 'taesd')).eval()
    with torch.no_grad():
        expected = reference.decode(x0).sample      # in [-1, 1] (DecoderTiny: x * 2 - 1)
    assert float((captured['decoded'] - expected).abs().max()) <= 1e-6
    depth = ((expected.mean(dim=1).clip(-1.0, 1.0) + 1.0) / 2.0).clamp(0.0, 1.0)[0]
    np.testing.assert_allclose(result.depth_raw[0], depth.numpy(), rtol=0, atol=1e-6)


def test_vae_and_taesd_differ_and_vae_stays_the_default(tiny_model_root):
    default = GenPerceptPredictor.from_pretrained(
        'depth-v2', '', model_root=tiny_model_root, device='cpu', dtype='fp32')
    assert default.decoder == 'vae' and TAESD_KEY not in default._vaes
    assert 'decoder vae' in default.describe()
    vae = default.predict([_image()], processing_resolution=W).depth_raw[0]
    fast = _load(tiny_model_root, 'taesd').predict([_image()], processing_resolution=W)
    assert np.abs(fast.depth_raw[0] - vae).max() > 1e-3


@pytest.mark.parametrize('normal', ['normal-v1', 'normal-e2e-ft', 'normal-lotus-d'])
def test_every_vae_decoded_family_decodes_with_taesd(tiny_model_root, normal):
    predictor = _load(tiny_model_root, 'taesd', depth='', normal=normal)
    calls = []
    hook = predictor._vaes[TAESD_KEY].decoder.register_forward_hook(
        lambda *_: calls.append(1))
    try:
        out = predictor.predict([_image()], processing_resolution=W)
    finally:
        hook.remove()
    assert calls and np.isfinite(out.normal_raw[0]).all()
    assert 'normal: taesd' in predictor.decoder_summary()


def test_bf16_taesd_output_is_fp32(tiny_model_root):
    predictor = _load(tiny_model_root, 'taesd', dtype='bf16')
    dtypes = []
    hook = predictor._vaes[TAESD_KEY].decoder.register_forward_hook(
        lambda _m, _i, out: dtypes.append(out.dtype))
    try:
        predictor.predict([_image()], processing_resolution=W)
    finally:
        hook.remove()
    assert dtypes == [torch.float32]


def test_dpt_head_models_ignore_the_decoder_and_need_no_taesd(tiny_model_root, tmp_path):
    root = tmp_path / 'root'
    shutil.copytree(tiny_model_root, root)
    shutil.rmtree(root / 'taesd')
    predictor = _load(root, 'taesd', depth='disparity-dpt-v2')
    assert TAESD_KEY not in predictor._vaes
    assert 'depth: DPT head (decoder ignored)' in predictor.describe()


def test_missing_taesd_file_names_it_and_the_download_command(tiny_model_root, tmp_path):
    root = tmp_path / 'root'
    shutil.copytree(tiny_model_root, root)
    (root / 'taesd' / 'diffusion_pytorch_model.safetensors').unlink()
    with pytest.raises(WeightsError) as error:
        _load(root, 'taesd')
    message = str(error.value)
    assert 'taesd/diffusion_pytorch_model.safetensors' in message
    assert 'genpercept download' in message and '--decoder taesd' in message


def test_unknown_decoder_is_a_value_error(tiny_model_root):
    with pytest.raises(ValueError, match='decoder must be one of vae, taesd'):
        _load(tiny_model_root, 'tiny')
