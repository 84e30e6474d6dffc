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

"""Devices, dtypes, input validation, memory and stage timing for the predictor."""

import gc
import time

import numpy as np
import torch

DTYPES = {
    'fp32': torch.float32, 'float32': torch.float32,
    'fp16': torch.float16, 'float16': torch.float16, 'half': torch.float16,
    'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16,
}
DTYPE_NAMES = {torch.float32: 'fp32', torch.float16: 'fp16', torch.bfloat16: 'bf16'}

# Raised unchanged by ``predict`` when the accelerator runs out of memory.
OutOfMemoryError = torch.OutOfMemoryError


def release_cached_memory(predictor=None):
    """
    Release what an out-of-memory error or an unloaded model left behind; never raises.

    Calls ``predictor.free_memory()`` when given (a predictor without one is skipped), then
    collects garbage and empties the CUDA caching allocator when CUDA is available.
    """
    free = getattr(predictor, 'free_memory', None)
    if free is not None:
        try:
            free()
        except Exception:  # noqa: B902 - freeing memory must never raise
            pass
    gc.collect()
    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except RuntimeError:
        pass


def resolve_device(device):
    """Return a torch.device for 'cpu', 'cuda', 'cuda:N' (None = cuda if available)."""
    if device in (None, '', 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f'invalid device {device!r}: use cpu, cuda or cuda:N') from error
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'device {device} requested but CUDA is not available here')
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f'device {device} requested but only '
                             f'{torch.cuda.device_count()} CUDA device(s) exist')
    elif device.type != 'cpu':
        raise ValueError(f'unsupported device {device}: use cpu, cuda or cuda:N')
    return device


def resolve_dtype(dtype, device):
    """Return the compute dtype: bf16 by default on CUDA, fp32 on CPU."""
    if dtype in (None, '', 'auto'):
        return torch.bfloat16 if device.type == 'cuda' else torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPE_NAMES:
            raise ValueError(f'unsupported dtype {dtype}: use fp32, fp16 or bf16')
        return dtype
    try:
        return DTYPES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f'unsupported dtype {dtype!r}: use fp32, fp16 or bf16') from None


def vae_dtype_for(dtype):
    """Return the VAE dtype: the SD VAE overflows in fp16, so fp16 runs keep it in bf16."""
    return torch.bfloat16 if dtype == torch.float16 else dtype


def place_module(module, device, dtype, memory_format):
    """Move ``module`` to ``device``/``dtype``/``memory_format``."""
    # torch.nn.Module.to: diffusers' override only adds a warning about fp32-pinned modules,
    # which SD UNets and VAEs do not have.
    return torch.nn.Module.to(module, device=device, dtype=dtype, memory_format=memory_format)


class Stopwatch:
    """Accumulate per-stage wall time; synchronise CUDA only when asked (profiling)."""

    def __init__(self, device, synchronise):
        self.device = device
        self.synchronise = synchronise and device.type == 'cuda'
        self.totals = {}

    def stage(self, name):
        return _Stage(self, name)


class _Stage:
    def __init__(self, watch, name):
        self.watch, self.name = watch, name

    def __enter__(self):
        if self.watch.synchronise:
            torch.cuda.synchronize(self.watch.device)
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        if self.watch.synchronise:
            torch.cuda.synchronize(self.watch.device)
        elapsed = time.perf_counter() - self.start
        self.watch.totals[self.name] = self.watch.totals.get(self.name, 0.0) + elapsed
        return False


def as_image_list(images):
    """Split the input into a list of HxWx3 uint8 arrays/tensors, with clear errors."""
    if isinstance(images, (np.ndarray, torch.Tensor)):
        if images.ndim == 4:
            images = list(images)
        elif images.ndim == 3:
            images = [images]
        else:
            raise ValueError(f'expected an HxWx3 image or a BxHxWx3 batch, got shape '
                             f'{tuple(images.shape)}')
    images = list(images)
    if not images:
        raise ValueError('predict() needs at least one image')
    for index, image in enumerate(images):
        if not isinstance(image, (np.ndarray, torch.Tensor)):
            raise TypeError(f'image {index} is a {type(image).__name__}; expected a numpy '
                            'array or torch tensor')
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f'image {index} has shape {tuple(image.shape)}; expected HxWx3 RGB '
                             '(convert grayscale/RGBA to RGB first)')
        if image.dtype not in (np.uint8, torch.uint8):
            raise ValueError(f'image {index} has dtype {image.dtype}; expected uint8 RGB')
    return images
