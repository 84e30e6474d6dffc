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
The full camera model of one image as ``sensor_msgs/CameraInfo`` states it (K, D, R, P).

A :class:`CameraModel` knows whether its image is *raw* (pixels follow K and the lens
distortion D) or *rectified* (pixels follow P, D no longer applies), as image_pipeline
distinguishes ``image_raw`` from ``image_rect``. It gives the ray of every pixel
(:meth:`CameraModel.rays`, the same method as :meth:`Intrinsics.rays`, so callers need not know
the model) and projects points back onto the image with the distortion
(:meth:`CameraModel.project`).

Distortion models: ``plumb_bob`` (k1, k2, p1, p2, k3), ``rational_polynomial`` (k1, k2, p1, p2,
k3, k4, k5, k6) and ``equidistant`` (fisheye k1..k4), the models ROS cameras publish. Their
inverse has no closed form; OpenCV's ``undistortPoints`` / ``fisheye.undistortPoints`` iterate to
convergence (the library every calibration tool uses, so our rays match the calibration), and
every undistorted ray is checked by projecting it again with ``projectPoints``: a pixel whose
round trip misses by more than :data:`ROUND_TRIP_TOLERANCE_PX` (outside the invertible range of
the lens polynomial, or beyond 90 degrees for a fisheye) gets a NaN ray, never a wrong one.

