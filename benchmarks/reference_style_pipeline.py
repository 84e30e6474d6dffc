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
A straightforward GenPercept v2 pipeline, run the way the reference ``run.py`` runs it.

The speed baseline of ``bench_model.py`` and an independent numerical cross-check of
:class:`genpercept_ros.model.predictor.GenPerceptPredictor`: components come from the stock
``from_pretrained`` loaders of diffusers / transformers (not the package's loaders), everything
runs in fp32, one image and one task per call, the uint8 image is resized on the CPU and then
copied to the device, the tokenizer and text encoder run on every call, each task encodes the
image again, and every result goes back to the host on its own. It runs under PyTorch's default
precision flags, as the reference (which never sets them) does: cuDNN may use TF32 for fp32
convolutions, cuBLAS may not for matmuls (:func:`pytorch_default_precision`), whatever the caller
has set.

Only the v2 VAE-decoded variants (``depth-v2``, ``disparity-v2``, ``normal-v2``) exist here; the
DPT-head and v1 variants are refused with a ValueError.
"""

import contextlib
import os
import sys

try:
    import genpercept_ros  # noqa: F401
except ImportError:  # run as a script from a checkout without installing the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from genpercept_ros.model.registry import get_model_spec
from genpercept_ros.model.weights import WeightsLocator
import numpy as np
import torch
from torch.nn import functional

LATENT_SCALE = 0.18215
SUPPORTED_VARIANTS = ('depth-v2', 'disparity-v2', 'normal-v2')


# PyTorch's defaults (torch.backends documentation): TF32 allowed in cuDNN convolutions, not in
# cuBLAS matmuls.
DEFAULT_CUDNN_TF32 = True
DEFAULT_MATMUL_TF32 = False


@contextlib.contextmanager
def precision_flags(matmul_tf32, cudnn_tf32):
    """Set ``torch.backends`` TF32 flags inside the block and restore the previous ones after."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = bool(matmul_tf32)
    torch.backends.cudnn.allow_tf32 = bool(cudnn_tf32)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def pytorch_default_precision():
    """Return a context with PyTorch's default TF32 flags (what the reference runs under)."""
    return precision_flags(DEFAULT_MATMUL_TF32, DEFAULT_CUDNN_TF32)


def reference_size(height, width, processing_resolution):
    """Return the processing (h, w): factor ``min(P / W, P / H)``, sizes truncated (run.py)."""
    if processing_resolution <= 0:
        return height, width
    factor = min(processing_resolution / width, processing_resolution / height)
    return int(height * factor), int(width * factor)


def torchvision_style_resize(tensor, size):
    """
    Resize ``[B, C, H, W]`` as torchvision's ``resize(BILINEAR, antialias=True)`` does.

    Same size returns the input; uint8 goes through float32 and is rounded half to even.
    """
    if tuple(tensor.shape[-2:]) == tuple(size):
        return tensor
    work = tensor.float() if tensor.dtype == torch.uint8 else tensor
    out = functional.interpolate(work, size=tuple(size), mode='bilinear', align_corners=False,
                                 antialias=True)
    return out.round().to(torch.uint8) if tensor.dtype == torch.uint8 else out


class ReferenceStylePipeline:
    """
    Run GenPercept v2 like the reference: fp32, per image, per task, nothing cached or fused.

    ``model_root`` is the same folder the predictor reads (``genpercept download`` /
    ``genpercept make-tiny-weights`` layout).
    """

    def __init__(self, model_root, depth_model='depth-v2', normal_model='normal-v2',
                 device='cpu'):
        from diffusers import AutoencoderKL
        from diffusers import UNet2DConditionModel
        from transformers import CLIPTextModel
        from transformers import CLIPTokenizer
        from transformers.utils import logging as transformers_logging
        transformers_logging.disable_progress_bar()
        self.device = torch.device(device)
        self.specs = {}
        for task, name in (('depth', depth_model), ('normal', normal_model)):
            if not name:
                continue
            if name not in SUPPORTED_VARIANTS:
                raise ValueError(f'the reference-style pipeline runs {SUPPORTED_VARIANTS}, '
                                 f'not {name!r}')
            self.specs[task] = get_model_spec(name, task=task)
        if not self.specs:
            raise ValueError('enable at least one of depth_model and normal_model')
        locator = WeightsLocator(model_root, [spec.name for spec in self.specs.values()])

        def folder(repo_id, subfolder, probe='config.json'):
            # Resolving one file raises the package's WeightsError when the folder is absent.
            return str(locator.resolve(repo_id, f'{subfolder}/{probe}').parent)

        first = next(iter(self.specs.values()))
        self.vae = AutoencoderKL.from_pretrained(
            folder(first.vae_repo, first.vae_subfolder), torch_dtype=torch.float32,
            low_cpu_mem_usage=False)
        self.unets = {
            task: UNet2DConditionModel.from_pretrained(
                folder(spec.unet_repo, spec.unet_subfolder), torch_dtype=torch.float32,
                low_cpu_mem_usage=False)
            for task, spec in self.specs.items()}
        self.tokenizer = CLIPTokenizer.from_pretrained(
            folder(first.vae_repo, 'tokenizer', 'vocab.json'))
        self.text_encoder = CLIPTextModel.from_pretrained(
            folder(first.vae_repo, 'text_encoder'), torch_dtype=torch.float32,
            low_cpu_mem_usage=False)
        for module in [self.vae, self.text_encoder, *self.unets.values()]:
            module.to(self.device).eval().requires_grad_(False)

    @property
    def tasks(self):
        """Return the enabled tasks."""
        return tuple(self.specs)

    def _text_embedding(self):
        ids = self.tokenizer('', padding='do_not_pad', max_length=self.tokenizer.model_max_length,
                             truncation=True).input_ids
        ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        return self.text_encoder(ids)[0]

    @torch.no_grad()
    def predict_one(self, image, task, processing_resolution=768):
        """
        Return the reference ``_pred.npy`` of one HxWx3 uint8 image for ``task``.

        Depth: HxW float32 in [0, 1]; normals: HxWx3 float32 (n + 1) / 2 in [0, 1].
        """
        spec = self.specs[task]
        height, width = image.shape[:2]
        rgb = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        rgb = torchvision_style_resize(rgb, reference_size(height, width, processing_resolution))
        rgb = (rgb.float() / 255.0 * 2.0 - 1.0).to(self.device)
        text = self._text_embedding()
        latent = self.vae.encode(rgb).latent_dist.mean * LATENT_SCALE
        timestep = torch.tensor([1], dtype=torch.long, device=self.device)
        velocity = self.unets[task](latent, timestep, encoder_hidden_states=text).sample
        decoded = self.vae.decode(-velocity / LATENT_SCALE).sample
        if spec.channel_mean:
            decoded = decoded.mean(dim=1, keepdim=True)
        decoded = (decoded.clamp(-1.0, 1.0) + 1.0) / 2.0
        decoded = torchvision_style_resize(decoded, (height, width))
        result = decoded.squeeze().cpu().numpy().clip(0, 1)
        return result.transpose(1, 2, 0) if result.ndim == 3 else result

    def predict(self, images, tasks=None, processing_resolution=768):
        """
        Run every task on every image one at a time; return {task: [raw, ...]}.

        Runs under PyTorch's default TF32 flags whatever the caller set (the reference's
        ``run.py`` leaves them at their defaults).
        """
        tasks = self.tasks if tasks is None else tuple(tasks)
        with pytorch_default_precision():
            return {task: [self.predict_one(image, task, processing_resolution)
                           for image in images] for task in tasks}

    @classmethod
    def from_components(cls, specs, vae, unets, tokenizer, text_encoder, device):
        """
        Build the pipeline from modules already in memory (e.g. random weights made on a GPU).

        ``specs``: task -> model spec (v2 VAE-decoded only); ``unets``: task -> UNet; the
        modules are used as given (fp32 expected, as the reference runs).
        """
        for spec in specs.values():
            if spec.name not in SUPPORTED_VARIANTS:
                raise ValueError(f'the reference-style pipeline runs {SUPPORTED_VARIANTS}, '
                                 f'not {spec.name!r}')
        pipeline = cls.__new__(cls)
        pipeline.device = torch.device(device)
        pipeline.specs = dict(specs)
        pipeline.vae, pipeline.unets = vae, dict(unets)
        pipeline.tokenizer, pipeline.text_encoder = tokenizer, text_encoder
        return pipeline
