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
The DPT neck and head that the ``disparity-dpt-v2`` variant puts on the UNet's up-block features.

diffusers has no such module, so it is written out here with the parameter names of the
reference checkpoint ``dpt_head_identity/model.safetensors`` (the reference class is
``DPTNeckHeadForUnetAfterUpsampleIdentity``).
"""

import torch
from torch import nn
from torch.nn import functional


class _NearestUpsampleConv(nn.Module):
    """Nearest-neighbour x2 then a 3x3 convolution (diffusers ``Upsample2D(use_conv=True)``)."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, hidden):
        dtype = hidden.dtype
        # upsample_nearest2d lacks bfloat16 kernels on some builds; the reference casts likewise.
        if dtype == torch.bfloat16:
            hidden = hidden.float()
        hidden = functional.interpolate(hidden, scale_factor=2.0, mode='nearest')
        return self.conv(hidden.to(dtype))


class _PreActResidual(nn.Module):
    def __init__(self, features, bias):
        super().__init__()
        self.convolution1 = nn.Conv2d(features, features, 3, padding=1, bias=bias)
        self.convolution2 = nn.Conv2d(features, features, 3, padding=1, bias=bias)

    def forward(self, hidden):
        out = self.convolution1(torch.relu(hidden))
        out = self.convolution2(torch.relu(out))
        return out + hidden


class _FusionLayer(nn.Module):
    def __init__(self, features, bias, with_skip):
        super().__init__()
        self.projection = nn.Conv2d(features, features, kernel_size=1, bias=True)
        if with_skip:
            self.residual_layer1 = _PreActResidual(features, bias)
        self.residual_layer2 = _PreActResidual(features, bias)

    def forward(self, hidden, skip=None):
        if skip is not None:
            if skip.shape != hidden.shape:
                skip = functional.interpolate(
                    skip, size=hidden.shape[2:], mode='bilinear', align_corners=False)
            hidden = hidden + self.residual_layer1(skip)
        hidden = self.residual_layer2(hidden)
        hidden = functional.interpolate(
            hidden, scale_factor=2, mode='bilinear', align_corners=True)
        return self.projection(hidden)


class _FusionStage(nn.Module):
    def __init__(self, features, bias, levels):
        super().__init__()
        self.layers = nn.ModuleList(
            _FusionLayer(features, bias, with_skip=index > 0) for index in range(levels))

    def forward(self, features):
        coarse_first = features[::-1]
        fused = [self.layers[0](coarse_first[0])]
        for skip, layer in zip(coarse_first[1:], self.layers[1:]):
            fused.append(layer(fused[-1], skip))
        return fused


class _Neck(nn.Module):
    def __init__(self, neck_hidden_sizes, features, bias):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, features, kernel_size=3, padding=1, bias=False)
            for channels in neck_hidden_sizes)
        self.fusion_stage = _FusionStage(features, bias, len(neck_hidden_sizes))

    def forward(self, features):
        return self.fusion_stage([conv(f) for conv, f in zip(self.convs, features)])


class _Head(nn.Module):
    def __init__(self, features, add_projection):
        super().__init__()
        self.projection = (
            nn.Conv2d(features, features, kernel_size=3, padding=1) if add_projection else None)
        self.head = nn.Sequential(
            nn.Conv2d(features, features // 2, kernel_size=3, padding=1),
            nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True),
            nn.Conv2d(features // 2, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 1, kernel_size=1),
            nn.Identity(),
        )

    def forward(self, hidden):
        if self.projection is not None:
            hidden = torch.relu(self.projection(hidden))
        return self.head(hidden).squeeze(1)


class DPTHead(nn.Module):
    """
    DPT neck + identity head on four UNet up-block features.

    ``forward(features)`` takes the up-block outputs finest first
    ``[C0 @ h, C1 @ h, C2 @ h/2, C3 @ h/4]`` (``C = neck_hidden_sizes``) and returns the
    prediction ``[B, 8h, 8w]`` (no final activation).
    """

    def __init__(self, config):
        super().__init__()
        if config.get('use_batch_norm_in_fusion_residual'):
            raise ValueError('DPT head with batch norm in the fusion residuals is not supported')
        sizes = list(config['neck_hidden_sizes'])
        features = int(config['fusion_hidden_size'])
        bias = config.get('use_bias_in_fusion_residual')
        bias = True if bias is None else bool(bias)
        if int(config.get('head_in_index', -1)) != -1:
            raise ValueError('DPT head_in_index other than -1 is not supported')
        self.config = dict(config)
        self.feature_upsample_0 = _NearestUpsampleConv(sizes[0])
        self.neck = _Neck(sizes, features, bias)
        self.head = _Head(features, bool(config.get('add_projection', False)))

    def forward(self, features):
        if len(features) != len(self.neck.convs):
            raise ValueError(
                f'DPT head expects {len(self.neck.convs)} feature maps, got {len(features)}')
        features = [self.feature_upsample_0(features[0])] + list(features[1:])
        return self.head(self.neck(features)[-1])
