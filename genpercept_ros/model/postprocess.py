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
Post-processing of decoded predictions, per the reference recipe of each variant.

Every function works on ``[B, C, h, w]`` device tensors and returns float32 device tensors:
raw outputs with exactly the meaning of the reference ``_pred.npy`` and unit normals in the ROS
optical frame.
"""

from genpercept_ros.model.preprocess import resize_like_torchvision
from genpercept_ros.model.registry import POST_E2E_FT_DEPTH
from genpercept_ros.model.registry import POST_E2E_FT_NORMAL
from genpercept_ros.model.registry import POST_LOTUS_D
from genpercept_ros.model.registry import POST_V1_DEPTH
from genpercept_ros.model.registry import POST_V1_NORMAL
from genpercept_ros.model.registry import POST_V2_CLIP
from genpercept_ros.model.registry import POST_V2_DPT
import torch
from torch.nn import functional

# GenPercept's camera frame is x right, y up, z towards the camera; ROS optical is x right,
# y down, z forward.
GENPERCEPT_TO_OPTICAL = (1.0, -1.0, -1.0)


def minmax_per_image(pred):
    """
    Stretch each image of ``[B, ...]`` to exactly [0, 1]: ``(p - min) / (max - min)``.

    A constant image (max == min) gives 0 everywhere instead of the reference's 0 / 0 NaN.
    """
    flat = pred.reshape(pred.shape[0], -1)
    low = flat.amin(dim=1).reshape((-1,) + (1,) * (pred.dim() - 1))
    high = flat.amax(dim=1).reshape((-1,) + (1,) * (pred.dim() - 1))
    span = high - low
    return torch.where(span > 0, (pred - low) / torch.where(span > 0, span, 1.0),
                       torch.zeros_like(pred))


def postprocess(recipe, pred, channel_mean, out_size):
    """
    Turn decoded ``pred`` [B, 3, h, w] (or the DPT head's [B, 1, h, w]) into the raw output.

    Returns float32 ``[B, C, H, W]`` with C = 1 for depth/disparity, 3 for normals.
    """
    pred = pred.float()
    if recipe in (POST_E2E_FT_DEPTH, POST_E2E_FT_NORMAL, POST_LOTUS_D):
        return _postprocess_onestep(recipe, pred, channel_mean, out_size)
    if recipe == POST_V2_DPT:
        # The reference normalises over the whole batch tensor and always runs batch size 1,
        # so each image is stretched on its own here (results do not depend on batching).
        pred = minmax_per_image(pred)
        return resize_like_torchvision(pred, out_size).clamp(0.0, 1.0)
    if channel_mean:
        pred = pred.mean(dim=1, keepdim=True)
    pred = torch.clip(pred, -1.0, 1.0)
    if recipe == POST_V2_CLIP:
        pred = (pred + 1.0) / 2.0
        return resize_like_torchvision(pred, out_size).clamp(0.0, 1.0)
    if tuple(pred.shape[-2:]) != tuple(out_size):
        pred = functional.interpolate(pred, size=tuple(out_size), mode='bilinear')
    if recipe == POST_V1_DEPTH:
        return minmax_per_image(pred)
    if recipe == POST_V1_NORMAL:
        return pred.clip(-1.0, 1.0)
    raise ValueError(f'unknown post-processing recipe {recipe!r}')


def unit_normals_marigold(pred, dim):
    """Return ``pred / (||pred||_2 + 1e-5)`` along ``dim``, as E2E-FT's Marigold pipeline does."""
    return pred / (torch.norm(pred, p=2, dim=dim, keepdim=True) + 1e-5)


def _postprocess_onestep(recipe, pred, channel_mean, out_size):
    """
    E2E-FT and Lotus-D post-processing, following ``marigold_pipeline.py`` / ``LotusDPipeline``.

    E2E-FT depth: channel mean, clip [-1, 1], (x + 1) / 2, per-image min-max (constant image -> 0),
    resize (bilinear, antialias), clip [0, 1]. E2E-FT normals: ``n / (|n| + 1e-5)`` in
    ``single_infer`` and again in ``__call__``, resize (bilinear, antialias), clip [-1, 1].
    Lotus-D: ``clamp(x / 2 + 0.5, 0, 1)`` (diffusers' ``VaeImageProcessor`` denormalisation),
    resize back with nearest-exact, then the channel mean for depth (``infer.py``).
    """
    if recipe == POST_E2E_FT_DEPTH:
        pred = (torch.clip(pred.mean(dim=1, keepdim=True), -1.0, 1.0) + 1.0) / 2.0
        pred = minmax_per_image(pred)
        return resize_like_torchvision(pred, out_size).clamp(0.0, 1.0)
    if recipe == POST_E2E_FT_NORMAL:
        pred = unit_normals_marigold(unit_normals_marigold(pred, 1), 1)
        return resize_like_torchvision(pred, out_size).clamp(-1.0, 1.0)
    pred = (pred / 2 + 0.5).clamp(0, 1)
    if tuple(pred.shape[-2:]) != tuple(out_size):
        pred = functional.interpolate(pred, size=tuple(out_size), mode='nearest-exact')
    if channel_mean:
        pred = pred.mean(dim=1, keepdim=True)
    return pred


def raw_layout(raw, layout):
    """Arrange ``[B, C, H, W]`` as the reference ``_pred.npy`` of each image: HW, HWC or CHW."""
    if layout == 'HW':
        return raw[:, 0]
    if layout == 'HWC':
        return raw.permute(0, 2, 3, 1)
    return raw


def normals_to_optical(raw, shifted):
    """
    Convert raw normals ``[B, 3, H, W]`` to unit vectors ``[B, H, W, 3]`` in the ROS optical frame.

    ``shifted``: raw values are (n + 1) / 2 (GenPercept v2, Lotus-D), else n (GenPercept v1,
    E2E-FT). The vector (x, y, z) (x right, y up, z towards the camera) maps to (x, -y, -z) and
    is renormalised (the model output is not unit length); zero-length vectors become NaN.
    """
    normals = raw * 2.0 - 1.0 if shifted else raw
    # Built from slices, not from a host-side sign vector: no host-to-device copy (no sync).
    normals = torch.stack([sign * normals[:, axis]
                           for axis, sign in enumerate(GENPERCEPT_TO_OPTICAL)], dim=-1)
    length = torch.linalg.vector_norm(normals, dim=-1, keepdim=True)
    unit = normals / torch.where(length > 0, length, 1.0)
    return torch.where(length > 0, unit, torch.full_like(unit, float('nan')))
