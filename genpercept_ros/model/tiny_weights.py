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
Write randomly initialised checkpoints of every component in exactly the real folder layout.

``make_tiny_weights(root)`` writes small-channel copies (same file names, same config keys, same
block structure) so that tests exercise the real loading code; ``full_size=True`` writes the real
SD 2.1 sizes with random values, for speed and memory benchmarks. The values mean nothing.
"""

import json
from pathlib import Path
import zlib

from genpercept_ros.model import configs
from genpercept_ros.model.registry import GENPERCEPT
from genpercept_ros.model.registry import GENPERCEPT_MODELS_REPO
from genpercept_ros.model.registry import GENPERCEPT_V1_REPO
from genpercept_ros.model.registry import LOTUS_D
from genpercept_ros.model.registry import MODELS
from genpercept_ros.model.registry import REPO_FOLDERS
from genpercept_ros.model.registry import SD21_REPO
from genpercept_ros.model.registry import TAESD_REPO
from genpercept_ros.model.weights import RANDOM_WEIGHTS_MARKER

BOS_TOKEN = '<|startoftext|>'
EOS_TOKEN = '<|endoftext|>'
FULL_VOCAB_SIZE = 49408


def _bytes_to_unicode():
    """Return CLIP's byte -> printable character table (GPT-2 byte-level BPE alphabet)."""
    printable = (list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1))
                 + list(range(ord('®'), ord('ÿ') + 1)))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(code) for code in codes)))


def tokenizer_vocab(full_size):
    """
    Return the token list of the test tokenizer.

    The byte alphabet comes first, so "!" (the SD 2.1 pad token) is id 0 as in the real vocab;
    BOS and EOS come last (49406 and 49407 at full size).
    """
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [char + '</w>' for char in alphabet]
    if full_size:
        tokens += [f'<|unused{index}|>' for index in range(FULL_VOCAB_SIZE - 2 - len(tokens))]
    return tokens + [BOS_TOKEN, EOS_TOKEN]


def _write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + '\n', encoding='utf-8')


def _save(path, state_dict, dtype=None):
    import torch
    from safetensors.torch import save_file
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, value in state_dict.items():
        value = value.detach()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.contiguous()
    save_file(tensors, str(path), metadata={'format': 'pt'})
    return torch


def _seed(seed, name):
    import torch
    torch.manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()) % 1_000_003)


def _diffusers_config(config):
    import diffusers
    config = dict(config)
    config['_diffusers_version'] = diffusers.__version__
    return config


def _unet_state(seed, name, config, with_conv_out=True):
    from diffusers import UNet2DConditionModel
    _seed(seed, name)
    unet = UNet2DConditionModel.from_config(config)
    state = unet.state_dict()
    if not with_conv_out:
        state = {key: value for key, value in state.items()
                 if not key.startswith(('conv_out.', 'conv_norm_out.'))}
    return state


def unet_overrides(spec):
    """Return the UNet config keys a model changes from SD 2.1 (input channels, task switcher)."""
    overrides = {}
    if spec.unet_in_channels != 4:
        overrides['in_channels'] = spec.unet_in_channels
    if spec.task_switcher:
        # Lotus: class_embed_type 'projection' of the 2 * len(switcher) sin/cos values.
        overrides['class_embed_type'] = 'projection'
        overrides['projection_class_embeddings_input_dim'] = 2 * len(spec.task_switcher)
    return overrides


def write_unet(folder, seed, full_size, with_conv_out=True, overrides=None, seed_name=None):
    """Write ``folder/{config.json, diffusion_pytorch_model.safetensors}`` of one UNet."""
    folder = Path(folder)
    config = configs.unet_config(full_size)
    config.update(overrides or {})
    _write_json(folder / 'config.json', _diffusers_config(config))
    _save(folder / 'diffusion_pytorch_model.safetensors',
          _unet_state(seed, seed_name or folder.name, config, with_conv_out))


def write_vae(folder, seed, full_size, dtype=None):
    """Write ``folder/{config.json, diffusion_pytorch_model.safetensors}`` of the SD VAE."""
    from diffusers import AutoencoderKL
    folder = Path(folder)
    _seed(seed, 'vae')
    vae = AutoencoderKL.from_config(configs.vae_config(full_size))
    _write_json(folder / 'config.json', _diffusers_config(configs.vae_config(full_size)))
    _save(folder / 'diffusion_pytorch_model.safetensors', vae.state_dict(), dtype)


