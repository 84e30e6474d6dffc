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

"""Build the UNet, VAE, TAESD, DPT head, tokenizer and text encoder from located files."""

import logging

from genpercept_ros.model import configs
from genpercept_ros.model.registry import GENPERCEPT
from genpercept_ros.model.registry import TAESD_REPO
from genpercept_ros.model.weights import check_state_dict
from genpercept_ros.model.weights import CONFIG_NAME
from genpercept_ros.model.weights import load_tensors
from genpercept_ros.model.weights import read_json
from genpercept_ros.model.weights import SCHEDULER_CONFIG_NAME
from genpercept_ros.model.weights import TOKENIZER_FILES
from genpercept_ros.model.weights import TRANSFORMERS_WEIGHTS_NAME
from genpercept_ros.model.weights import WEIGHTS_NAME
from genpercept_ros.model.weights import WeightsError

_LOG = logging.getLogger(__name__)


def _require(condition, message):
    if not condition:
        raise WeightsError(message)


def _materialise(module, state_dict, source, ignore=()):
    """Load ``state_dict`` into a module built on the meta device, strictly."""
    check_state_dict(module, state_dict, source, ignore)
    state_dict = {key: value for key, value in state_dict.items() if key not in set(ignore)}
    module.load_state_dict(state_dict, strict=True, assign=True)
    leftovers = [name for name, tensor in list(module.named_parameters())
                 + list(module.named_buffers()) if tensor.is_meta]
    _require(not leftovers, f'{source}: tensors not filled from the file: {leftovers[:3]}')
    return module.eval().requires_grad_(False)


def unet_config_from(path, in_channels=4, task_switcher=()):
    """
    Return the UNet config of ``path`` completed from SD 2.1 and checked for the model.

    ``in_channels``: 4 (image latent only: GenPercept, Lotus-D) or 8 (image latent + zero
    latent: E2E-FT). ``task_switcher``: Lotus-D's class-label values, which need a
    ``class_embed_type: projection`` of ``2 * len(task_switcher)`` inputs; other models must not
    have a class embedding.
    """
    config = dict(configs.SD21_UNET_CONFIG)
    config.update(read_json(path))
    blocks = len(config.get('block_out_channels') or ())
    layouts = {4: 'the image latent only (GenPercept, Lotus-D)',
               8: 'the image latent and a zero latent (Marigold layout, E2E-FT)'}
    _require(config.get('in_channels') == in_channels,
             f'{path}: in_channels is {config.get("in_channels")}, expected {in_channels}: this '
             f'model\'s UNet takes {layouts.get(in_channels, "?")}; the checkpoint belongs to '
             'another model family')
    if task_switcher:
        _require(config.get('class_embed_type') == 'projection'
                 and config.get('projection_class_embeddings_input_dim')
                 == 2 * len(task_switcher),
                 f'{path}: expected class_embed_type "projection" with '
                 f'{2 * len(task_switcher)} inputs (the Lotus task switcher), got '
                 f'{config.get("class_embed_type")!r} / '
                 f'{config.get("projection_class_embeddings_input_dim")!r}')
    else:
        _require(config.get('class_embed_type') is None and not config.get('num_class_embeds'),
                 f'{path}: the UNet has a class embedding ({config.get("class_embed_type")!r}); '
                 'this model passes no class labels (a Lotus checkpoint?)')
    _require(config.get('out_channels') == 4,
             f'{path}: out_channels is {config.get("out_channels")}, expected 4')
    _require(blocks == 4 and len(config.get('up_block_types') or ()) == 4,
             f'{path}: expected the SD 2.1 UNet structure with 4 down and 4 up blocks')
    return config


def as_reference_v2_config(config, path):
    """
    Return the SD 2.1 UNet config for a full-size v2 checkpoint, as the reference builds it.

    The reference v2 code builds every UNet from the SD 2.1 ``unet/config.json`` and only loads
    the GenPercept weights into it, so keys that do not change parameter shapes (attention
    heads, time embedding, norms) come from SD 2.1 even where a checkpoint's own config differs.
    Checkpoints of another size (tiny test weights) keep their own config.
    """
    if list(config.get('block_out_channels') or ()) != configs.SD21_UNET_CONFIG[
            'block_out_channels']:
        return config
    differing = sorted(key for key, value in configs.SD21_UNET_CONFIG.items()
                       if not key.startswith('_') and key in config and config[key] != value)
    if differing:
        _LOG.warning('%s differs from the SD 2.1 UNet config in %s; using the SD 2.1 values '
                     'as the reference implementation does', path, ', '.join(differing))
    return dict(configs.SD21_UNET_CONFIG)


