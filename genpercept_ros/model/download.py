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
``genpercept download``: fetch the files the chosen variants need, verify them, report.

With ``--model-root DIR`` the files land in the real layout under DIR
(``DIR/genpercept-models/unet_depth_v2/...``); without it they go to the Hugging Face cache,
where ``GenPerceptPredictor.from_pretrained(model_root=None)`` finds them.
"""

import json
from pathlib import Path
import sys

from genpercept_ros.model.registry import DECODER_TAESD
from genpercept_ros.model.registry import DECODER_VAE
from genpercept_ros.model.registry import DECODERS
from genpercept_ros.model.registry import GENPERCEPT_V1_REPO
from genpercept_ros.model.registry import MODELS
from genpercept_ros.model.registry import REPO_FOLDERS
from genpercept_ros.model.registry import TAESD_REPO
from genpercept_ros.model.weights import CONFIG_NAME
from genpercept_ros.model.weights import hub_offline
from genpercept_ros.model.weights import hub_unreachable_reason
from genpercept_ros.model.weights import SCHEDULER_CONFIG_NAME
from genpercept_ros.model.weights import TOKENIZER_FILES
from genpercept_ros.model.weights import TRANSFORMERS_WEIGHTS_NAME
from genpercept_ros.model.weights import WEIGHTS_NAME

DEFAULT_MODELS = ('depth-v2', 'normal-v2')


class DownloadError(RuntimeError):
    """The hub could not be reached or a fetched file does not verify."""


def required_files(models, decoder=DECODER_VAE):
    """
    Return ``[(repo_id, path_in_repo, required)]`` for ``models``, without duplicates.

    The DPT head's ``config.json`` is optional: the reference takes it from its own code.
    ``decoder='taesd'`` adds TAESD's ``config.json`` and ``diffusion_pytorch_model.safetensors``
    (the root of ``madebyollin/taesd``); the SD VAE is still fetched (it encodes the image).
    """
    files = []

    def add(repo, path, required=True):
        if (repo, path, required) not in files:
            files.append((repo, path, required))

    for name in models:
        spec = MODELS[name]
        add(spec.unet_repo, f'{spec.unet_subfolder}/{CONFIG_NAME}')
        add(spec.unet_repo, f'{spec.unet_subfolder}/{WEIGHTS_NAME}')
        if spec.has_dpt_head:
            add(spec.unet_repo, f'{spec.head_subfolder}/{TRANSFORMERS_WEIGHTS_NAME}')
            add(spec.unet_repo, f'{spec.head_subfolder}/{CONFIG_NAME}', required=False)
        add(spec.vae_repo, f'{spec.vae_subfolder}/{CONFIG_NAME}')
        add(spec.vae_repo, f'{spec.vae_subfolder}/{WEIGHTS_NAME}')
        if spec.scheduler_subfolder:
            add(spec.unet_repo, f'{spec.scheduler_subfolder}/{SCHEDULER_CONFIG_NAME}')
    # The conditioning: tokenizer and text encoder of SD 2.1 (GenPercept) or of each E2E-FT /
    # Lotus-D repo (their own copies).
    for repo in dict.fromkeys(MODELS[name].text_repo for name in models):
        for name in TOKENIZER_FILES:
            add(repo, f'tokenizer/{name}')
        add(repo, f'text_encoder/{CONFIG_NAME}')
        add(repo, f'text_encoder/{TRANSFORMERS_WEIGHTS_NAME}')
    if decoder == DECODER_TAESD:
        add(TAESD_REPO, CONFIG_NAME)
        add(TAESD_REPO, WEIGHTS_NAME)
    return files


def verify_file(path):
    """Check that a fetched file is readable: safetensors header, JSON, or non-empty text."""
    path = Path(path)
    if path.suffix == '.safetensors':
        from safetensors import safe_open
        from safetensors import SafetensorError
        try:
            with safe_open(str(path), framework='pt') as handle:
                count = len(list(handle.keys()))
        except (SafetensorError, OSError, ValueError) as error:
            raise DownloadError(f'{path} is not a valid safetensors file: {error}') from error
        return f'{count} tensors'
    if path.suffix == '.json':
        try:
            json.loads(path.read_text(encoding='utf-8'))
        except (OSError, ValueError) as error:
            raise DownloadError(f'{path} is not valid JSON: {error}') from error
        return 'json ok'
    if path.stat().st_size == 0:
        raise DownloadError(f'{path} is empty')
    return 'ok'


def local_target(model_root, repo_id, path_in_repo):
    """Return where a file goes under ``model_root``."""
    return Path(model_root) / REPO_FOLDERS[repo_id] / path_in_repo


def copy_instructions(model_root, files):
    """Explain what to copy where when this machine cannot download."""
    lines = ['Download on a machine with internet access (same command), then copy:']
    for repo, path, required in files:
        optional = '' if required else ' (optional)'
        target = (local_target(model_root, repo, path) if model_root
                  else f'<HF cache>/models--{repo.replace("/", "--")}/snapshots/<rev>/{path}')
        lines.append(f'  https://huggingface.co/{repo}/resolve/main/{path} -> {target}{optional}')
    return '\n'.join(lines)


def hub_errors():
    """Return the exception types a hub download raises (network, auth, offline, missing)."""
    from huggingface_hub import errors
    # LocalEntryNotFoundError (offline, not cached) and HfHubHTTPError (HTTP status, missing or
    # gated repo) are OSErrors; transport failures come as huggingface_hub's HTTPError.
    return (errors.EntryNotFoundError, errors.HfHubHTTPError, errors.HTTPError, OSError,
            ValueError)


def fetch(files, model_root=None, snapshot=None):
    """
    Fetch and verify ``files``; return ``[(repo, path, local path, note)]``.

    One ``huggingface_hub.snapshot_download`` per repo, restricted to exactly these paths with
    ``allow_patterns`` (into ``<model_root>/<repo folder>`` or the hub cache). A required file
    the repo does not have, or any hub failure, raises DownloadError; optional ones are skipped.
    Before the first repo the hub is asked once whether it answers (unless ``HF_HUB_OFFLINE``
    is set, which huggingface_hub refuses at once): without network this fails in about a
    second instead of retrying every file.
    """
    if snapshot is None:
        from huggingface_hub import snapshot_download as snapshot
        unreachable = None if hub_offline() else hub_unreachable_reason()
        if unreachable is not None:
            raise DownloadError(f'cannot fetch anything: the Hugging Face hub {unreachable}')
    by_repo = {}
    for repo, path, required in files:
        by_repo.setdefault(repo, []).append((path, required))
    fetched = []
    for repo, entries in by_repo.items():
        kwargs = {'repo_id': repo, 'allow_patterns': [path for path, _ in entries]}
        if model_root is not None:
            kwargs['local_dir'] = str(Path(model_root) / REPO_FOLDERS[repo])
        try:
            folder = Path(snapshot(**kwargs))
        except hub_errors() as error:
            first = str(error).splitlines()[0] if str(error) else ''
            raise DownloadError(f'cannot fetch {repo}/{entries[0][0]} and {len(entries) - 1} '
                                f'more files of {repo}: {type(error).__name__}: '
                                f'{first}') from error
        for path, required in entries:
            local = folder / path
            if not local.is_file():
                if required:
                    raise DownloadError(f'cannot fetch {repo}/{path}: the repository has no '
                                        'such file')
                continue
            fetched.append((repo, path, local, verify_file(local)))
    return fetched


def add_arguments(parser):
    """Add the ``genpercept download`` arguments."""
    parser.add_argument('--model-root', default=None,
                        help='folder to fill in the real layout (default: the HF cache)')
    parser.add_argument('--models', '--variants', dest='models', nargs='+',
                        choices=sorted(MODELS),
                        default=list(DEFAULT_MODELS),
                        help='models to fetch (default: depth-v2 normal-v2; --variants: old name)')
    parser.add_argument('--decoder', choices=DECODERS, default=DECODER_VAE,
                        help="'taesd' also fetches the fast decoder madebyollin/taesd "
                             "(default: %(default)s, the models' own VAE only)")
    parser.add_argument('--list', action='store_true',
                        help='only print the files that would be fetched')


def run(args):
    """Fetch the files and print what was fetched, or explain what to copy where."""
    files = required_files(args.models, args.decoder)
    if args.list:
        for repo, path, required in files:
            target = (local_target(args.model_root, repo, path) if args.model_root
                      else f'{repo}/{path}')
            print(f'{target}{"" if required else " (optional)"}')
        return 0
    try:
        fetched = fetch(files, args.model_root)
    except DownloadError as error:
        print(f'genpercept download: {error}', file=sys.stderr)
        print(copy_instructions(args.model_root, files), file=sys.stderr)
        return 1
    for repo, path, local, note in fetched:
        print(f'fetched {repo}/{path} -> {local} ({note})')
    print(f'{len(fetched)} files ready for: {" ".join(args.models)}')
    if args.model_root and any(MODELS[name].version == 1 for name in args.models):
        print('v1 note: the reference v1 code conditions on GenPercept_v1/empty_text_embed.npy '
              'from https://github.com/aim-uofa/GenPercept (not on the hub); copy it to '
              f'{local_target(args.model_root, GENPERCEPT_V1_REPO, "empty_text_embed.npy")} '
              'to use it instead of the embedding recomputed from the SD 2.1 text encoder.')
    return 0
