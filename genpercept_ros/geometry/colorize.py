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
Visualisations: the reference's Spectral depth colouring and (n + 1) / 2 normal colouring.

Spectral is rebuilt from its 11 ColorBrewer anchor colours (linear interpolation over a
256-entry table, like matplotlib). Hand-written on purpose: matplotlib is a test-only
dependency (too heavy for a node that only needs one table); the table is checked byte for byte
against ``matplotlib.colormaps['Spectral']`` in the tests.
"""

import numpy as np

# ColorBrewer "Spectral" with 11 classes, from 0 (dark red) to 1 (purple-blue).
SPECTRAL_ANCHORS = np.array([
    [158, 1, 66], [213, 62, 79], [244, 109, 67], [253, 174, 97], [254, 224, 139],
    [255, 255, 191], [230, 245, 152], [171, 221, 164], [102, 194, 165], [50, 136, 189],
    [94, 79, 162],
], dtype=np.uint8)
LUT_SIZE = 256


def spectral_lut(size=LUT_SIZE):
    """
    Return the (size, 3) uint8 Spectral table.

    Entry i is the anchors linearly interpolated at ``i / (size - 1)`` and converted to bytes
    by truncating ``value * 255``, as the reference does (matplotlib ``cmap(x)`` then
    ``(rgb * 255).astype(uint8)``). The interpolation is evaluated in table-index units as
    ``lower + fraction * (upper - lower)`` so the float rounding, and hence the truncated
    bytes, are the same as matplotlib's.
    """
    size = int(size)
    if size < 2:
        raise ValueError(f'`size` must be at least 2, got {size}.')
    anchors = SPECTRAL_ANCHORS.astype(np.float64) / 255.0
    anchor_at = np.linspace(0.0, 1.0, len(anchors)) * (size - 1)
    entry_at = (size - 1) * np.linspace(0.0, 1.0, size)
    upper = np.clip(np.searchsorted(anchor_at, entry_at), 1, len(anchors) - 1)
    fraction = (entry_at - anchor_at[upper - 1]) / (anchor_at[upper] - anchor_at[upper - 1])
    table = fraction[:, None] * (anchors[upper] - anchors[upper - 1]) + anchors[upper - 1]
    table[0], table[-1] = anchors[0], anchors[-1]
    return (np.clip(table, 0.0, 1.0) * 255.0).astype(np.uint8)


# One extra black row: invalid pixels index it, so lookup needs no separate masking pass.
_SPECTRAL_WITH_INVALID = np.concatenate([spectral_lut(), np.zeros((1, 3), dtype=np.uint8)])


def colorize_depth(values, vmin=None, vmax=None, invert=False):
    """
    Colour an (H, W) map with Spectral: ``vmin`` -> dark red, ``vmax`` -> purple-blue.

    ``vmin``/``vmax`` default to the finite minimum/maximum of ``values``; values outside are
    clipped. ``invert=True`` swaps the ends (e.g. near = blue for metric depth, as the
    reference shows disparity models). Non-finite values are black. Returns (H, W, 3) uint8.
    Index ``floor(x * 256)`` clipped to 255 matches matplotlib's colormap lookup.
    """
    data = np.asarray(values, dtype=np.float32)
    if data.ndim != 2:
        raise ValueError(f'`values` must be a 2-D (H, W) map, got shape {data.shape}.')
    finite = np.isfinite(data)
    if vmin is None or vmax is None:
        if finite.any():
            low = float(np.min(data, where=finite, initial=np.inf))
            high = float(np.max(data, where=finite, initial=-np.inf))
        else:
            low, high = 0.0, 1.0
        vmin = low if vmin is None else vmin
        vmax = high if vmax is None else vmax
    vmin, vmax = float(vmin), float(vmax)
    if not (np.isfinite(vmin) and np.isfinite(vmax)):
        raise ValueError(f'`vmin` and `vmax` must be finite, got {vmin} and {vmax}.')
    if vmin > vmax:
        raise ValueError(f'`vmin` ({vmin}) must not exceed `vmax` ({vmax}).')
    span = vmax - vmin
    gain = np.float32(LUT_SIZE / span) if span > 0 else np.float32(0.0)
    with np.errstate(invalid='ignore', over='ignore'):
        if invert:
            index = (np.float32(vmax) - data) * gain
        else:
            index = (data - np.float32(vmin)) * gain
        np.clip(index, 0, LUT_SIZE - 1, out=index)
    index[~finite] = LUT_SIZE
    return _SPECTRAL_WITH_INVALID.take(index.astype(np.intp), axis=0)


def normals_to_rgb(normals):
    """
    Colour unit normals (H, W, 3) as ``(n + 1) / 2 * 255`` (truncated, like the reference).

    Components are clipped to [-1, 1]; pixels with any non-finite component are black.
    Returns (H, W, 3) uint8. The frame is whatever ``normals`` is in (ROS optical for ours).
    """
    n = np.asarray(normals, dtype=np.float32)
    if n.ndim != 3 or n.shape[-1] != 3:
        raise ValueError(f'`normals` must have shape (H, W, 3), got {n.shape}.')
    with np.errstate(invalid='ignore', over='ignore'):
        rgb = n * np.float32(127.5)
        rgb += np.float32(127.5)
    bad = ~np.isfinite(rgb)
    invalid = bad[..., 0] | bad[..., 1] | bad[..., 2]
    np.clip(rgb, 0.0, 255.0, out=rgb)
    rgb[invalid] = 0.0
    return rgb.astype(np.uint8)
