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
Finding and loading GenPercept / SD 2.1 weights by explicit path, with clear errors.

Files are looked up in a ``model_root`` folder that holds the Hugging Face repos by name
(``<model_root>/genpercept-models/unet_depth_v2/...``), or, without one, through the
``huggingface_hub`` cache (``HF_HUB_OFFLINE`` honoured). The hub is asked once per locator
whether it answers at all (:func:`hub_unreachable_reason`): when it does not, the cache alone
is used, so a machine without network fails (or loads from the cache) in about a second instead
of spending ~25 s in the hub client's retries for every file. Nothing ever falls back to other
weights: a missing, corrupt or mismatched file raises :class:`WeightsError` naming the file and
the remedy.
"""

from dataclasses import dataclass
import json
import os
from pathlib import Path
import shlex

from genpercept_ros.model.configs import SD21_UNET_CONFIG
from genpercept_ros.model.registry import get_model_spec
from genpercept_ros.model.registry import REPO_FOLDERS

WEIGHTS_NAME = 'diffusion_pytorch_model.safetensors'
TRANSFORMERS_WEIGHTS_NAME = 'model.safetensors'
CONFIG_NAME = 'config.json'
SCHEDULER_CONFIG_NAME = 'scheduler_config.json'
PICKLE_SUFFIXES = ('.bin', '.ckpt', '.pt', '.pth')
TOKENIZER_FILES = ('vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json')
# Written at the root of every random model root (``genpercept make-tiny-weights``, the demo's
# fallback) so that no tool mistakes it for GenPercept weights.
RANDOM_WEIGHTS_MARKER = 'GENPERCEPT_RANDOM_WEIGHTS.txt'


class WeightsError(RuntimeError):
    """A weight file is missing, corrupt, a refused pickle, or does not fit the architecture."""


# One HEAD request with this timeout (connect and read) decides whether the hub answers.
HUB_PROBE_TIMEOUT_S = 2.0


def hub_offline():
    """Return True when ``HF_HUB_OFFLINE`` asks huggingface_hub not to use the network."""
    value = os.environ.get('HF_HUB_OFFLINE', '')
    return value.strip().upper() in ('1', 'ON', 'YES', 'TRUE')


def hub_endpoint():
    """Return the hub URL huggingface_hub uses (``HF_ENDPOINT``, default huggingface.co)."""
    from huggingface_hub import constants
    return constants.ENDPOINT


def hub_unreachable_reason(timeout_s=HUB_PROBE_TIMEOUT_S):
    """
    Return why the Hugging Face hub cannot be reached, or None when it answers.

    One HEAD request to :func:`hub_endpoint` through huggingface_hub's own HTTP client (its
    proxy and certificate settings apply), without retries; any HTTP answer, even an error
    status, counts as reachable. Only transport failures (refused, unresolvable, timed out
    after ``timeout_s``) count as unreachable.
    """
    from huggingface_hub.errors import HTTPError  # its HTTP client's base error
    from huggingface_hub.utils import get_session
    endpoint = hub_endpoint()
    try:
        # head() raises only for transport failures, never for an HTTP status. huggingface_hub
        # 1.x (httpx) raises them as its HTTPError; 0.x (requests) as requests' RequestException,
        # an OSError (make test-oldest runs 0.25).
        get_session().head(endpoint, timeout=timeout_s)
    except (HTTPError, OSError) as error:
        return f'{endpoint} is unreachable ({type(error).__name__}: {error})'
    return None


def download_command(model_root=None, models=(), decoder='vae'):
    """Return the exact ``genpercept download`` command that fetches ``models`` (and TAESD)."""
    parts = ['genpercept', 'download']
    if model_root is not None:
        parts += ['--model-root', shlex.quote(str(model_root))]
    if models:
        parts += ['--models'] + [shlex.quote(v) for v in models]
    if decoder != 'vae':
        parts += ['--decoder', shlex.quote(decoder)]
    return ' '.join(parts)


class WeightsLocator:
    """
    Resolve ``(repo_id, path in repo)`` to a local file.

    ``models`` and ``decoder`` only serve the remedy command printed in errors.
    """

    def __init__(self, model_root=None, models=(), allow_pickle=False, decoder='vae'):
        self.model_root = None if model_root in (None, '') else Path(model_root).expanduser()
        self.models = tuple(models)
        self.decoder = decoder
        self.allow_pickle = bool(allow_pickle)
        self._hub_checked = False
        self._hub_unreachable = None
        if self.model_root is not None and not self.model_root.is_dir():
            raise WeightsError(
                f'model root {self.model_root} does not exist or is not a folder. '
                f'Download the weights with: {self.remedy()}')

    def remedy(self):
        """Return the command that downloads what this locator is asked for."""
        return download_command(self.model_root, self.models, self.decoder)

    def local_path(self, repo_id, path_in_repo):
        """Return where ``path_in_repo`` of ``repo_id`` lives under ``model_root``."""
        return self.model_root / REPO_FOLDERS[repo_id] / path_in_repo

    def cache_dir_for(self, repo_id):
        """Return a writable folder next to the weights of ``repo_id``, or None (hub cache)."""
        if self.model_root is None:
            return None
        return self.model_root / REPO_FOLDERS[repo_id]

    def resolve(self, repo_id, path_in_repo, required=True):
        """Return the local path of one file; raise WeightsError (or None) when absent."""
        if self.model_root is not None:
            path = self.local_path(repo_id, path_in_repo)
            if path.is_file():
                return path
            if not required:
                return None
            raise WeightsError(
                f'missing weights file {path} ({repo_id}/{path_in_repo}). '
                f'Download it with: {self.remedy()}')
        return self._resolve_hub(repo_id, path_in_repo, required)

    def hub_unreachable(self):
        """Return why the hub cannot be reached (asked once per locator), or None."""
        if not self._hub_checked:
            self._hub_unreachable = None if hub_offline() else hub_unreachable_reason()
            self._hub_checked = True
        return self._hub_unreachable

    def _resolve_hub(self, repo_id, path_in_repo, required):
        unreachable = self.hub_unreachable()
        try:
            from huggingface_hub import hf_hub_download
            return Path(hf_hub_download(
                repo_id=repo_id, filename=path_in_repo,
                local_files_only=hub_offline() or unreachable is not None))
        except Exception as error:  # noqa: B902 - every hub failure gets the same remedy
            if not required:
                return None
            if unreachable is not None and not hub_offline():
                why = f'it is not in the Hugging Face cache and the hub {unreachable}'
                where = ''
            else:
                where = ' from the offline Hugging Face cache' if hub_offline() \
                    else ' from the Hugging Face hub'
                why = f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}'
            raise WeightsError(
                f'cannot get {repo_id}/{path_in_repo}{where} ({why}). '
                f'Download it with: {self.remedy()} (or pass a model root that holds it)'
            ) from error

    def resolve_weights(self, repo_id, subfolder, filename):
        """
        Return the path of a weights file, preferring ``filename`` (safetensors).

        A pickle checkpoint in its place is refused unless ``allow_pickle``.
        """
        rel = f'{subfolder}/{filename}' if subfolder else filename
        path = self.resolve(repo_id, rel, required=False)
        if path is not None:
            return path
        pickle_path = self._find_pickle(repo_id, subfolder, filename)
        if pickle_path is not None:
            if not self.allow_pickle:
                raise WeightsError(
                    f'only a pickle checkpoint {pickle_path} was found where {rel} was expected; '
                    'pickle files can run arbitrary code and are refused. Convert it to '
                    'safetensors, or allow it explicitly (allow_pickle=True / --allow-pickle).')
            return pickle_path
        return self.resolve(repo_id, rel, required=True)

    def _find_pickle(self, repo_id, subfolder, filename):
        stem = Path(filename).stem
        stems = (stem, 'pytorch_model') if stem == 'model' else (stem,)
        if self.model_root is not None:
            folder = self.local_path(repo_id, subfolder or '.')
            if not folder.is_dir():
                return None
            for candidate in sorted(folder.iterdir()):
                if candidate.suffix in PICKLE_SUFFIXES and candidate.is_file():
                    return candidate
            return None
        if not self.allow_pickle:
            return None
        for name in stems:
            rel = f'{subfolder}/{name}.bin' if subfolder else f'{name}.bin'
            path = self._resolve_hub(repo_id, rel, required=False)
            if path is not None:
                return path
        return None


def read_json(path):
    """Read a JSON object file; raise WeightsError when it is not valid JSON."""
    try:
        with open(path, encoding='utf-8') as stream:
            data = json.load(stream)
    except (OSError, ValueError) as error:
        raise WeightsError(f'cannot read config {path}: {error}') from error
    if not isinstance(data, dict):
        raise WeightsError(f'config {path} is not a JSON object')
    return data


def load_tensors(path, allow_pickle=False):
    """
    Load a state dict from ``path`` (safetensors, or pickle only if allowed).

    Truncated or corrupt files raise WeightsError naming the file.
    """
    path = Path(path)
    if path.suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise WeightsError(f'refusing pickle checkpoint {path} (allow_pickle is off)')
        import torch
        try:
            return torch.load(path, map_location='cpu', weights_only=True)
        except Exception as error:  # noqa: B902
            raise WeightsError(f'cannot load pickle checkpoint {path}: {error}') from error
    from safetensors.torch import load_file
    try:
        return load_file(str(path), device='cpu')
    except Exception as error:  # noqa: B902 - SafetensorError, OSError, ValueError
        raise WeightsError(
            f'corrupt or truncated safetensors file {path} ({error}). Delete it and download '
            'it again.') from error


def check_state_dict(module, state_dict, source, ignore=()):
    """Raise WeightsError unless ``state_dict`` fits ``module`` key for key, shape for shape."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected) - set(ignore))
    mismatched = [
        f'{key}: file {tuple(state_dict[key].shape)} vs model {tuple(expected[key].shape)}'
        for key in sorted(set(expected) & set(state_dict))
        if tuple(state_dict[key].shape) != tuple(expected[key].shape)]
    problems = []
    if missing:
        problems.append(f'{len(missing)} missing keys (e.g. {", ".join(missing[:3])})')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected keys (e.g. {", ".join(unexpected[:3])})')
    if mismatched:
        problems.append(f'{len(mismatched)} shape mismatches (e.g. {"; ".join(mismatched[:3])})')
    if problems:
        raise WeightsError(
            f'{source} does not match the expected architecture: {"; ".join(problems)}')