Frames: rays and points are in the camera's optical frame (x right, y down, z forward) of the
image's own pixels. For a raw image that is the camera frame of K; R (the stereo rectification
rotation) is not applied, as depth_image_proc's ``*_radial`` nodes do. For a rectified image
the rays follow P (as image_geometry and depth_image_proc's ``point_cloud_xyz`` do).

This is the one geometry module that uses OpenCV besides numpy (no ROS, no torch).
"""

from dataclasses import dataclass
from dataclasses import replace
import functools
import math

import cv2
import numpy as np

from .intrinsics import _check_factor
from .intrinsics import Intrinsics

PLUMB_BOB = 'plumb_bob'
RATIONAL_POLYNOMIAL = 'rational_polynomial'
EQUIDISTANT = 'equidistant'
# Distortion models with their coefficient count in OpenCV's order.
DISTORTION_MODELS = {PLUMB_BOB: 5, RATIONAL_POLYNOMIAL: 8, EQUIDISTANT: 4}
# A pixel's undistorted ray must project back onto the pixel within this many pixels.
ROUND_TRIP_TOLERANCE_PX = 1e-6
# OpenCV's iteration: stop when the reprojection error of a point is below EPS (pixels) or
# after COUNT iterations; plumb_bob converges in tens of iterations at the image corners.
_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 1000, 1e-12)
_IDENTITY_3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


class DistortionModelError(ValueError):
    """A distortion model (or coefficient count) this package cannot undistort, named."""


@dataclass(frozen=True)
class CameraModel:
    """
    CameraInfo-style model of an image of ``width`` x ``height`` pixels.

    ``k`` (9, row-major 3x3) are the raw image's intrinsics, ``d`` the distortion coefficients
    of ``distortion_model`` (dimensionless: they act on normalised coordinates, so resizing
    keeps them), ``r`` (9) the rectification rotation, ``p`` (12, row-major 3x4) the rectified
    image's projection. ``rectified`` says which image this is: True -> pixels follow P and D is
    ignored; False -> pixels follow K and D. All pixel quantities use the centre convention
    (pixel ``(u, v)`` is the centre of column u, row v). Instances are immutable and hashable;
    the ray table is computed once per distinct model (see :meth:`rays`).
    """

    width: int
    height: int
    k: tuple
    p: tuple
    d: tuple = ()
    distortion_model: str = PLUMB_BOB
    r: tuple = _IDENTITY_3
    rectified: bool = True

    def __post_init__(self):
        """Normalise the matrices to tuples of floats; raise ValueError for wrong sizes."""
        for name, size in (('k', 9), ('p', 12), ('r', 9)):
            values = tuple(float(v) for v in np.asarray(getattr(self, name)).ravel())
            if len(values) != size:
                raise ValueError(f'camera model {name.upper()} needs {size} entries, got '
                                 f'{len(values)}')
            object.__setattr__(self, name, values)
        object.__setattr__(self, 'd', tuple(float(v) for v in np.asarray(self.d).ravel()))
        object.__setattr__(self, 'distortion_model', str(self.distortion_model))
        object.__setattr__(self, 'width', int(self.width))
        object.__setattr__(self, 'height', int(self.height))
        object.__setattr__(self, 'rectified', bool(self.rectified))

    @classmethod
    def from_intrinsics(cls, intrinsics):
        """Return the distortion-free model of pinhole ``intrinsics`` (K = left 3x3 of P)."""
        fx, fy, cx, cy = (float(v) for v in (intrinsics.fx, intrinsics.fy, intrinsics.cx,
                                             intrinsics.cy))
        return cls(width=intrinsics.width, height=intrinsics.height,
                   k=(fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0),
                   p=(fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0),
                   d=(0.0,) * 5, distortion_model=PLUMB_BOB, rectified=True)

    @property
    def intrinsics(self):
        """Return the pinhole Intrinsics of this image's matrix: P when rectified, else K."""
        if self.rectified:
            fx, fy, cx, cy = self.p[0], self.p[5], self.p[2], self.p[6]
        else:
            fx, fy, cx, cy = self.k[0], self.k[4], self.k[2], self.k[5]
        return Intrinsics(fx=fx, fy=fy, cx=cx, cy=cy, width=self.width, height=self.height)

    @property
    def is_distorted(self):
        """Return True for a raw image with a non-zero distortion coefficient."""
        return not self.rectified and any(value != 0.0 for value in self.d)

    def pinhole(self):
        """Return the Intrinsics when the pixels follow a pinhole model, else None."""
        return None if self.is_distorted else self.intrinsics

    def is_valid(self):
        """Return True when the image's matrix is a valid pinhole (see Intrinsics.is_valid)."""
        return self.intrinsics.is_valid()

    def check_distortion(self):
        """
        Raise DistortionModelError unless this model's rays can be computed.

        A rectified image, or a raw one whose coefficients are all zero, needs no distortion
        model; otherwise ``distortion_model`` must be one of :data:`DISTORTION_MODELS`, with at
        most its number of coefficients (fewer are padded with zeros, as OpenCV does).
        """
        if not self.is_distorted:
            return
        expected = DISTORTION_MODELS.get(self.distortion_model)
        if expected is None:
            raise DistortionModelError(
                f'unknown distortion model {self.distortion_model!r} with non-zero D '
                f'{list(self.d)}; supported: {", ".join(DISTORTION_MODELS)} (or rectify the '
                'image with image_proc and set input_rectified)')
        if len(self.d) > expected and any(value != 0.0 for value in self.d[expected:]):
            raise DistortionModelError(
                f'distortion model {self.distortion_model!r} takes {expected} coefficients, '
                f'got {len(self.d)}: {list(self.d)}')

    def coefficients(self):
        """Return D as float64 padded or cut to the model's count (OpenCV's layout)."""
        self.check_distortion()
        count = DISTORTION_MODELS.get(self.distortion_model, 5)
        values = np.zeros(count, dtype=np.float64)
        given = np.asarray(self.d[:count], dtype=np.float64)
        values[:given.size] = given
        return values

    def scaled(self, width, height):
        """
        Return the model of this image resized to ``width`` x ``height``.

        K and P follow ``Intrinsics.scaled``'s pixel-centre convention per axis
        (``f' = f s``, ``c' = (c + 0.5) s - 0.5``); P's Tx and Ty scale with their axis; D and
        R are dimensionless and kept.
        """
        width, height = int(width), int(height)
        if width <= 0 or height <= 0:
            raise ValueError(f'cannot scale a camera model to a {width}x{height} image')
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        k, p = list(self.k), list(self.p)
        k[0], k[1], k[2] = k[0] * sx, k[1] * sx, (k[2] + 0.5) * sx - 0.5
        k[4], k[5] = k[4] * sy, (k[5] + 0.5) * sy - 0.5
        p[0], p[1], p[2], p[3] = p[0] * sx, p[1] * sx, (p[2] + 0.5) * sx - 0.5, p[3] * sx
        p[5], p[6], p[7] = p[5] * sy, (p[6] + 0.5) * sy - 0.5, p[7] * sy
        return replace(self, width=width, height=height, k=tuple(k), p=tuple(p))

    def decimated(self, factor):
        """
        Return the model of ``image[::factor, ::factor]`` (see ``Intrinsics.decimated``).

        Every K and P pixel entry is divided by ``factor`` (no half-pixel shift), so pixel
        ``u'`` keeps the ray of pixel ``factor u'``; the size is rounded up.
        """
        factor = _check_factor(factor)
        if factor == 1:
            return self
        k = tuple(v / factor for v in self.k[:6]) + self.k[6:]
        p = tuple(v / factor for v in self.p[:8]) + self.p[8:]
        return replace(self, width=-(-self.width // factor), height=-(-self.height // factor),
                       k=k, p=p)

    def rays(self):
        """
        Return the ray of every pixel, ``(height, width, 3)`` float32 with z = 1 (read-only).

        The point at depth ``z`` (metres along the optical axis) seen by pixel ``(u, v)`` is
        ``z * rays[v, u]``. Pinhole images give ``Intrinsics.rays()``; distorted raw images
        give their undistorted normalised coordinates (OpenCV, iterated to convergence);
        pixels whose ray cannot be found (round trip above :data:`ROUND_TRIP_TOLERANCE_PX`)
        are NaN in all three components. Computed once per model and cached (the same array
        is returned again).
        Raises DistortionModelError for an unsupported distortion model, ValueError for
        invalid intrinsics.
        """
        return _ray_table(self)

    def missing_ray_fraction(self):
        """
        Return the fraction of pixels in [0, 1] whose ray :meth:`rays` cannot find (NaN rays).

        0 for pinhole images; for distorted ones, pixels outside the model's valid field (beyond
        90 degrees for a fisheye, or where a strong polynomial folds back). Cached per model.
        """
        return _missing_ray_fraction(self)

    def project(self, xyz):
        """
        Project optical-frame points onto this image: ``(N, 2)`` float64 pixel ``(u, v)``.

        ``xyz`` is ``(..., 3)`` in metres. Raw images apply the distortion (OpenCV
        ``projectPoints`` / ``fisheye.projectPoints``), rectified ones P. Points that are not
        finite, at z <= 0, or (distorted models) outside the field of view the image's own
        rays span -- where a lens polynomial may fold back onto the image -- give NaN.
        """
        points = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        pixels = np.full((points.shape[0], 2), np.nan, dtype=np.float64)
        with np.errstate(invalid='ignore'):
            keep = np.isfinite(points).all(axis=1) & (points[:, 2] > 0)
        if not keep.any():
            return pixels
        pinhole = self.pinhole()
        chosen = points[keep]
        if pinhole is not None:
            x, y, z = chosen[:, 0], chosen[:, 1], chosen[:, 2]
            pixels[keep, 0] = pinhole.fx * x / z + pinhole.cx
            pixels[keep, 1] = pinhole.fy * y / z + pinhole.cy
            return pixels
        normalised = chosen[:, :2] / chosen[:, 2:3]
        inside = np.einsum('ij,ij->i', normalised, normalised) <= _field_radius(self) ** 2
        indices = np.flatnonzero(keep)[inside]
        if indices.size:
            pixels[indices] = _distort(self, normalised[inside])
        return pixels


def _camera_matrix(model):
    return np.asarray(model.k, dtype=np.float64).reshape(3, 3)


def _distort(model, normalised):
    """Return the raw pixels of (N, 2) normalised coordinates (z = 1) through K and D."""
    points = np.concatenate([normalised, np.ones((normalised.shape[0], 1))], axis=1)
    points = points.reshape(-1, 1, 3)
    zero = np.zeros(3, dtype=np.float64)
    if model.distortion_model == EQUIDISTANT:
        pixels, _ = cv2.fisheye.projectPoints(points, zero, zero, _camera_matrix(model),
                                              model.coefficients())
    else:
        pixels, _ = cv2.projectPoints(points, zero, zero, _camera_matrix(model),
                                      model.coefficients())
    return pixels.reshape(-1, 2)


def _undistort(model, pixels):
    """Return (N, 2) normalised coordinates of (N, 2) raw pixels (NaN where not converged)."""
    source = np.ascontiguousarray(pixels, dtype=np.float64).reshape(-1, 1, 2)
    identity = np.eye(3)
    if model.distortion_model == EQUIDISTANT:
        result = cv2.fisheye.undistortPoints(source, _camera_matrix(model),
                                             model.coefficients(), R=identity, P=identity,
                                             criteria=_CRITERIA)
    elif hasattr(cv2, 'undistortPointsIter'):   # OpenCV 4.x: criteria only on this variant
        result = cv2.undistortPointsIter(source, _camera_matrix(model), model.coefficients(),
                                         identity, identity, _CRITERIA)
    else:
        result = cv2.undistortPoints(source, _camera_matrix(model), model.coefficients(),
                                     R=identity, P=identity, criteria=_CRITERIA)
    normalised = result.reshape(-1, 2)
    with np.errstate(invalid='ignore'):
        error = np.hypot(*(_distort(model, normalised) - pixels.reshape(-1, 2)).T)
        bad = ~(error <= ROUND_TRIP_TOLERANCE_PX)
    normalised[bad] = np.nan
    return normalised


@functools.lru_cache(maxsize=32)
def _ray_table(model):
    pinhole = model.pinhole()
    if pinhole is not None:
        if not pinhole.is_valid():
            raise ValueError(f'invalid intrinsics {pinhole}')
        rays = pinhole.rays()
    else:
        model.check_distortion()
        if not model.is_valid():
            raise ValueError(f'invalid intrinsics {model.intrinsics}')
        u, v = np.meshgrid(np.arange(model.width, dtype=np.float64),
                           np.arange(model.height, dtype=np.float64))
        normalised = _undistort(model, np.stack([u.ravel(), v.ravel()], axis=1))
        rays = np.empty((model.height, model.width, 3), dtype=np.float32)
        rays[..., :2] = normalised.reshape(model.height, model.width, 2)
        rays[..., 2] = np.where(np.isnan(rays[..., 0]), np.float32(np.nan), np.float32(1.0))
    rays.setflags(write=False)
    return rays


@functools.lru_cache(maxsize=32)
def _missing_ray_fraction(model):
    return float(np.isnan(_ray_table(model)[..., 2]).mean())


@functools.lru_cache(maxsize=32)
def _field_radius(model):
    """
    Return the largest normalised radius the image's border rays reach.

    The border is walked half a pixel outside the pixel centres (the image edge), so every
    point that lands on the image lies within this radius.
    """
    width, height = model.width, model.height
    xs = np.arange(-0.5, width, 0.5)
    ys = np.arange(-0.5, height, 0.5)
    border = np.concatenate([
        np.stack([xs, np.full_like(xs, -0.5)], axis=1),
        np.stack([xs, np.full_like(xs, height - 0.5)], axis=1),
        np.stack([np.full_like(ys, -0.5), ys], axis=1),
        np.stack([np.full_like(ys, width - 0.5), ys], axis=1)])
    normalised = _undistort(model, border)
    radius = np.hypot(normalised[:, 0], normalised[:, 1])
    radius = radius[np.isfinite(radius)]
    if radius.size == 0:
        return math.inf
    return float(radius.max()) * (1.0 + 1e-9)
