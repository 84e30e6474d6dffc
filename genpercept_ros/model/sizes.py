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
The model's size rule, without torch: the grid an input of a given size is processed at.

Kept torch-free so that the pipeline can refuse a frame the model cannot take before any model
code runs (``genpercept_ros.pipeline.check_frame_size``) with the same rule the predictor uses.
"""

# The VAE downsamples by 8: a processing size below 8 pixels per side has no latent pixel.
MIN_PROCESSING_SIDE = 8


def scaled_size(height, width, processing_resolution):
    """
    Return the (height, width) an input of ``height`` x ``width`` is resized to, unchecked.

    ``processing_resolution`` is the longest edge (0 = native). As in the reference the factor
    is ``min(P / W, P / H)`` in float64 and the new sizes are truncated, so small images are
    up-scaled too (aim-uofa/GenPercept ``resize_max_res``, genpercept-inference.md §3.2).
    Raises ``ValueError`` for a negative or missing ``processing_resolution``.
    """
    if processing_resolution is None or int(processing_resolution) < 0:
        raise ValueError(f'processing_resolution must be >= 0, got {processing_resolution!r}')
    processing_resolution = int(processing_resolution)
    new_height, new_width = int(height), int(width)
    if processing_resolution > 0:
        factor = min(processing_resolution / width, processing_resolution / height)
        new_height, new_width = int(height * factor), int(width * factor)
    return new_height, new_width


def processing_size(height, width, processing_resolution):
    """
    Return the (height, width) the model runs at for an input of ``height`` x ``width``.

    Same as :func:`scaled_size`, and raises ``ValueError`` when a side falls below
    :data:`MIN_PROCESSING_SIDE` pixels (the VAE needs at least one latent pixel).
    """
    new_height, new_width = scaled_size(height, width, processing_resolution)
    if new_height < MIN_PROCESSING_SIDE or new_width < MIN_PROCESSING_SIDE:
        raise ValueError(
            f'a {height}x{width} image at processing resolution {processing_resolution} becomes '
            f'{new_height}x{new_width}; the VAE needs at least {MIN_PROCESSING_SIDE} pixels per '
            'side')
    return new_height, new_width