@dataclass(frozen=True)
class WeightsOrigin:
    """
    What a set of weights is, as far as its predictions can be trusted.

    ``kind`` is ``'genpercept'`` (the published architecture, no random-weights marker),
    ``'random'`` (the folder carries :data:`RANDOM_WEIGHTS_MARKER`) or ``'reduced_size'`` (a
    UNet narrower than SD 2.1's, e.g. tiny test weights without the marker). ``reason`` says
    why in one sentence, naming the folder.
    """

    kind: str
    reason: str

    @property
    def meaningful(self):
        """Return True when the predictions can mean something (published-size weights)."""
        return self.kind == 'genpercept'


def weights_origin(model_root, models):
    """
    Return the :class:`WeightsOrigin` of the weights ``models`` would load from ``model_root``.

    The one check every entry point uses (node, ``infer``, ``bag``, ``demo``): a model root
    carrying the random-weights marker is ``'random'``; otherwise a UNet whose
    ``block_out_channels`` differ from SD 2.1's ``[320, 640, 1280, 1280]`` (the GenPercept
    UNets are fine-tuned SD 2.1 UNets) is ``'reduced_size'``. A ``config.json`` without the key
    counts as SD 2.1, as the loader completes it from the SD 2.1 config. ``model_root`` None
    reads the Hugging Face cache, which never holds the marker. Raises :class:`WeightsError`
    when a UNet config cannot be found.
    """
    locator = WeightsLocator(model_root, models)
    where = str(locator.model_root) if locator.model_root is not None \
        else 'the Hugging Face cache'
    if locator.model_root is not None and (locator.model_root / RANDOM_WEIGHTS_MARKER).is_file():
        return WeightsOrigin('random', f'{where} holds random weights (randomly initialised, '
                                       f'{RANDOM_WEIGHTS_MARKER}): predictions are noise')
    real = list(SD21_UNET_CONFIG['block_out_channels'])
    for name in models:
        spec = get_model_spec(name)
        config = read_json(locator.resolve(spec.unet_repo, f'{spec.unet_subfolder}/{CONFIG_NAME}'))
        channels = list(config.get('block_out_channels') or real)
        if channels != real:
            return WeightsOrigin('reduced_size', (
                f'{where} holds reduced-size (test) weights, not GenPercept: the {name} UNet has '
                f'block_out_channels {channels}, GenPercept {real}; predictions are not '
                'meaningful'))
    return WeightsOrigin('genpercept', f'GenPercept weights from {where}')
