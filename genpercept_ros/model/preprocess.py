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
Input resizing and normalisation, reproducing the reference exactly.

v2 (and E2E-FT, whose Marigold pipeline does the same) resizes the uint8 image like torchvision's
``resize(..., BILINEAR, antialias=True)`` (float interpolation, round half to even, back to uint8)
and normalises in float32; v1 resizes with PIL's default (bicubic) and normalises in float64;
Lotus-D normalises first (``x / 127.5 - 1`` in float32) and resizes the float image. Tensors stay
on their device.
"""

import numpy as np
import torch
from torch.nn import functional


def resize_like_torchvision(images, size):
    """
    Resize ``[B, C, H, W]`` images like ``torchvision.transforms.functional.resize``.

    Bilinear, ``align_corners=False``, antialias; uint8 input is interpolated in float32 then
    rounded half to even; other float dtypes go through float32. Same size returns the input.
    """
    size = (int(size[0]), int(size[1]))
    if tuple(images.shape[-2:]) == size:
        return images
    dtype = images.dtype
    work = images if dtype in (torch.float32, torch.float64) else images.float()
    out = functional.interpolate(work, size=size, mode='bilinear', align_corners=False,
                                 antialias=True)
    if dtype == torch.uint8:
        return out.round_().to(torch.uint8)
    return out.to(dtype)


def normalise_v2(images_uint8, dtype):
    """Map uint8 ``[B, 3, H, W]`` to [-1, 1] in float32 (``x / 255 * 2 - 1``), then ``dtype``."""
    return (images_uint8 / 255.0 * 2.0 - 1.0).to(dtype)


def preprocess_v2(images_uint8, size, dtype):
    """Resize (torchvision rule) and normalise a uint8 ``[B, 3, H, W]`` batch on its device."""
    return normalise_v2(resize_like_torchvision(images_uint8, size), dtype)


def preprocess_v1(images_hwc, size, dtype, device):
    """
    Resize with PIL's default filter (bicubic) and normalise in float64, like GenPercept v1.

    ``images_hwc`` are uint8 HxWx3 numpy arrays (PIL needs host memory).
    """
    from PIL import Image
    batch = []
    for image in images_hwc:
        pil = Image.fromarray(np.ascontiguousarray(image))
        if pil.size != (size[1], size[0]):
            pil = pil.resize((size[1], size[0]))
        array = np.asarray(pil.convert('RGB')).transpose(2, 0, 1)
        batch.append(array / 255.0 * 2.0 - 1.0)
    return torch.from_numpy(np.stack(batch)).to(dtype).to(device)


def preprocess_float(images_uint8, size, dtype):
    """
    Normalise then resize a uint8 ``[B, 3, H, W]`` batch, as Lotus's ``infer.py``/pipeline do.

    ``x / 127.5 - 1`` in float32 (not bit-equal to ``x / 255 * 2 - 1``), then the float
    torchvision resize (bilinear, antialias); the result is cast to ``dtype``.
    """
    return resize_like_torchvision(images_uint8.float() / 127.5 - 1.0, size).to(dtype)