def load_unet(locator, spec):
    """Return the UNet of ``spec``; DPT variants come without conv_norm_out/conv_out."""
    import torch
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor2_0
    folder = spec.unet_subfolder
    config_path = locator.resolve(spec.unet_repo, f'{folder}/{CONFIG_NAME}')
    config = unet_config_from(config_path, spec.unet_in_channels, spec.task_switcher)
    if spec.family == GENPERCEPT and spec.version == 2:
        config = as_reference_v2_config(config, config_path)
    weights_path = locator.resolve_weights(spec.unet_repo, folder, WEIGHTS_NAME)
    state = load_tensors(weights_path, locator.allow_pickle)
    with torch.device('meta'):
        unet = UNet2DConditionModel.from_config(config)
    ignore = ()
    if spec.has_dpt_head:
        # The up-block features feed the DPT head; conv_out would turn them into a latent.
        unet.conv_norm_out = None
        unet.conv_out = torch.nn.Identity()
        ignore = tuple(key for key in state if key.startswith(('conv_out.', 'conv_norm_out.')))
    unet = _materialise(unet, state, weights_path, ignore)
    unet.set_attn_processor(AttnProcessor2_0())
    return unet


def load_scheduler(locator, spec):
    """
    Return the DDIMScheduler of ``spec`` with trailing timestep spacing, as E2E-FT's run.py does.

    ``DDIMScheduler.from_pretrained(ckpt, subfolder='scheduler', timestep_spacing='trailing')`` in
    the reference; here the located config file goes through ``from_config`` with the same
    override (one file, so the locator's offline rules and errors apply).
    """
    from diffusers import DDIMScheduler
    config_path = locator.resolve(
        spec.unet_repo, f'{spec.scheduler_subfolder}/{SCHEDULER_CONFIG_NAME}')
    config = read_json(config_path)
    _require(config.get('prediction_type') == 'v_prediction',
             f'{config_path}: prediction_type is {config.get("prediction_type")!r}; '
             f'{spec.name} turns a v-prediction into x0')
    try:
        return DDIMScheduler.from_config(config, timestep_spacing='trailing')
    except (TypeError, ValueError, NotImplementedError) as error:
        raise WeightsError(f'scheduler config {config_path}: {error}') from error


def load_vae(locator, repo_id, subfolder):
    """
    Return the AutoencoderKL stored in ``repo_id/subfolder``.

    Loaded with diffusers' own ``AutoencoderKL.from_pretrained(folder, subfolder=...,
    use_safetensors=True)`` from the located files, and then held to the same rule as every
    other component: any missing, unexpected or mis-shaped tensor is a WeightsError (diffusers
    alone would only warn and keep random values). A pickle checkpoint (only with
    ``allow_pickle``) may have any file name, which from_pretrained does not look for, so it
    goes through the explicit state-dict path.
    """
    import torch
    from diffusers import AutoencoderKL
    from diffusers.models.attention_processor import AttnProcessor2_0
    config_path = locator.resolve(repo_id, f'{subfolder}/{CONFIG_NAME}')
    config = dict(configs.SD21_VAE_CONFIG)
    config.update(read_json(config_path))
    _require(config.get('latent_channels') == 4 and config.get('in_channels') == 3
             and config.get('out_channels') == 3
             and len(config.get('block_out_channels') or ()) == 4,
             f'{config_path}: expected the SD VAE (3 -> 4 latent channels, 4 blocks, x8)')
    weights_path = locator.resolve_weights(repo_id, subfolder, WEIGHTS_NAME)
    if weights_path.suffix == '.safetensors':
        vae = _vae_from_pretrained(AutoencoderKL, config_path.parent.parent, subfolder,
                                   weights_path)
    else:
        state = load_tensors(weights_path, locator.allow_pickle)
        with torch.device('meta'):
            vae = AutoencoderKL.from_config(config)
        vae = _materialise(vae, state, weights_path)
    vae.set_attn_processor(AttnProcessor2_0())
    return vae


def load_taesd(locator):
    """
    Return TAESD, the fast decoder (diffusers ``AutoencoderTiny``), from ``madebyollin/taesd``.

    The hub repo holds ``config.json`` and ``diffusion_pytorch_model.safetensors`` at its root;
    safetensors only (a pickle is refused unless ``allow_pickle``, as everywhere). Its config
    must decode 4 latent channels to 3 image channels with 4 blocks (x8, like the SD VAE).
    Loaded with ``AutoencoderTiny.from_pretrained`` and held to the strict key/shape rule:
    anything missing or unexpected is a WeightsError naming the file and the download command.
    """
    import torch
    from diffusers import AutoencoderTiny
    config_path = locator.resolve(TAESD_REPO, CONFIG_NAME)
    config = dict(configs.TAESD_CONFIG)
    config.update(read_json(config_path))
    _require(config.get('latent_channels') == 4 and config.get('out_channels') == 3
             and len(config.get('decoder_block_out_channels') or ()) == 4
             and config.get('upsampling_scaling_factor') == 2,
             f'{config_path}: expected TAESD for the SD VAE latent (4 latent channels -> 3, '
             '4 decoder blocks, x2 upsampling: x8)')
    _require(float(config.get('scaling_factor', 1.0)) == 1.0,
             f'{config_path}: scaling_factor {config.get("scaling_factor")} is not 1.0; TAESD '
             'takes the SD-scaled latent as it is')
    weights_path = locator.resolve_weights(TAESD_REPO, '', WEIGHTS_NAME)
    if weights_path.suffix == '.safetensors':
        return _vae_from_pretrained(AutoencoderTiny, config_path.parent, None, weights_path)
    state = load_tensors(weights_path, locator.allow_pickle)
    with torch.device('meta'):
        taesd = AutoencoderTiny.from_config(config)
    return _materialise(taesd, state, weights_path)