def write_taesd(folder, seed, full_size):
    """
    Write ``folder/{config.json, diffusion_pytorch_model.safetensors}`` of TAESD.

    The whole ``AutoencoderTiny`` (encoder and decoder, as the hub file holds both) with the
    real key names and config fields; tiny: 8 channels per block instead of 64.
    """
    from diffusers import AutoencoderTiny
    folder = Path(folder)
    _seed(seed, 'taesd')
    config = configs.taesd_config(full_size)
    taesd = AutoencoderTiny.from_config(config)
    _write_json(folder / 'config.json', _diffusers_config(config))
    _save(folder / 'diffusion_pytorch_model.safetensors', taesd.state_dict())


def write_dpt_head(folder, seed, full_size):
    """Write ``folder/{config.json, model.safetensors}`` of the DPT neck and head."""
    from genpercept_ros.model.dpt_head import DPTHead
    folder = Path(folder)
    _seed(seed, 'dpt_head_identity')
    head = DPTHead(configs.dpt_head_config(full_size))
    _write_json(folder / 'config.json', configs.dpt_head_config(full_size))
    _save(folder / 'model.safetensors', head.state_dict())


def write_tokenizer(folder, full_size):
    """Write a CLIP BPE tokenizer whose special tokens match SD 2.1 (pad "!")."""
    folder = Path(folder)
    tokens = tokenizer_vocab(full_size)
    _write_json(folder / 'vocab.json', {token: index for index, token in enumerate(tokens)})
    (folder / 'merges.txt').write_text('#version: 0.2\n', encoding='utf-8')
    _write_json(folder / 'special_tokens_map.json', {
        'bos_token': BOS_TOKEN, 'eos_token': EOS_TOKEN, 'pad_token': '!', 'unk_token': EOS_TOKEN})
    _write_json(folder / 'tokenizer_config.json', {
        'add_prefix_space': False, 'bos_token': BOS_TOKEN, 'do_lower_case': True,
        'eos_token': EOS_TOKEN, 'errors': 'replace', 'model_max_length': 77,
        'pad_token': EOS_TOKEN, 'tokenizer_class': 'CLIPTokenizer', 'unk_token': EOS_TOKEN})
    return len(tokens)


def write_text_encoder(folder, seed, full_size, vocab_size):
    """
    Write ``folder/{config.json, model.safetensors}`` of the CLIP text encoder.

    Keys carry the ``text_model.`` prefix of the real SD 2.1 file (transformers 5 would drop it
    on save), plus its ``position_ids`` buffer.
    """
    import torch
    from transformers import CLIPTextConfig
    from transformers import CLIPTextModel
    folder = Path(folder)
    config = configs.text_encoder_config(full_size, vocab_size=vocab_size)
    _seed(seed, 'text_encoder')
    model = CLIPTextModel(CLIPTextConfig.from_dict(config))
    state = {}
    for key, value in model.state_dict().items():
        key = key if key.startswith('text_model.') else 'text_model.' + key
        state[key] = value
    positions = config['max_position_embeddings']
    state['text_model.embeddings.position_ids'] = torch.arange(positions)[None]
    _write_json(folder / 'config.json', config)
    _save(folder / 'model.safetensors', state)


# The DDIM scheduler config of Stable Diffusion 2 (v-prediction) as Marigold checkpoints ship
# it; E2E-FT reads its timestep and alphas, Lotus-D ships one that its one-step call never uses.
SD2_SCHEDULER_CONFIG = {
    '_class_name': 'DDIMScheduler',
    'beta_end': 0.012,
    'beta_schedule': 'scaled_linear',
    'beta_start': 0.00085,
    'clip_sample': False,
    'num_train_timesteps': 1000,
    'prediction_type': 'v_prediction',
    'set_alpha_to_one': False,
    'steps_offset': 1,
    'trained_betas': None,
}


def _model_index(spec):
    components = {
        'scheduler': ['diffusers', 'DDIMScheduler'],
        'text_encoder': ['transformers', 'CLIPTextModel'],
        'tokenizer': ['transformers', 'CLIPTokenizer'],
        'unet': ['diffusers', 'UNet2DConditionModel'],
        'vae': ['diffusers', 'AutoencoderKL'],
    }
    if spec.family == LOTUS_D:
        # The hub's Lotus-D repos name their pipeline class DirectRegressionPipeline.
        components.update({'_class_name': 'DirectRegressionPipeline', 'feature_extractor': [
            None, None], 'image_encoder': [None, None], 'requires_safety_checker': False,
            'safety_checker': [None, None]})
    else:
        components['_class_name'] = 'MarigoldPipeline'
    return _diffusers_config(components)


