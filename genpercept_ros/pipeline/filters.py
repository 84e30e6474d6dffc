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

"""The node's depth filters and quality checks, configured from :class:`PipelineSettings`."""

import numpy as np

from ..geometry.backproject import backproject
from ..geometry.filters import apply_range_limits
from ..geometry.filters import mask_far_saturation
from ..geometry.filters import remove_flying_pixels
from ..geometry.filters import voxel_downsample
from ..geometry.filters import voxel_downsample_rgb
from ..geometry.normals import angular_agreement
from ..geometry.normals import normals_from_depth

# Relative values this close to the far end count as saturated (the v2 post-processing clips
# there, and the antialiased resize smears the clipped plateau by less than this).
FAR_SATURATION_MARGIN = 1e-3


def filter_depth(depth_m, relative, kind, settings):
    """
    Apply the configured filters to metric depth; removed pixels become NaN.

    Order: far-plane saturation (on the relative map), range limits, flying pixels (last, so
    edges against removed pixels are not flagged).
    """
    if settings.far_saturation_nan:
        saturated = np.isnan(mask_far_saturation(relative, kind, FAR_SATURATION_MARGIN))
        depth_m = np.where(saturated, np.float32(np.nan), depth_m)
    if settings.min_range_m > 0 or settings.max_range_m > 0:
        depth_m = apply_range_limits(depth_m,
                                     settings.min_range_m if settings.min_range_m > 0 else None,
                                     settings.max_range_m if settings.max_range_m > 0 else None)
    if settings.flying_pixel_threshold > 0:
        depth_m = remove_flying_pixels(depth_m, settings.flying_pixel_threshold)
    return np.asarray(depth_m, dtype=np.float32)


def normals_agreement(depth_m, intrinsics, normals):
    """Return the median angle (degrees) between model normals and normals from the depth."""
    from_depth = normals_from_depth(backproject(depth_m, intrinsics))
    return angular_agreement(normals, from_depth)['median_deg']


def voxel_points(xyz, rgb, voxel_size):
    """
    Return ``(points (M, 3), colours (M, 3) uint8 or None)``: voxel means of the finite points.

    Colours are the voxel means of ``rgb`` (one colour per point of ``xyz``) when given.
    """
    if rgb is None:
        return voxel_downsample(xyz, voxel_size), None
    return voxel_downsample_rgb(xyz, rgb, voxel_size)
