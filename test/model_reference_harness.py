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
Harness: run the original aim-uofa/GenPercept pipelines on tiny weights and compare.

Usage: ``python test/model_reference_harness.py {v2|v1} REFERENCE_REPO MODEL_ROOT``. Prints
``WORST <variant> <max abs diff>`` lines. Runs in its own process because it stubs modules the
reference imports but does not need here (matplotlib, removed diffusers/transformers helpers).
Needs ``torchvision`` importable.
"""

import dataclasses
import json
from pathlib import Path
import sys
import types

import diffusers  # noqa: F401 - imported before the stubs below; it probes matplotlib
import numpy as np
import torch
import transformers  # noqa: F401


def _stub_modules():
    plot = types.ModuleType('matplotlib')

    class _Maps(dict):
        """Colour maps are not compared; a zero colour keeps the v1 pipeline running."""

        def __getitem__(self, key):
            return lambda values, bytes=False: np.zeros(np.shape(values) + (4,))  # noqa: A006

    plot.colormaps = _Maps()
    sys.modules['matplotlib'] = plot
    sys.modules['matplotlib.pyplot'] = types.ModuleType('matplotlib.pyplot')
    try:
        import diffusers.models.lora  # noqa: F401
    except ImportError:
        lora = types.ModuleType('diffusers.models.lora')
        lora.LoRACompatibleConv = torch.nn.Conv2d
        sys.modules['diffusers.models.lora'] = lora
    try:
        import transformers.file_utils  # noqa: F401
    except ImportError:
        file_utils = types.ModuleType('transformers.file_utils')
        file_utils.replace_return_docstrings = lambda **kwargs: (lambda function: function)
        file_utils.add_start_docstrings_to_model_forward = (
            lambda *args: (lambda function: function))
        sys.modules['transformers.file_utils'] = file_utils


def _images():
    from PIL import Image
    rng = np.random.default_rng(0)
    return {
        'rgb_odd': Image.fromarray(rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)),
        'gray': Image.fromarray(rng.integers(0, 256, (50, 37), dtype=np.uint8), 'L'),
        'rgba': Image.fromarray(rng.integers(0, 256, (64, 48, 4), dtype=np.uint8), 'RGBA'),
    }


def _ours(root, variant, mode):
    from genpercept_ros.model.predictor import GenPerceptPredictor
    return GenPerceptPredictor.from_pretrained(
        variant if mode == 'depth' else None, variant if mode == 'normal' else None,
        model_root=root, device='cpu', dtype='fp32')


def _compare(variant, mode, ours, run_reference):
    worst = 0.0
    for image in _images().values():
        for resolution in (64, 0):
            reference = run_reference(image, resolution)
            mine = ours.predict([np.asarray(image.convert('RGB'))],
                                processing_resolution=resolution)
            got = mine.depth_raw[0] if mode == 'depth' else mine.normal_raw[0]
            if got.shape != reference.shape or got.dtype != reference.dtype:
                raise AssertionError(f'{variant}: {got.shape} {got.dtype} vs reference '
                                     f'{reference.shape} {reference.dtype}')
            worst = max(worst, float(np.abs(got - reference).max()))
    print(f'WORST {variant} {worst:.3g}', flush=True)


def run_v2(repo, root):
    """Compare depth-v2, disparity-v2, normal-v2 and disparity-dpt-v2."""
    from diffusers import AutoencoderKL
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file
    from safetensors.torch import load_model
    from transformers import CLIPTextModel
    from transformers import CLIPTokenizer
    from transformers import DPTConfig
    from transformers.utils import ModelOutput
    sys.path.insert(0, str(repo))
    from genpercept.genpercept_pipeline import GenPerceptPipeline
    from genpercept.models import dpt_head
    from genpercept.models.custom_unet import CustomUNet2DConditionModel
    from src.customized_modules.ddim import DDIMSchedulerCustomized

    @dataclasses.dataclass
    class DepthEstimatorOutput(ModelOutput):
        """transformers 5 requires ModelOutput subclasses to be dataclasses."""

        loss: object = None
        prediction: object = None
        hidden_states: object = None
        attentions: object = None

    dpt_head.DepthEstimatorOutput = DepthEstimatorOutput
    sd21 = root / 'stable-diffusion-2-1'
    components = {
        'vae': AutoencoderKL.from_pretrained(sd21 / 'vae'),
        'text_encoder': CLIPTextModel.from_pretrained(sd21 / 'text_encoder'),
        'tokenizer': CLIPTokenizer.from_pretrained(sd21 / 'tokenizer'),
        'scheduler': DDIMSchedulerCustomized.from_pretrained(
            str(repo / 'hf_configs' / 'scheduler_beta_1.0_1.0')),
    }
    for variant, folder, mode in (('depth-v2', 'unet_depth_v2', 'depth'),
                                  ('disparity-v2', 'unet_disparity_v2', 'depth'),
                                  ('normal-v2', 'unet_normal_v2', 'normal'),
                                  ('disparity-dpt-v2', 'unet_disparity_dpt_head_v2', 'depth')):
        checkpoint = root / 'genpercept-models' / folder
        config = json.loads((checkpoint / 'config.json').read_text())
        head = None
        if 'dpt' in variant:
            unet = CustomUNet2DConditionModel.from_config(config)
            unet.conv_out = None
            unet.conv_norm_out = None
            head_config = json.loads((repo / 'hf_configs' / 'dpt-sd2.1-unet-after-upsample-general'
                                      / 'config.json').read_text())
            head_config.update(json.loads(
                (root / 'genpercept-models/dpt_head_identity/config.json').read_text()))
            head_config = {key: value for key, value in head_config.items()
                           if not key.startswith('_') and key != 'architectures'}
            head = dpt_head.DPTNeckHeadForUnetAfterUpsampleIdentity(DPTConfig(**head_config))
            load_model(head, str(root / 'genpercept-models/dpt_head_identity/model.safetensors'))
        else:
            unet = UNet2DConditionModel.from_config(config)
        unet.load_state_dict(load_file(checkpoint / 'diffusion_pytorch_model.safetensors'))
        pipe = GenPerceptPipeline(unet=unet, customized_head=head, genpercept_pipeline=True,
                                  **components)

        def reference(image, resolution, pipe=pipe, mode=mode):
            return pipe(image, denoising_steps=1, ensemble_size=1, processing_res=resolution,
                        match_input_res=True, batch_size=1, color_map=None,
                        show_progress_bar=False, mode=mode).pred_np

        _compare(variant, mode, _ours(root, variant, mode), reference)


def run_v1(repo, root):
    """Compare depth-v1 and normal-v1 (conditioning: this package's 77-token embedding)."""
    from diffusers import AutoencoderKL
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file
    sys.path.insert(0, str(repo / 'GenPercept_v1'))
    from genpercept.pipeline_genpercept import GenPerceptPipeline
    from genpercept_ros.model.conditioning import empty_prompt_embedding
    from genpercept_ros.model.registry import EMPTY_PROMPT_77
    from genpercept_ros.model.weights import WeightsLocator
    v1 = root / 'GenPercept'
    vae = AutoencoderKL.from_config(json.loads((v1 / 'vae/config.json').read_text()))
    vae.load_state_dict(load_file(v1 / 'vae/diffusion_pytorch_model.safetensors'))
    # As the reference loads empty_text_embed.npy: float16 array -> float32, batch axis.
    embedding = empty_prompt_embedding(WeightsLocator(root), EMPTY_PROMPT_77)[0]
    embedding = torch.from_numpy(embedding.numpy()).to('cpu', torch.float32)[None]
    for variant, folder, mode in (('depth-v1', 'unet_depth_v1', 'depth'),
                                  ('normal-v1', 'unet_normal_v1', 'normal')):
        unet = UNet2DConditionModel.from_config(
            json.loads((v1 / folder / 'config.json').read_text()))
        unet.load_state_dict(load_file(v1 / folder / 'diffusion_pytorch_model.safetensors'))
        pipe = GenPerceptPipeline(unet=unet, vae=vae, empty_text_embed=embedding)

        def reference(image, resolution, pipe=pipe, mode=mode):
            return pipe(image, mode=mode, processing_res=resolution, match_input_res=True,
                        batch_size=1, show_progress_bar=False).pred_np

        _compare(variant, mode, _ours(root, variant, mode), reference)


if __name__ == '__main__':
    _stub_modules()
    group, repo_path, root_path = sys.argv[1:4]
    (run_v2 if group == 'v2' else run_v1)(Path(repo_path), Path(root_path))