def _vae_from_pretrained(model_class, root, subfolder, weights_path):
    from safetensors import safe_open
    from safetensors import SafetensorError
    remedy = 'Delete it and download it again.'
    try:
        with safe_open(str(weights_path), framework='pt'):
            pass
        model, info = model_class.from_pretrained(
            str(root), subfolder=subfolder, use_safetensors=True, local_files_only=True,
            output_loading_info=True)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise WeightsError(f'corrupt or truncated safetensors file {weights_path} ({error}). '
                           f'{remedy}') from error
    problems = [f'{len(keys)} {kind.replace("_", " ")} (e.g. {", ".join(map(str, keys[:3]))})'
                for kind, keys in sorted(info.items()) if keys]
    _require(not problems, f'{weights_path} does not match the expected architecture: '
             f'{"; ".join(problems)}')
    return model.eval().requires_grad_(False)


def load_dpt_head(locator, spec):
    """Return the DPT head of ``spec`` (config from its folder, else the reference config)."""
    import torch
    from genpercept_ros.model.dpt_head import DPTHead
    config = dict(configs.DPT_HEAD_CONFIG)
    config_path = locator.resolve(
        spec.unet_repo, f'{spec.head_subfolder}/{CONFIG_NAME}', required=False)
    if config_path is not None:
        file_config = read_json(config_path)
        config.update({key: file_config[key] for key in configs.DPT_HEAD_CONFIG
                       if key in file_config and key not in ('model_type', 'architectures')})
    weights_path = locator.resolve_weights(
        spec.unet_repo, spec.head_subfolder, TRANSFORMERS_WEIGHTS_NAME)
    state = load_tensors(weights_path, locator.allow_pickle)
    try:
        with torch.device('meta'):
            head = DPTHead(config)
    except (KeyError, TypeError, ValueError) as error:
        raise WeightsError(f'DPT head config {config_path}: {error}') from error
    return _materialise(head, state, weights_path)


def load_tokenizer(locator, repo_id):
    """Return the CLIP tokenizer of ``repo_id/tokenizer`` and its pad token from the files."""
    from transformers import CLIPTokenizer
    paths = [locator.resolve(repo_id, f'tokenizer/{name}') for name in TOKENIZER_FILES]
    folder = paths[0].parent
    try:
        tokenizer = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        # What transformers/tokenizers raise for unreadable or inconsistent vocab/merges files.
        raise WeightsError(f'cannot load the CLIP tokenizer in {folder}: {error}') from error
    special = read_json(paths[TOKENIZER_FILES.index('special_tokens_map.json')])
    pad = special.get('pad_token', '!')
    pad = pad.get('content', '!') if isinstance(pad, dict) else pad
    pad_id = tokenizer.convert_tokens_to_ids(pad)
    _require(isinstance(pad_id, int), f'{folder}: pad token {pad!r} is not in the vocabulary')
    return tokenizer, pad_id


def load_text_encoder(locator, repo_id):
    """
    Return the CLIP text encoder of ``repo_id/text_encoder``.

    Accepts the real file's ``text_model.``-prefixed keys and its ``position_ids`` buffer.
    Hand-written rather than ``CLIPTextModel.from_pretrained``: the SD 2 files carry the
    transformers-4 key names, which transformers 5 renames on load with its own rules; this
    explicit mapping plus the strict key/shape check keeps one behaviour across versions.
    """
    from transformers import CLIPTextConfig
    from transformers import CLIPTextModel
    config_path = locator.resolve(repo_id, f'text_encoder/{CONFIG_NAME}')
    config = read_json(config_path)
    _require(config.get('model_type', 'clip_text_model') == 'clip_text_model',
             f'{config_path}: model_type {config.get("model_type")!r} is not clip_text_model')
    weights_path = locator.resolve_weights(repo_id, 'text_encoder', TRANSFORMERS_WEIGHTS_NAME)
    state = load_tensors(weights_path, locator.allow_pickle)
    model = CLIPTextModel(CLIPTextConfig.from_dict(config))
    expected = set(model.state_dict())
    prefixed = any(key.startswith('text_model.') for key in expected)
    renamed = {}
    for key, value in state.items():
        bare = key[len('text_model.'):] if key.startswith('text_model.') else key
        renamed['text_model.' + bare if prefixed else bare] = value
    ignore = [key for key in renamed if key.endswith('position_ids') and key not in expected]
    check_state_dict(model, renamed, weights_path, ignore)
    for key in ignore:
        del renamed[key]
    model.load_state_dict(renamed, strict=False)
    return model.eval().requires_grad_(False)
