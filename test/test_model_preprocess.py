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

"""Input resize rules and normalisation against independent numpy computations."""

from genpercept_ros.model.preprocess import normalise_v2
from genpercept_ros.model.preprocess import preprocess_v1
from genpercept_ros.model.preprocess import resize_like_torchvision
from genpercept_ros.model.sizes import processing_size
import numpy as np
from PIL import Image
import pytest
import torch


def _triangle_weights(in_size, out_size):
    """PIL/torchvision antialiased bilinear weights (triangle filter widened when shrinking)."""
    scale = in_size / out_size
    support = max(scale, 1.0)
    weights = np.zeros((out_size, in_size))
    for out_index in range(out_size):
        center = (out_index + 0.5) * scale
        low = max(int(center - support + 0.5), 0)
        high = min(int(center + support + 0.5), in_size)
        taps = np.arange(low, high)
        w = np.clip(1.0 - np.abs((taps - center + 0.5) / support), 0.0, None)
        weights[out_index, low:high] = w / w.sum()
    return weights


def _numpy_resize(image_chw, size):
    rows = _triangle_weights(image_chw.shape[1], size[0])
    cols = _triangle_weights(image_chw.shape[2], size[1])
    return np.einsum('hi,cij,wj->chw', rows, image_chw.astype(np.float64), cols)


@pytest.mark.parametrize('height, width, resolution, expected', [
    (480, 640, 768, (576, 768)),
    (1080, 1920, 768, (432, 768)),
    (45, 61, 64, (47, 64)),       # 45 * 64 / 61 = 47.2 -> 47 (truncated, up-scaled)
    (61, 45, 64, (64, 47)),
    (333, 500, 768, (511, 768)),  # 333 * 1.536 = 511.49 -> 511
    (100, 100, 0, (100, 100)),    # 0 = native
])
def test_processing_size_truncates_like_the_reference(height, width, resolution, expected):
    assert processing_size(height, width, resolution) == expected
    factor = min(resolution / width, resolution / height) if resolution else 1.0
    assert expected == (int(height * factor), int(width * factor))


def test_processing_size_rejects_bad_values():
    with pytest.raises(ValueError, match='>= 0'):
        processing_size(10, 10, -1)
    with pytest.raises(ValueError, match='at least 8 pixels'):
        processing_size(10, 1000, 64)


@pytest.mark.parametrize('size', [(17, 23), (40, 50), (64, 80), (31, 97)])
def test_float_resize_matches_triangle_filter(size):
    rng = np.random.default_rng(1)
    image = rng.random((3, 40, 50))
    got = resize_like_torchvision(torch.from_numpy(image).float()[None], size)[0].numpy()
    np.testing.assert_allclose(got, _numpy_resize(image, size), atol=2e-5)


@pytest.mark.parametrize('size', [(17, 23), (64, 80), (29, 50)])
def test_uint8_resize_rounds_back_to_uint8(size):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (3, 40, 50), dtype=np.uint8)
    got = resize_like_torchvision(torch.from_numpy(image)[None], size)[0].numpy()
    assert got.dtype == np.uint8
    exact = _numpy_resize(image, size)
    clear = np.abs(exact - np.floor(exact) - 0.5) > 1e-3   # skip float ties
    np.testing.assert_array_equal(got[clear], np.round(exact[clear]).astype(np.uint8))


def test_uint8_resize_rounds_half_to_even():
    # Width 2 -> 1 averages the pair exactly: 1.5 -> 2, 2.5 -> 2, 3.5 -> 4, 4.5 -> 4.
    image = torch.tensor([[[[1, 2], [2, 3], [3, 4], [4, 5]]]], dtype=torch.uint8)
    got = resize_like_torchvision(image, (4, 1))
    assert got.flatten().tolist() == [2, 2, 4, 4]


def test_same_size_resize_is_identity():
    image = torch.arange(60, dtype=torch.uint8).reshape(1, 3, 4, 5)
    assert resize_like_torchvision(image, (4, 5)) is image


def test_normalise_v2_is_float32_arithmetic():
    values = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    got = normalise_v2(values, torch.float32)
    expected = (np.arange(256, dtype=np.float32) / np.float32(255.0) * np.float32(2.0)
                - np.float32(1.0)).reshape(1, 1, 16, 16)
    np.testing.assert_array_equal(got.numpy(), expected)
    assert got.min() == -1.0 and got.max() == 1.0


def test_preprocess_v1_uses_pil_default_resize_and_float64():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)
    got = preprocess_v1([image], (46, 64), torch.float32, torch.device('cpu'))
    resized = np.asarray(Image.fromarray(image).resize((64, 46), Image.Resampling.BICUBIC))
    expected = (resized.transpose(2, 0, 1) / 255.0 * 2.0 - 1.0).astype(np.float32)[None]
    np.testing.assert_array_equal(got.numpy(), expected)
