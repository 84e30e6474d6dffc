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
Predictor numerics against an independent, straightforward re-statement of the reference.

The reference computations below follow the pseudo-code of the GenPercept specification
(v2 section 3.10, DPT head 3.9, v1 section 4) step by step, with components loaded through
diffusers' and transformers' own ``from_pretrained`` and the DPT head written out with
``torch.nn.functional`` on the raw state dict, so they share no code with the predictor.
"""

import functools

import numpy as np
from PIL import Image
import pytest
import torch
from torch.nn import functional

SCALE = 0.18215
TOLERANCE = 1e-5


def _load_reference_components(root):
    from diffusers import AutoencoderKL
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel
    from transformers import CLIPTokenizer
    sd21 = root / 'stable-diffusion-2-1'
    return {
        'vae': AutoencoderKL.from_pretrained(sd21 / 'vae').eval(),
        'vae_v1': AutoencoderKL.from_pretrained(root / 'GenPercept' / 'vae',
                                                torch_dtype=torch.float32).eval(),
        'tokenizer': CLIPTokenizer.from_pretrained(sd21 / 'tokenizer'),
        'text_encoder': CLIPTextModel.from_pretrained(sd21 / 'text_encoder').eval(),
        'unet': functools.lru_cache(maxsize=None)(
            lambda repo, name: UNet2DConditionModel.from_pretrained(root / repo / name).eval()),
    }


@pytest.fixture(scope='module')
def reference(tiny_model_root):
    return _load_reference_components(tiny_model_root)


def _tv_resize(x, size):
    """Torchvision's tensor resize: bilinear, antialias, uint8 rounded back."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    y = functional.interpolate(x.float(), size=size, mode='bilinear', align_corners=False,
                               antialias=True)
    return y.round().to(torch.uint8) if x.dtype == torch.uint8 else y


def _new_size(h, w, p):
    f = min(p / w, p / h)
    return int(h * f), int(w * f)


def _empty_prompt(reference, padded):
    tok = reference['tokenizer']
    ids = tok('', padding='max_length' if padded else 'do_not_pad', max_length=77,
              truncation=True, return_tensors='pt').input_ids
    with torch.no_grad():
        out = reference['text_encoder'](ids)[0]
    return out.half().float() if padded else out


def _reference_v2(reference, unet, img, p, mode):
    """Specification section 3.10, verbatim."""
    x_u8 = torch.from_numpy(img).permute(2, 0, 1)[None]
    h, w = img.shape[:2]
    if p > 0:
        x_u8 = _tv_resize(x_u8, _new_size(h, w, p))
    x = x_u8 / 255.0 * 2.0 - 1.0
    vae = reference['vae']
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mean * SCALE
        c = _empty_prompt(reference, padded=False)
        v = unet(z, torch.tensor([1]), encoder_hidden_states=c).sample
        y = vae.decode(-v / SCALE).sample
    if mode == 'depth':
        y = y.mean(1, keepdim=True)
    y = (y.clamp(-1, 1) + 1) / 2
    y = _tv_resize(y, (h, w)).squeeze().clamp(0, 1).numpy()
    return y.transpose(1, 2, 0) if y.ndim == 3 else y


def _dpt_head_reference(state, features):
    """Section 3.9, written with functional ops on the checkpoint tensors."""
    def conv(x, name, padding):
        return functional.conv2d(x, state[name + '.weight'], state.get(name + '.bias'),
                                 padding=padding)

    def residual(x, name):
        y = conv(torch.relu(x), name + '.convolution1', 1)
        return conv(torch.relu(y), name + '.convolution2', 1) + x

    features = list(features)
    features[0] = conv(functional.interpolate(features[0], scale_factor=2.0, mode='nearest'),
                       'feature_upsample_0.conv', 1)
    features = [conv(f, f'neck.convs.{i}', 1) for i, f in enumerate(features)][::-1]
    fused = None
    for i, skip in enumerate(features):
        layer = f'neck.fusion_stage.layers.{i}'
        if fused is None:
            fused = skip
        else:
            if skip.shape != fused.shape:
                skip = functional.interpolate(skip, size=fused.shape[2:], mode='bilinear',
                                              align_corners=False)
            fused = fused + residual(skip, layer + '.residual_layer1')
        fused = residual(fused, layer + '.residual_layer2')
        fused = functional.interpolate(fused, scale_factor=2, mode='bilinear',
                                       align_corners=True)
        fused = conv(fused, layer + '.projection', 0)
    x = torch.relu(conv(fused, 'head.projection', 1))
    x = conv(x, 'head.head.0', 1)
    x = functional.interpolate(x, scale_factor=2, mode='bilinear', align_corners=True)
    x = torch.relu(conv(x, 'head.head.2', 1))
    return conv(x, 'head.head.4', 0)


