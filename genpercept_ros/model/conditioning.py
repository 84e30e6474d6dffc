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
The empty-prompt conditioning, computed once from tokenizer + text encoder and cached.

v2 models were trained with the CLIP embedding of ``""`` tokenised without padding
(BOS, EOS: ``[1, 2, D]``); v1 models with the same prompt padded to 77 tokens with the
tokenizer's pad token "!" and stored in float16 (``empty_text_embed.npy``). The embedding is
written to a small safetensors file next to the SD 2.1 weights (or a user cache folder when that
is read-only) and the text encoder is released right after computing it.
"""

import gc
import hashlib
import logging
import os
from pathlib import Path

from genpercept_ros.model.registry import EMPTY_PROMPT_2
from genpercept_ros.model.registry import EMPTY_PROMPT_77
from genpercept_ros.model.registry import GENPERCEPT_V1_REPO
from genpercept_ros.model.registry import SD21_REPO
from genpercept_ros.model.weights import TOKENIZER_FILES
from genpercept_ros.model.weights import TRANSFORMERS_WEIGHTS_NAME
from genpercept_ros.model.weights import WeightsError

CACHE_NAMES = {
    EMPTY_PROMPT_2: 'empty_prompt_embedding_v2.safetensors',
    EMPTY_PROMPT_77: 'empty_prompt_embedding_v1_77.safetensors',
}
V1_EMBEDDING_NAME = 'empty_text_embed.npy'
_CHUNK = 8 << 20
_LOG = logging.getLogger(__name__)


def user_cache_dir():
    """Return the per-user cache folder (``GENPERCEPT_CACHE_DIR`` or XDG cache)."""
    explicit = os.environ.get('GENPERCEPT_CACHE_DIR')
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(base) / 'genpercept_ros'


def _fingerprint(paths):
    """Hash sizes, heads and tails of the files the embedding depends on."""
    digest = hashlib.sha256()
    for path in paths:
        size = os.path.getsize(path)
        digest.update(f'{Path(path).name}:{size}:'.encode())
        with open(path, 'rb') as stream:
            digest.update(stream.read(_CHUNK))
            if size > 2 * _CHUNK:
                stream.seek(size - _CHUNK)
                digest.update(stream.read(_CHUNK))
    return digest.hexdigest()


def _source_files(locator, repo_id=SD21_REPO):
    files = [locator.resolve(repo_id, f'tokenizer/{name}') for name in TOKENIZER_FILES]
    files.append(locator.resolve(repo_id, 'text_encoder/config.json'))
    files.append(locator.resolve_weights(repo_id, 'text_encoder', TRANSFORMERS_WEIGHTS_NAME))
    return files


def encode_empty_prompt(locator, kind, repo_id=SD21_REPO):
    """Run tokenizer + text encoder of ``repo_id`` on ``""``; return [1, S, D] (CPU)."""
    import torch
    from genpercept_ros.model.loaders import load_text_encoder
    from genpercept_ros.model.loaders import load_tokenizer
    tokenizer, pad_id = load_tokenizer(locator, repo_id)
    ids = tokenizer('', padding='do_not_pad', max_length=tokenizer.model_max_length,
                    truncation=True).input_ids
    if kind == EMPTY_PROMPT_77:
        ids = ids + [pad_id] * (77 - len(ids))
    encoder = load_text_encoder(locator, repo_id)
    try:
        with torch.no_grad():
            embedding = encoder(torch.tensor([ids], dtype=torch.long))[0].float()
    finally:
        del encoder
        gc.collect()
    if kind == EMPTY_PROMPT_77:
        # The v1 reference loads a float16 .npy of this embedding.
        embedding = embedding.half()
    return embedding.contiguous()


def reference_v1_embedding(locator):
    """
    Return the v1 reference's own ``empty_text_embed.npy`` as [1, 77, D] float16, if present.

    The file ships with the GitHub repository (``GenPercept_v1/``), not on the hub; copied to
    ``<model_root>/GenPercept/empty_text_embed.npy`` it replaces the recomputed embedding.
    """
    if locator.model_root is None:
        return None
    import numpy as np
    import torch
    path = locator.local_path(GENPERCEPT_V1_REPO, V1_EMBEDDING_NAME)
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise WeightsError(f'cannot read {path}: {error}') from error
    if array.ndim != 2 or array.shape[0] != 77:
        raise WeightsError(f'{path} has shape {array.shape}; expected (77, width)')
    return torch.from_numpy(array.astype(np.float16))[None]


def empty_prompt_embedding(locator, kind, repo_id=SD21_REPO):
    """
    Return the cached empty-prompt embedding of ``kind``, computing it on first use.

    ``repo_id`` holds the ``tokenizer/`` and ``text_encoder/`` (SD 2.1 for GenPercept; E2E-FT and
    Lotus-D repos carry their own copies, all tokenised without padding like GenPercept v2).
    The cache file carries a fingerprint of the tokenizer and text encoder files and is
    recomputed when they change. For v1, ``<model_root>/GenPercept/empty_text_embed.npy`` (the
    reference's stored embedding) takes precedence when present.
    """
    from safetensors import safe_open
    from safetensors import SafetensorError
    from safetensors.torch import save_file
    if kind not in CACHE_NAMES:
        raise ValueError(f'unknown conditioning kind {kind!r}')
    if kind == EMPTY_PROMPT_77:
        stored = reference_v1_embedding(locator)
        if stored is not None:
            return stored
    fingerprint = _fingerprint(_source_files(locator, repo_id))
    folders = []
    local = locator.cache_dir_for(repo_id)
    if local is not None:
        folders.append(local)
    folders.append(user_cache_dir() / fingerprint[:16])
    for folder in folders:
        path = folder / CACHE_NAMES[kind]
        if not path.is_file():
            continue
        try:
            with safe_open(str(path), framework='pt') as cached:
                if (cached.metadata() or {}).get('fingerprint') == fingerprint:
                    return cached.get_tensor('embedding')
        except (SafetensorError, OSError, KeyError, ValueError):
            pass    # a broken cache file is simply recomputed
    embedding = encode_empty_prompt(locator, kind, repo_id)
    errors = []
    for folder in folders:
        path = folder / CACHE_NAMES[kind]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(path.name + f'.tmp{os.getpid()}')
            save_file({'embedding': embedding}, str(temporary),
                      metadata={'fingerprint': fingerprint, 'kind': kind})
            os.replace(temporary, path)
            return embedding
        except OSError as error:
            errors.append(f'{path}: {error}')
    _LOG.warning('cannot cache the empty-prompt embedding (%s); it will be recomputed next '
                 'time', '; '.join(errors))
    return embedding