def write_pipeline_repo(root, spec, seed, full_size):
    """
    Write one E2E-FT / Lotus-D hub repo: unet, vae, scheduler, tokenizer, text_encoder, index.

    The VAE and text encoder get the same random values as the SD 2.1 ones (as the real repos
    copy them from Stable Diffusion 2), so a predictor sees equal weights and shares them.
    """
    folder = Path(root) / REPO_FOLDERS[spec.unet_repo]
    write_unet(folder / spec.unet_subfolder, seed, full_size, overrides=unet_overrides(spec),
               seed_name=f'{REPO_FOLDERS[spec.unet_repo]}/{spec.unet_subfolder}')
    write_vae(folder / spec.vae_subfolder, seed, full_size)
    vocab_size = write_tokenizer(folder / 'tokenizer', full_size)
    write_text_encoder(folder / 'text_encoder', seed, full_size, vocab_size)
    scheduler = dict(SD2_SCHEDULER_CONFIG)
    if spec.family == LOTUS_D:
        scheduler['prediction_type'] = 'sample'
    _write_json(folder / 'scheduler' / 'scheduler_config.json', scheduler)
    _write_json(folder / 'model_index.json', _model_index(spec))


def make_tiny_weights(root, full_size=False, seed=0, models=None):
    """
    Write random checkpoints for ``models`` (default: all) under ``root``; return ``root``.

    Layout: ``<root>/genpercept-models/{unet_*_v2, dpt_head_identity, vae}``,
    ``<root>/GenPercept/{unet_*_v1, vae}``, ``<root>/stable-diffusion-2-1/{vae, tokenizer,
    text_encoder}``; E2E-FT and Lotus-D models get their whole hub repo
    (``<root>/marigold-e2e-ft-depth/{unet, vae, scheduler, tokenizer, text_encoder}`` etc.).
    The fast decoder TAESD is always written (a few kB tiny):
    ``<root>/taesd/{config.json, diffusion_pytorch_model.safetensors}``.
    """
    import torch
    root = Path(root)
    names = list(MODELS) if models is None else list(models)
    specs = [MODELS[name] for name in names]
    models = root / REPO_FOLDERS[GENPERCEPT_MODELS_REPO]
    v1 = root / REPO_FOLDERS[GENPERCEPT_V1_REPO]
    sd21 = root / REPO_FOLDERS[SD21_REPO]
    with torch.no_grad():
        for spec in specs:
            if spec.family != GENPERCEPT:
                write_pipeline_repo(root, spec, seed, full_size)
                continue
            folder = root / REPO_FOLDERS[spec.unet_repo] / spec.unet_subfolder
            write_unet(folder, seed, full_size, with_conv_out=not spec.has_dpt_head)
            if spec.has_dpt_head:
                write_dpt_head(root / REPO_FOLDERS[spec.unet_repo] / spec.head_subfolder,
                               seed, full_size)
        if any(spec.version == 2 for spec in specs):
            write_vae(models / 'vae', seed, full_size, dtype=torch.float16)
            _write_json(models / 'model_index.json', {
                '_class_name': 'GenPerceptPipeline', '_diffusers_version': '0.24.0',
                'unet': ['diffusers', 'UNet2DConditionModel'],
                'vae': ['diffusers', 'AutoencoderKL']})
        if any(spec.version == 1 for spec in specs):
            # The v1 repo ships the SD 2.1 VAE stored in float16.
            write_vae(v1 / 'vae', seed, full_size, dtype=torch.float16)
        if any(spec.family == GENPERCEPT for spec in specs):
            write_vae(sd21 / 'vae', seed, full_size)
            vocab_size = write_tokenizer(sd21 / 'tokenizer', full_size)
            write_text_encoder(sd21 / 'text_encoder', seed, full_size, vocab_size)
        write_taesd(root / REPO_FOLDERS[TAESD_REPO], seed, full_size)
    size = 'full-size (SD 2.1 architecture)' if full_size else 'tiny'
    (root / RANDOM_WEIGHTS_MARKER).write_text(
        f'{size} randomly initialised weights (seed {seed}) written by `genpercept '
        'make-tiny-weights`: for tests and benchmarks only; their predictions mean nothing.\n')
    return root


def add_arguments(parser):
    """Add the ``genpercept make-tiny-weights`` arguments."""
    parser.add_argument('directory', help='model root to write (created if needed)')
    parser.add_argument('--full-size', action='store_true',
                        help='real SD 2.1 sizes (several GB) instead of tiny channel counts')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    parser.add_argument('--models', '--variants', dest='models', nargs='+',
                        choices=sorted(MODELS), default=None,
                        help='only these models (default: all; --variants: old name)')


def run(args):
    """Write the checkpoints and print where they went."""
    root = make_tiny_weights(args.directory, full_size=args.full_size, seed=args.seed,
                             models=args.models)
    files = sorted(path for path in Path(root).rglob('*') if path.is_file())
    total = sum(path.stat().st_size for path in files)
    print(f'wrote {len(files)} files ({total / 1e6:.1f} MB) of random '
          f'{"full-size" if args.full_size else "tiny"} weights under {root}')
    return 0