def _reference_dpt(reference, root, img, p):
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file
    folder = root / 'genpercept-models' / 'unet_disparity_dpt_head_v2'
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder))
    missing, unexpected = unet.load_state_dict(
        load_file(folder / 'diffusion_pytorch_model.safetensors'), strict=False)
    assert not unexpected and all(k.startswith(('conv_out', 'conv_norm_out')) for k in missing)
    unet.eval()
    taps = []
    hooks = [block.register_forward_hook(lambda m, i, o: taps.append(o))
             for block in unet.up_blocks]
    x_u8 = torch.from_numpy(img).permute(2, 0, 1)[None]
    h, w = img.shape[:2]
    x_u8 = _tv_resize(x_u8, _new_size(h, w, p))
    x = x_u8 / 255.0 * 2.0 - 1.0
    with torch.no_grad():
        z = reference['vae'].encode(x).latent_dist.mean * SCALE
        unet(z, torch.tensor([1]), encoder_hidden_states=_empty_prompt(reference, False))
        state = load_file(root / 'genpercept-models' / 'dpt_head_identity' / 'model.safetensors')
        pred = _dpt_head_reference(state, taps[::-1])
    for hook in hooks:
        hook.remove()
    pred = (pred - pred.min()) / (pred.max() - pred.min())
    return _tv_resize(pred, (h, w)).squeeze().clamp(0, 1).numpy()


def _reference_v1(reference, unet, img, p, mode):
    """Specification section 4: PIL resize, float64 normalisation, 77-token fp16 prompt."""
    h, w = img.shape[:2]
    pil = Image.fromarray(img)
    nh, nw = _new_size(h, w, p)
    pil = pil.resize((nw, nh))
    x = torch.from_numpy(np.asarray(pil).transpose(2, 0, 1) / 255.0 * 2.0 - 1.0).float()[None]
    vae = reference['vae_v1']
    with torch.no_grad():
        moments = vae.quant_conv(vae.encoder(x))
        z = moments[:, :4] * SCALE
        c = _empty_prompt(reference, padded=True)
        out = -unet(z, torch.tensor([1]), encoder_hidden_states=c).sample
        y = vae.decoder(vae.post_quant_conv(out / SCALE))
    if mode == 'depth':
        y = y.mean(1, keepdim=True)
    y = functional.interpolate(torch.clip(y, -1, 1), (h, w), mode='bilinear')
    if mode == 'depth':
        y = y[0, 0]
        return ((y - y.min()) / (y.max() - y.min())).numpy()
    return y[0].clip(-1, 1).numpy()


@pytest.fixture(scope='module')
def images():
    rng = np.random.default_rng(7)
    smooth = np.kron(rng.integers(0, 256, (6, 8, 3)), np.ones((9, 9, 1)))[:51, :67]
    noise = rng.integers(-20, 21, smooth.shape)
    return [np.clip(smooth + noise, 0, 255).astype(np.uint8),
            rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)]


@functools.lru_cache(maxsize=None)
def _predictor(root, depth, normal):
    from genpercept_ros.model.predictor import GenPerceptPredictor
    return GenPerceptPredictor.from_pretrained(depth, normal, model_root=root, device='cpu',
                                               dtype='fp32')


