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

"""Pinhole intrinsics of one image and their behaviour under resizing and decimation."""

from dataclasses import dataclass
import math

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """
    Pinhole intrinsics (pixels) of an image of ``width`` x ``height`` pixels.

    Pixel ``(u, v)`` is the centre of column ``u`` and row ``v`` (ROS / OpenCV convention),
    so the ray of pixel ``(u, v)`` is ``((u - cx) / fx, (v - cy) / fy, 1)``.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def is_valid(self):
        """Return True when focal lengths are positive and finite and the size is non-zero."""
        values = (self.fx, self.fy, self.cx, self.cy)
        return (all(math.isfinite(v) for v in values)
                and self.fx > 0.0 and self.fy > 0.0
                and int(self.width) > 0 and int(self.height) > 0)

    def rays(self):
        """
        Return the ray of every pixel, ``(height, width, 3)`` float32 with z = 1.

        Pixel ``(u, v)`` gets ``((u - cx) / fx, (v - cy) / fy, 1)``: the point at depth ``z``
        (metres along the optical axis) is ``z * ray``. Distorted camera models provide the
        same method with their undistorted rays, so callers need not know the model.
        """
        u = (np.arange(int(self.width), dtype=np.float64) - self.cx) / self.fx
        v = (np.arange(int(self.height), dtype=np.float64) - self.cy) / self.fy
        rays = np.empty((int(self.height), int(self.width), 3), dtype=np.float32)
        rays[..., 0] = u[None, :]
        rays[..., 1] = v[:, None]
        rays[..., 2] = 1.0
        return rays

    def pinhole(self):
        """Return self: these pixels follow the pinhole model (``CameraModel`` has the same)."""
        return self

    def project(self, xyz):
        """
        Project optical-frame points (``(..., 3)``, metres) to ``(N, 2)`` float64 pixels.

        ``u = fx x / z + cx``, ``v = fy y / z + cy``; points that are not finite or have
        z <= 0 give NaN.
        """
        points = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        pixels = np.full((points.shape[0], 2), np.nan, dtype=np.float64)
        with np.errstate(invalid='ignore'):
            keep = np.isfinite(points).all(axis=1) & (points[:, 2] > 0)
        x, y, z = points[keep, 0], points[keep, 1], points[keep, 2]
        pixels[keep, 0] = self.fx * x / z + self.cx
        pixels[keep, 1] = self.fy * y / z + self.cy
        return pixels

    def scaled(self, width, height):
        """
        Return the intrinsics of this image resized to ``width`` x ``height``.

        Uses the pixel-centre convention of a resize that maps the image edges onto each other:
        ``f' = f * s`` and ``c' = (c + 0.5) * s - 0.5`` with ``s = new / old`` per axis, so a
        scene point keeps its position relative to the image borders.
        """
        width = int(width)
        height = int(height)
        if width <= 0 or height <= 0:
            raise ValueError(f'cannot scale intrinsics to a {width}x{height} image')
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'cannot scale intrinsics of a {self.width}x{self.height} image')
        sx = width / self.width
        sy = height / self.height
        return Intrinsics(fx=self.fx * sx, fy=self.fy * sy,
                          cx=(self.cx + 0.5) * sx - 0.5, cy=(self.cy + 0.5) * sy - 0.5,
                          width=width, height=height)

    def decimated(self, factor):
        """
        Return the intrinsics of ``image[::factor, ::factor]`` (see ``decimate``).

        Pixel ``u'`` of the decimated image is pixel ``factor * u'`` of this one, hence
        ``f' = f / factor`` and ``c' = c / factor`` (no half-pixel shift, unlike ``scaled``),
        and the size is rounded up.
        """
        factor = _check_factor(factor)
        return Intrinsics(fx=self.fx / factor, fy=self.fy / factor,
                          cx=self.cx / factor, cy=self.cy / factor,
                          width=-(-int(self.width) // factor),
                          height=-(-int(self.height) // factor))


def _check_factor(factor):
    if isinstance(factor, bool) or int(factor) != factor or int(factor) < 1:
        raise ValueError(f'decimation factor must be an integer >= 1, got {factor!r}')
    return int(factor)
