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

"""Geometry layer: numpy (+ OpenCV for lens models): camera models, back-projection, scale."""

from .backproject import backproject  # noqa: F401
from .backproject import backproject_planes  # noqa: F401
from .backproject import decimate  # noqa: F401
from .camera_model import CameraModel  # noqa: F401
from .camera_model import DistortionModelError  # noqa: F401
from .colorize import colorize_depth  # noqa: F401
from .colorize import normals_to_rgb  # noqa: F401
from .confidence import depth_confidence  # noqa: F401
from .filters import apply_range_limits  # noqa: F401
from .filters import mask_far_saturation  # noqa: F401
from .filters import remove_flying_pixels  # noqa: F401
from .filters import voxel_downsample  # noqa: F401
from .filters import voxel_downsample_rgb  # noqa: F401
from .ground import fit_ground_scale  # noqa: F401
from .ground import GroundScaleFit  # noqa: F401
from .ground import up_from_pitch_roll  # noqa: F401
from .ground import up_from_rotation  # noqa: F401
from .intrinsics import Intrinsics  # noqa: F401
from .normals import angular_agreement  # noqa: F401
from .normals import normals_from_depth  # noqa: F401
from .scale import affine_to_metric  # noqa: F401
from .scale import fit_scale_shift  # noqa: F401
from .scale import range_affine  # noqa: F401
from .scale import relative_to_metric  # noqa: F401
from .scale import ScaleShiftFit  # noqa: F401
from .scale import space_for_kind  # noqa: F401
from .scale_reference import reference_from_depth_image  # noqa: F401
from .scale_reference import reference_from_points  # noqa: F401
from .scale_tracking import MetricDepthTracker  # noqa: F401
from .scale_tracking import ReferenceBuffer  # noqa: F401
from .scale_tracking import ScaleDecision  # noqa: F401
from .scale_tracking import UpTracker  # noqa: F401