@pytest.mark.parametrize('processing', [64, 0, 72])
def test_v2_depth_and_normal_match_reference(tiny_model_root, reference, images, processing):
    predictor = _predictor(tiny_model_root, 'depth-v2', 'normal-v2')
    out = predictor.predict(images, processing_resolution=processing)
    for index, img in enumerate(images):
        depth = _reference_v2(reference, reference['unet']('genpercept-models', 'unet_depth_v2'),
                              img, processing, 'depth')
        normal = _reference_v2(
            reference, reference['unet']('genpercept-models', 'unet_normal_v2'),
            img, processing, 'normal')
        assert out.depth_raw[index].shape == img.shape[:2]
        assert out.depth_raw[index].dtype == np.float32
        assert out.normal_raw[index].shape == img.shape
        assert 0.0 < np.ptp(depth) and 0.0 < np.ptp(normal)  # the check is not degenerate
        np.testing.assert_allclose(out.depth_raw[index], depth, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(out.depth[index], depth, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(out.normal_raw[index], normal, atol=TOLERANCE, rtol=0)
    assert out.depth_kind == 'relative_depth'


def test_disparity_v2_matches_reference(tiny_model_root, reference, images):
    predictor = _predictor(tiny_model_root, 'disparity-v2', None)
    out = predictor.predict(images[:1], processing_resolution=64)
    expected = _reference_v2(
        reference, reference['unet']('genpercept-models', 'unet_disparity_v2'),
        images[0], 64, 'depth')
    np.testing.assert_allclose(out.depth_raw[0], expected, atol=TOLERANCE, rtol=0)
    assert out.depth_kind == 'relative_disparity' and out.normals is None


def test_disparity_dpt_v2_matches_reference(tiny_model_root, reference, images):
    predictor = _predictor(tiny_model_root, 'disparity-dpt-v2', None)
    flipped = images[0][::-1].copy()
    expected = [_reference_dpt(reference, tiny_model_root, img, 64)
                for img in (images[0], flipped)]
    for img, want in zip((images[0], flipped), expected):
        out = predictor.predict([img], processing_resolution=64)
        assert want.shape == img.shape[:2]
        np.testing.assert_allclose(out.depth_raw[0], want, atol=TOLERANCE, rtol=0)
    # Batched, each image is still min-max normalised on its own (the reference runs batch
    # size 1; a batch-global min-max would differ by far more); batched convolutions only move
    # the last bits.
    batched = predictor.predict([images[0], flipped], processing_resolution=64)
    for got, want in zip(batched.depth_raw, expected):
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_v1_depth_and_normal_match_reference(tiny_model_root, reference, images):
    predictor = _predictor(tiny_model_root, 'depth-v1', 'normal-v1')
    out = predictor.predict(images, processing_resolution=64)
    for index, img in enumerate(images):
        depth = _reference_v1(reference, reference['unet']('GenPercept', 'unet_depth_v1'),
                              img, 64, 'depth')
        normal = _reference_v1(reference, reference['unet']('GenPercept', 'unet_normal_v1'),
                               img, 64, 'normal')
        assert out.normal_raw[index].shape == (3,) + img.shape[:2]
        np.testing.assert_allclose(out.depth_raw[index], depth, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(out.normal_raw[index], normal, atol=TOLERANCE, rtol=0)
        assert out.depth_raw[index].min() == 0.0 and out.depth_raw[index].max() == 1.0


def test_mixed_versions_share_nothing_wrongly(tiny_model_root, reference, images):
    predictor = _predictor(tiny_model_root, 'depth-v1', 'normal-v2')
    out = predictor.predict(images[:1], processing_resolution=64)
    depth = _reference_v1(reference, reference['unet']('GenPercept', 'unet_depth_v1'),
                          images[0], 64, 'depth')
    normal = _reference_v2(reference, reference['unet']('genpercept-models', 'unet_normal_v2'),
                           images[0], 64, 'normal')
    np.testing.assert_allclose(out.depth_raw[0], depth, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(out.normal_raw[0], normal, atol=TOLERANCE, rtol=0)
