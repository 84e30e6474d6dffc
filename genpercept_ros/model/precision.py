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
Keep the last layers of the decoders in fp32 whatever the compute dtype.

In bf16 the SD VAE decoder's last GroupNorm and convolution would write bf16 (8 bits of
mantissa), so depth would reach fp32 already quantised to about 1/256 of its range: terraces
in point clouds and in normals computed from depth. The DPT head's final convolution has the
same issue before its min-max stretch. These layers are a tiny share of the work (the SD
decoder's ``conv_norm_out`` + ``conv_out`` are 128 -> 3 channels), so running them in fp32
costs little. The wrapper holds its own fp32 copy of the layer taken before the model is cast,
and ignores later dtype casts (device moves still apply).
"""

import torch
from torch import nn


class Float32Layer(nn.Module):
    """
    Run ``layer`` in fp32 on an fp32 copy of its input; return fp32.

    ``layer`` is converted to fp32 once; ``Module.to(dtype)`` / ``.half()`` / ``.bfloat16()`` on
    a parent leave it in fp32 (only the device and memory format follow the parent).
    """

    def __init__(self, layer):
        super().__init__()
        self.layer = layer.float()

    def _apply(self, fn, recurse=True):
        # Learn where ``fn`` sends a float32 tensor (device) and move there, still in fp32.
        probe = next(iter(self.layer.parameters()), None)
        device = probe.device if probe is not None else torch.device('cpu')
        target = fn(torch.empty(0, dtype=torch.float32, device=device)).device
        self.layer = self.layer.to(device=target, dtype=torch.float32)
        return self

    def forward(self, hidden, *args, **kwargs):
        """Apply the fp32 layer to ``hidden.float()``."""
        return self.layer(hidden.float(), *args, **kwargs)


def keep_vae_decoder_output_fp32(vae):
    """
    Make the SD VAE decoder's ``conv_norm_out`` and ``conv_out`` run in fp32 (in place).

    Call before casting the VAE to bf16/fp16 so that the fp32 (or fp16 checkpoint) values of
    these two layers are kept exactly; idempotent. Returns ``vae``. The decoder then returns
    fp32 ``[B, 3, H, W]``, and the following channel mean runs on fp32 values.
    """
    decoder = vae.decoder
    for name in ('conv_norm_out', 'conv_out'):
        layer = getattr(decoder, name)
        if not isinstance(layer, Float32Layer):
            setattr(decoder, name, Float32Layer(layer))
    return vae


def keep_taesd_decoder_output_fp32(taesd):
    """
    Make TAESD's last decoder convolution (``decoder.layers[-1]``, 64 -> 3) run in fp32.

    In place, idempotent, returns ``taesd`` (diffusers ``AutoencoderTiny``). Its decoder then
    returns fp32 ``[B, 3, H, W]``; the ``mul(2).sub(1)`` that follows runs on fp32 values.
    """
    layers = taesd.decoder.layers
    if not isinstance(layers[-1], Float32Layer):
        layers[-1] = Float32Layer(layers[-1])
    return taesd


def keep_decoder_output_fp32(decoder_model):
    """Apply the fp32 tail of an SD VAE (AutoencoderKL) or of TAESD (AutoencoderTiny)."""
    if hasattr(decoder_model.decoder, 'conv_out'):
        return keep_vae_decoder_output_fp32(decoder_model)
    return keep_taesd_decoder_output_fp32(decoder_model)


def keep_dpt_head_output_fp32(head):
    """
    Make the DPT head's final 1x1 convolution run in fp32 (in place); returns ``head``.

    The head then returns fp32 ``[B, 8h, 8w]`` before the reference min-max stretch.
    """
    layers = head.head.head
    for index in range(len(layers) - 1, -1, -1):
        if isinstance(layers[index], (nn.Conv2d, Float32Layer)):
            if not isinstance(layers[index], Float32Layer):
                layers[index] = Float32Layer(layers[index])
            break
    return head
