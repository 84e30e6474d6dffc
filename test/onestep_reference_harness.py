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
Harness: run the E2E-FT or Lotus-D project's own pipeline on tiny weights, save raw outputs.

Runs in the *reference* environment (its own diffusers/transformers pins), never imports this
package. Usage::

    python onestep_reference_harness.py {e2e-ft|lotus-d} REPO CHECKPOINT {depth|normal} \
        IMAGES_DIR OUT_DIR PROCESSING_RES SEED [EMBEDDING.npy]

E2E-FT: loads every component as ``Marigold/run.py`` does (``from_pretrained(ckpt,
subfolder=...)``, DDIM with ``timestep_spacing='trailing'``) and calls ``MarigoldPipeline`` with
``denoising_steps=1, ensemble_size=1, noise='zeros'``; saves ``depth_np`` / ``normal_np``.
Lotus-D: ``LotusDPipeline.from_pretrained(ckpt, torch_dtype=float32)`` called as ``infer.py``
(mode ``regression``) calls it: task switcher ``[sin 1, sin 0, cos 1, cos 0]``, timestep 999,
``output_type='np'``; depth = channel mean. ``infer.py`` wraps the call in ``torch.autocast``,
which on CPU means bfloat16: that is left out here so that the comparison is fp32 on both sides.
The global RNG is seeded with SEED right before each call, which fixes the random posterior
sample ``vae.encode(...).latent_dist.sample()`` draws.

The pipeline's own empty-prompt embedding is saved as ``OUT_DIR/reference_embedding.npy``. With
EMBEDDING given, the pipeline is conditioned on that [1, S, D] array instead, through its own
inputs (``MarigoldPipeline.empty_text_embed``, ``LotusDPipeline(prompt_embeds=...)``): the CLIP
text encoder is transformers' code, whose attention kernels differ in the last bits between
transformers 4.38/4.40 and 5, and the separate comparison keeps those bits out of the recipe's.
"""

from pathlib import Path
import sys
import types

import numpy as np
from PIL import Image
import torch


def _import_torchvision():
    """
    Import torchvision; a CUDA wheel next to the CPU torch only lacks its C++ operators.

    The reference code uses ``resize`` and ``pil_to_tensor``, which are pure torch code; only the
    fake-kernel registration of the detection operators (``nms``...) fails without the C++
    extension, so that one module is skipped.
    """
    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        for name in [name for name in sys.modules if name.startswith('torchvision')]:
            del sys.modules[name]
        sys.modules['torchvision._meta_registrations'] = types.ModuleType(
            'torchvision._meta_registrations')
        import torchvision  # noqa: F401


def run_e2e_ft(repo, checkpoint, task, images, out, processing_res, seed, embedding):
    """Run diffusion-e2e-ft's MarigoldPipeline like Marigold/run.py."""
    sys.path.insert(0, str(Path(repo) / 'Marigold'))
    from diffusers import AutoencoderKL
    from diffusers import DDIMScheduler
    from diffusers import UNet2DConditionModel
    from marigold import MarigoldPipeline
    from transformers import CLIPTextModel
    from transformers import CLIPTokenizer
    unet = UNet2DConditionModel.from_pretrained(checkpoint, subfolder='unet')
    vae = AutoencoderKL.from_pretrained(checkpoint, subfolder='vae')
    text_encoder = CLIPTextModel.from_pretrained(checkpoint, subfolder='text_encoder')
    tokenizer = CLIPTokenizer.from_pretrained(checkpoint, subfolder='tokenizer')
    scheduler = DDIMScheduler.from_pretrained(
        checkpoint, timestep_spacing='trailing', subfolder='scheduler')
    pipe = MarigoldPipeline.from_pretrained(
        pretrained_model_name_or_path=checkpoint, unet=unet, vae=vae, scheduler=scheduler,
        text_encoder=text_encoder, tokenizer=tokenizer, variant=None, torch_dtype=torch.float32)
    pipe = pipe.to(torch.device('cpu'))
    pipe.unet.eval()
    with torch.no_grad():
        pipe.encode_empty_text()
    np.save(out / 'reference_embedding.npy', pipe.empty_text_embed.numpy())
    if embedding is not None:
        pipe.empty_text_embed = embedding.to(pipe.dtype)
    for path in images:
        torch.manual_seed(seed)
        with torch.no_grad():
            output = pipe(Image.open(path), denoising_steps=1, ensemble_size=1,
                          processing_res=processing_res, match_input_res=True, batch_size=1,
                          color_map=None, show_progress_bar=False, resample_method='bilinear',
                          normals=task == 'normal', noise='zeros')
        pred = output.normal_np if task == 'normal' else output.depth_np
        np.save(out / f'{path.stem}.npy', pred)


def run_lotus_d(repo, checkpoint, task, images, out, processing_res, seed, embedding):
    """Run Lotus's LotusDPipeline like infer.py (mode regression), autocast off."""
    sys.path.insert(0, str(repo))
    from pipeline import LotusDPipeline
    pipe = LotusDPipeline.from_pretrained(checkpoint, torch_dtype=torch.float32)
    pipe = pipe.to(torch.device('cpu'))
    pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        own = pipe.encode_prompt('', torch.device('cpu'), 1, None)[0]
    np.save(out / 'reference_embedding.npy', own.numpy())
    prompt = {'prompt': ''} if embedding is None else {'prompt_embeds': embedding}
    for path in images:
        image = np.array(Image.open(path).convert('RGB')).astype(np.float32)
        image = torch.tensor(image).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1.0
        task_emb = torch.tensor([1, 0]).float().unsqueeze(0)
        task_emb = torch.cat([torch.sin(task_emb), torch.cos(task_emb)], dim=-1)
        torch.manual_seed(seed)
        with torch.no_grad():
            pred = pipe(rgb_in=image, **prompt, num_inference_steps=1, generator=None,
                        output_type='np', timesteps=[999], task_emb=task_emb,
                        processing_res=processing_res, match_input_res=True,
                        resample_method='bilinear').images[0]
        np.save(out / f'{path.stem}.npy', pred.mean(axis=-1) if task == 'depth' else pred)


def main(argv):
    """Parse the arguments and run one family."""
    family, repo, checkpoint, task, images_dir, out_dir, processing_res, seed = argv[:8]
    embedding = torch.from_numpy(np.load(argv[8])) if len(argv) > 8 and argv[8] else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = sorted(Path(images_dir).glob('*.png'))
    _import_torchvision()
    runner = {'e2e-ft': run_e2e_ft, 'lotus-d': run_lotus_d}[family]
    runner(repo, checkpoint, task, images, out, int(processing_res), int(seed), embedding)
    print(f'wrote {len(images)} predictions to {out}')


if __name__ == '__main__':
    main(sys.argv[1:])
