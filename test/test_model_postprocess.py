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

"""Post-processing: normals frame conversion, min-max stretching, raw layouts."""

from genpercept_ros.model.postprocess import minmax_per_image
from genpercept_ros.model.postprocess import normals_to_optical
from genpercept_ros.model.postprocess import postprocess
from genpercept_ros.model.postprocess import raw_layout
from genpercept_ros.model.registry import POST_V1_DEPTH
from genpercept_ros.model.registry import POST_V2_CLIP
import numpy as np
import pytest
import torch


def _raw_v2(vectors):
    """GenPercept-frame vectors [N, 3] -> v2 raw image [1, 3, 1, N] holding (n + 1) / 2."""
    return torch.tensor((np.asarray(vectors, dtype=np.float32) + 1) / 2).T[None, :, None, :]


def test_camera_axes_map_to_ros_optical_frame():
    # GenPercept: x right, y up, z towards the camera. Optical: x right, y down, z forward.
    floor = [0.0, 1.0, 0.0]            # normal pointing up
    wall_facing_camera = [0.0, 0.0, 1.0]
    wall_facing_right = [1.0, 0.0, 0.0]
    out = normals_to_optical(_raw_v2([floor, wall_facing_camera, wall_facing_right]), True)
    np.testing.assert_allclose(out[0, 0].numpy(), [[0, -1, 0], [0, 0, -1], [1, 0, 0]],
                               atol=1e-6)


def test_normals_are_renormalised_and_zero_length_is_nan():
    vectors = [[0.3, -0.4, 0.0], [0.0, 0.0, 0.0], [0.2, 0.2, -0.2]]
    out = normals_to_optical(_raw_v2(vectors), True)[0, 0].numpy()
    np.testing.assert_allclose(out[0], [0.6, 0.8, 0.0], atol=1e-6)
    assert np.isnan(out[1]).all()
    np.testing.assert_allclose(out[2], np.array([1.0, -1.0, 1.0]) / np.sqrt(3), atol=1e-6)


def test_v1_normals_are_taken_as_is():
    raw = torch.tensor([[0.0, 0.5, 0.0]]).T[None, :, None, :]   # [1, 3, 1, 1], y up
    np.testing.assert_allclose(normals_to_optical(raw, False)[0, 0, 0].numpy(), [0, -1, 0])


def test_minmax_is_per_image_and_constant_gives_zero():
    pred = torch.stack([torch.linspace(2, 4, 12).reshape(1, 3, 4),
                        torch.full((1, 3, 4), 7.0)])
    out = minmax_per_image(pred)
    np.testing.assert_allclose(out[0].numpy(), ((pred[0] - 2) / 2).numpy(), atol=1e-7)
    assert out[0].min() == 0 and out[0].max() == 1
    assert torch.count_nonzero(out[1]) == 0


def test_v2_recipe_clips_shifts_and_averages_channels():
    decoded = torch.tensor([[-3.0, 0.0, 0.5, 1.5]]).reshape(1, 1, 2, 2).repeat(1, 3, 1, 1)
    decoded[:, 1] += 0.3
    raw = postprocess(POST_V2_CLIP, decoded, channel_mean=True, out_size=(2, 2))
    mean = decoded.mean(1, keepdim=True)
    np.testing.assert_allclose(raw.numpy(), ((mean.clamp(-1, 1) + 1) / 2).numpy(), atol=1e-7)


def test_v1_depth_recipe_clips_before_stretching():
    decoded = torch.tensor([-5.0, -0.5, 0.5, 5.0]).reshape(1, 1, 2, 2).repeat(1, 3, 1, 1)
    raw = postprocess(POST_V1_DEPTH, decoded, channel_mean=True, out_size=(2, 2))
    # Clipped to [-1, 1] first, so -0.5 lands at 0.25, not at 0.45 of the unclipped range.
    np.testing.assert_allclose(raw.flatten().numpy(), [0.0, 0.25, 0.75, 1.0], atol=1e-7)


def test_raw_layouts():
    raw = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    expected = raw.numpy()   # [B, C, H, W]; every entry distinct, so any transposition shows
    hw = raw_layout(raw[:, :1], 'HW').numpy()
    assert hw.shape == (2, 4, 5)
    np.testing.assert_array_equal(hw, expected[:, 0])
    hwc = raw_layout(raw, 'HWC').numpy()
    assert hwc.shape == (2, 4, 5, 3)
    for b, c, v, u in [(0, 0, 0, 0), (1, 2, 3, 4), (0, 1, 2, 3), (1, 0, 3, 1)]:
        assert hwc[b, v, u, c] == expected[b, c, v, u]
    np.testing.assert_array_equal(raw_layout(raw, 'CHW').numpy(), expected)


def test_unknown_recipe_is_an_error():
    with pytest.raises(ValueError, match='recipe'):
        postprocess('bogus', torch.zeros(1, 3, 2, 2), False, (2, 2))
