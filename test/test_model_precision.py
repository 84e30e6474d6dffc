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

"""The decoders' last layers and the channel mean run in fp32 in bf16 runs (no quantised depth)."""

from genpercept_ros.model.postprocess import postprocess
from genpercept_ros.model.precision import Float32Layer
from genpercept_ros.model.precision import keep_dpt_head_output_fp32
from genpercept_ros.model.predictor import GenPerceptPredictor
import numpy as np
import pytest
import torch


def _bf16_representable_fraction(values):
    values = torch.as_tensor(values, dtype=torch.float32)
    return (values.bfloat16().float() == values).float().mean().item()


def _smooth_image(height=96, width=128):
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([cols / width, rows / height, (rows + cols) / (height + width)], axis=-1)
    return (rgb * 255.0).astype(np.uint8)


def _skip_without_cpu_bf16():
    try:
        torch.nn.functional.conv2d(torch.ones(1, 3, 8, 8, dtype=torch.bfloat16),
                                   torch.ones(2, 3, 3, 3, dtype=torch.bfloat16))
    except RuntimeError as error:
        pytest.skip(f'bf16 convolution does not run on this CPU/torch build: {error}')


def test_float32_layer_ignores_dtype_casts_and_returns_fp32():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 3, 3, padding=1)
    exact = torch.nn.Conv2d(4, 3, 3, padding=1)
    exact.load_state_dict(conv.state_dict())
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1), Float32Layer(conv))
    model.to(torch.bfloat16)
    assert model[0].weight.dtype == torch.bfloat16
    assert model[1].layer.weight.dtype == torch.float32
    # The fp32 copy was taken before the cast: the weights are the original values exactly.
    assert torch.equal(model[1].layer.weight, exact.weight)
    hidden = torch.randn(1, 4, 8, 8).bfloat16()
    out = model[1](hidden)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, exact(hidden.float()), rtol=0, atol=0)
    model.half()
    model.to('cpu', dtype=torch.float64)
    assert model[1].layer.weight.dtype == torch.float32


def test_bf16_decoder_output_and_depth_are_not_bf16_quantised(tiny_model_root):
    _skip_without_cpu_bf16()
    predictor = GenPerceptPredictor.from_pretrained('depth-v2', '', model_root=tiny_model_root,
                                                    device='cpu', dtype='bf16')
    vae = next(iter(predictor._vaes.values()))
    assert vae.decoder.up_blocks[0].resnets[0].conv1.weight.dtype == torch.bfloat16
    decoded = []
    vae.decoder.register_forward_hook(lambda _module, _inputs, output: decoded.append(output))
    image = _smooth_image()
    depth = predictor.predict([image], processing_resolution=128,
                              output_resolution='processing').depth[0]
    (output,) = decoded
    assert output.dtype == torch.float32
    # A bf16 last layer makes every decoded value bf16-representable (fraction 1.0); fp32 ones
    # almost never are (measured 5e-5 here).
    assert _bf16_representable_fraction(output) < 0.05
    # Depth before resizing: the channel mean of fp32 values; nearly every pixel its own value
    # (measured 12226 of 12288; with a bf16 last layer 6218, i.e. terraces).
    assert depth.shape == (96, 128)
    assert np.unique(depth).size > 0.9 * depth.size
    assert _bf16_representable_fraction(depth) < 0.05


def test_bf16_decoding_stays_within_2e_2_of_fp32(tiny_model_root):
    _skip_without_cpu_bf16()
    exact = GenPerceptPredictor.from_pretrained('depth-v2', '', model_root=tiny_model_root,
                                                device='cpu', dtype='fp32')
    fast = GenPerceptPredictor.from_pretrained('depth-v2', '', model_root=tiny_model_root,
                                               device='cpu', dtype='bf16')
    spec = exact.depth_spec
    torch.manual_seed(0)
    # A smooth latent (bicubic upsampling of a coarse one): the decoder alone, same input.
    latent = torch.nn.functional.interpolate(torch.randn(1, 4, 3, 4), size=(12, 16),
                                             mode='bicubic', align_corners=False)
    depths = []
    for predictor, dtype in ((exact, torch.float32), (fast, torch.bfloat16)):
        vae = next(iter(predictor._vaes.values()))
        with torch.inference_mode():
            pred = vae.decoder(vae.post_quant_conv(latent.to(dtype)))
            assert pred.dtype == torch.float32
            depths.append(postprocess(spec.postprocess, pred, spec.channel_mean, (96, 128)))
    difference = (depths[0] - depths[1]).abs().max().item()
    assert 0 < difference <= 2e-2


def test_dpt_head_output_runs_in_fp32(tiny_model_root):
    _skip_without_cpu_bf16()
    predictor = GenPerceptPredictor.from_pretrained(
        'disparity-dpt-v2', '', model_root=tiny_model_root, device='cpu', dtype='bf16')
    head = predictor._heads['depth']
    final = head.head.head[4]
    assert isinstance(final, Float32Layer) and final.layer.weight.dtype == torch.float32
    assert keep_dpt_head_output_fp32(head).head.head[4] is final   # idempotent
    outputs = []
    head.register_forward_hook(lambda _module, _inputs, output: outputs.append(output))
    predictor.predict([_smooth_image()], processing_resolution=128)
    assert outputs[0].dtype == torch.float32
    assert _bf16_representable_fraction(outputs[0]) < 0.05
