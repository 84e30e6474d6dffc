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

"""Spectral depth colouring and normal colouring."""

from genpercept_ros.geometry.colorize import colorize_depth
from genpercept_ros.geometry.colorize import normals_to_rgb
from genpercept_ros.geometry.colorize import spectral_lut
import matplotlib
import numpy as np
import pytest

# ColorBrewer Spectral (11 classes), as published at colorbrewer2.org.
DARK_RED = (158, 1, 66)
PALE_YELLOW = (255, 255, 191)
PURPLE_BLUE = (94, 79, 162)
BREWER_SPECTRAL_11 = np.array([
    DARK_RED, (213, 62, 79), (244, 109, 67), (253, 174, 97), (254, 224, 139), PALE_YELLOW,
    (230, 245, 152), (171, 221, 164), (102, 194, 165), (50, 136, 189), PURPLE_BLUE])


def test_lut_runs_through_the_colorbrewer_anchors():
    lut = spectral_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    np.testing.assert_array_equal(lut[0], DARK_RED)
    np.testing.assert_array_equal(lut[-1], PURPLE_BLUE)
    # Entry i sits at i / 255; anchor k at k / 10. Between two anchors the colour is the
    # straight line between them, so every entry lies within the box the two span.
    for i in range(256):
        k = min(int(i / 255 * 10), 9)
        low = np.minimum(BREWER_SPECTRAL_11[k], BREWER_SPECTRAL_11[k + 1])
        high = np.maximum(BREWER_SPECTRAL_11[k], BREWER_SPECTRAL_11[k + 1])
        assert (lut[i] >= low - 1).all() and (lut[i] <= high).all(), i
        weight = i / 255 * 10 - k
        line = (1 - weight) * BREWER_SPECTRAL_11[k] + weight * BREWER_SPECTRAL_11[k + 1]
        assert np.abs(lut[i] - line).max() <= 1.0, i


def test_lut_matches_matplotlib_spectral():
    reference = matplotlib.colormaps['Spectral'](np.linspace(0.0, 1.0, 256), bytes=True)[:, :3]
    np.testing.assert_array_equal(spectral_lut(), reference)


def test_colorize_depth_matches_matplotlib_on_random_values():
    """Any value in range gets matplotlib's colour: its index rule and its bytes."""
    values = np.random.default_rng(3).uniform(1.5, 9.0, size=(40, 50))
    values[0, :3] = [1.5, 9.0, 5.25]
    reference = matplotlib.colormaps['Spectral']((values - 1.5) / 7.5, bytes=True)[..., :3]
    np.testing.assert_array_equal(colorize_depth(values, 1.5, 9.0), reference)


def test_colorize_depth_ends_nan_and_invert():
    values = np.array([[0.0, 0.5, 1.0, np.nan, np.inf]], dtype=np.float32)
    rgb = colorize_depth(values, 0.0, 1.0)
    assert rgb.shape == (1, 5, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], DARK_RED)
    np.testing.assert_array_equal(rgb[0, 2], PURPLE_BLUE)
    assert np.abs(rgb[0, 1].astype(int) - PALE_YELLOW).max() <= 3  # middle of the scale
    np.testing.assert_array_equal(rgb[0, 3:], 0)
    inverted = colorize_depth(values, 0.0, 1.0, invert=True)
    np.testing.assert_array_equal(inverted[0, 0], PURPLE_BLUE)
    np.testing.assert_array_equal(inverted[0, 2], DARK_RED)


def test_colorize_depth_uses_matplotlib_index_rule_and_auto_range():
    lut = spectral_lut()
    # matplotlib picks entry floor(x * 256), x = 1 included in the last entry.
    x = np.array([[0.0, 1 / 256 - 1e-4, 1 / 256 + 1e-4, 100.5 / 256, 255.5 / 256, 1.0]])
    rgb = colorize_depth(x, 0.0, 1.0)
    np.testing.assert_array_equal(rgb[0], lut[[0, 0, 1, 100, 255, 255]])
    metres = np.array([[2.0, 4.0, np.nan, 6.0]])
    np.testing.assert_array_equal(colorize_depth(metres), colorize_depth(metres, 2.0, 6.0))
    clipped = colorize_depth(np.array([[-5.0, 50.0]]), 0.0, 10.0)
    np.testing.assert_array_equal(clipped[0], lut[[0, 255]])
    flat = colorize_depth(np.full((2, 2), 3.0))
    np.testing.assert_array_equal(flat.reshape(-1, 3), np.tile(lut[0], (4, 1)))
    assert (colorize_depth(np.full((2, 2), np.nan)) == 0).all()


def test_colorize_depth_argument_errors():
    with pytest.raises(ValueError, match='`values`'):
        colorize_depth(np.zeros(4))
    with pytest.raises(ValueError, match='`vmin`'):
        colorize_depth(np.zeros((2, 2)), 2.0, 1.0)
    with pytest.raises(ValueError, match='finite'):
        colorize_depth(np.zeros((2, 2)), 0.0, np.inf)


def test_normals_to_rgb():
    normals = np.array([[[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0],
                         [np.nan, 0.0, 0.0], [1.2, -1.5, 0.6]]], dtype=np.float32)
    rgb = normals_to_rgb(normals)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 5, 3)
    # (n + 1) / 2 * 255, truncated: -1 -> 0, 0 -> 127, 1 -> 255.
    np.testing.assert_array_equal(rgb[0], [[255, 127, 127], [127, 0, 127], [127, 127, 0],
                                           [0, 0, 0], [255, 0, 204]])
    with pytest.raises(ValueError, match='`normals`'):
        normals_to_rgb(np.zeros((4, 3)))
