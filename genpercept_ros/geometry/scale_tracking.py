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
Scale over time: pairing references, holding and smoothing what does not depend on a frame.

GenPercept normalises every image by its own content, so each frame's relative map carries its
own affine map: a (scale, shift) fitted in one frame means nothing for another, and blending
the raw pairs of different frames is wrong (a 20 % change of the map between two frames puts a
50 % blend ~9 % off). :class:`MetricDepthTracker` therefore fits every frame on its own and
smooths and holds only frame-independent quantities:

- the metric depth itself: a frame without a usable fit is scaled by re-fitting its relative
  map to the last good metric depth where the two agree (robust fit: moved or changed parts
  of the view are outliers), for up to ``max_hold_s`` (``hold_last_fit_s``);
- with ``smoothing`` > 0 (``scale_smoothing``), this frame's fit is blended with the re-fit of
  the previous metric depth to this frame's relative map: two affine maps of the *same* frame,
  so the blend is consistent (on a moving camera it lags by about
  ``smoothing / (1 - smoothing)`` frames);
- :class:`UpTracker` smooths and holds the floor's up vector (a direction in the camera frame,
  independent of any normalisation) for ``scale_mode: ground``.
"""

import bisect
from dataclasses import dataclass
import math

import numpy as np

from .scale import affine_to_metric
from .scale import fit_scale_shift
from .scale import ScaleShiftFit

SOURCE_FITTED = 'fitted'
SOURCE_HELD = 'held'
SOURCE_FALLBACK = 'fallback'


class ReferenceBuffer:
    """
    Keep recent metric references and pair one with a prediction by timestamp.

    References may arrive before or after the image they belong to; ``match`` returns the
    reference whose stamp is closest to the requested one within ``tolerance_s``, or None.
    """

    def __init__(self, tolerance_s=0.05, capacity=16):
        if not (math.isfinite(tolerance_s) and tolerance_s >= 0):
            raise ValueError(f'`tolerance_s` must be finite and >= 0, got {tolerance_s}.')
        if int(capacity) < 1:
            raise ValueError(f'`capacity` must be at least 1, got {capacity}.')
        self.tolerance_s = float(tolerance_s)
        self.capacity = int(capacity)
        self._stamps = []
        self._items = []

    def __len__(self):
        return len(self._stamps)

    def clear(self):
        """Forget every stored reference (e.g. after time jumped back)."""
        self._stamps.clear()
        self._items.clear()

    def add(self, stamp_s, reference):
        """Store ``reference`` taken at ``stamp_s`` seconds, dropping the oldest past capacity."""
        stamp = float(stamp_s)
        if self._stamps and stamp < self._stamps[0] - 1.0:
            # Far older than anything buffered: the source restarted (bag loop); start over.
            self.clear()
        index = bisect.bisect_right(self._stamps, stamp)
        self._stamps.insert(index, stamp)
        self._items.insert(index, reference)
        while len(self._stamps) > self.capacity:
            self._stamps.pop(0)
            self._items.pop(0)

    def match(self, stamp_s):
        """Return ``(reference, offset_s)`` of the closest reference within tolerance or None."""
        if not self._stamps:
            return None
        stamp = float(stamp_s)
        index = bisect.bisect_left(self._stamps, stamp)
        best = None
        for candidate in (index - 1, index):
            if 0 <= candidate < len(self._stamps):
                offset = self._stamps[candidate] - stamp
                if best is None or abs(offset) < abs(best[1]):
                    best = (self._items[candidate], offset)
        if best is None or abs(best[1]) > self.tolerance_s:
            return None
        return best


class UpTracker:
    """
    Smooth and hold the floor's up vector (unit, optical frame) estimated frame by frame.

    ``smoothing`` in [0, 1) is the weight of the previous up in the normalised blend (0: this
    frame's alone). A frame without an estimate reuses the last one for up to ``max_hold_s``.
    Time going backwards forgets the state.
    """

    def __init__(self, max_hold_s=1.0, smoothing=0.0):
        self.max_hold_s, self.smoothing = _hold_and_smoothing(max_hold_s, smoothing)
        self.up = None
        self._stamp = None
        self._last_seen = None

    def reset(self):
        """Forget the up vector."""
        self.up = None
        self._stamp = None
        self._last_seen = None

    def update(self, stamp_s, up=None):
        """Return ``(up or None, age_s or None)`` after taking this frame's estimate (or None)."""
        stamp = float(stamp_s)
        if self._last_seen is not None and stamp < self._last_seen:
            self.reset()
        self._last_seen = stamp
        if up is not None:
            vector = np.asarray(up, dtype=np.float64)
            if self.up is not None and self.smoothing > 0:
                vector = (1.0 - self.smoothing) * vector + self.smoothing * self.up
            self.up = vector / np.linalg.norm(vector)
            self._stamp = stamp
            return self.up, 0.0
        if self.up is not None and stamp - self._stamp <= self.max_hold_s:
            return self.up, stamp - self._stamp
        return None, None


@dataclass(frozen=True)
class ScaleDecision:
    """
    What :class:`MetricDepthTracker` decided for one frame.

    ``source`` is ``'fitted'`` (this frame's own fit, possibly smoothed), ``'held'`` (re-fitted
    to the last good metric depth) or ``'fallback'``; ``scale``/``shift`` act on this frame's
    relative map in ``space`` and are None on fallback (the caller then uses ``range`` mode).
    ``age_s`` is the age of the metric depth the scale came from; ``fit`` the fit made on this
    frame's own reference (None when there was none), for diagnostics.
    """

    source: str
    status: str
    scale: float = None
    shift: float = None
    age_s: float = None
    fit: ScaleShiftFit = None
    reset: bool = False

    @property
    def ok(self):
        """Return True when a scale (fitted or held) is available."""
        return self.scale is not None


class MetricDepthTracker:
    """
    Decide per frame which affine map turns this frame's relative map into metres.

    A good fit of this frame is used (``'fitted'``; with ``smoothing`` > 0 blended with the
    re-fit of the previous metric depth, see the module docs). Without one, the relative map is
    re-fitted to the last good metric depth for up to ``max_hold_s`` seconds (``'held'``,
    status ``'holding last good depth (age X s; ...)'``); when that re-fit fails or the depth
    is too old the caller falls back to ``range`` mode (``'fallback to range (...)'``). Time
    going backwards (a bag loop, a restarted driver) resets the state and says so.
    ``min_points``/``min_inlier_ratio`` apply to the re-fits.
    """

    def __init__(self, max_hold_s=1.0, smoothing=0.0, min_points=50, min_inlier_ratio=0.5):
        self.max_hold_s, self.smoothing = _hold_and_smoothing(max_hold_s, smoothing)
        self.min_points = int(min_points)
        self.min_inlier_ratio = float(min_inlier_ratio)
        self._last_stamp = None
        self._last_good_stamp = None
        self._depth = None
        self._previous = None
        self.last_decision = None

    def reset(self):
        """Forget all history."""
        self._last_stamp = None
        self._last_good_stamp = None
        self._depth = None
        self._previous = None

    def last_good_age(self, stamp_s):
        """Return seconds since the last good fit at ``stamp_s``, or None if there was none."""
        if self._last_good_stamp is None:
            return None
        return float(stamp_s) - self._last_good_stamp

    def update(self, stamp_s, relative, space, fit=None):
        """
        Take this frame's relative map (H, W) and its fit (None: no reference); return a decision.

        ``space`` is the fit space of ``relative`` ('depth' or 'disparity').
        """
        stamp = float(stamp_s)
        if not math.isfinite(stamp):
            raise ValueError(f'`stamp_s` must be finite, got {stamp_s}.')
        relative = np.asarray(relative, dtype=np.float32)
        note = ''
        was_reset = False
        if self._last_stamp is not None and stamp < self._last_stamp:
            note = (f'time went backwards by {self._last_stamp - stamp:.3f} s '
                    '(bag loop or restart): scale state reset; ')
            self.reset()
            was_reset = True
        self._last_stamp = stamp

        if fit is not None and fit.ok:
            scale, shift, status = fit.scale, fit.shift, 'fitted'
            if self.smoothing > 0 and self._previous is not None:
                refit = self._refit(relative, space, self._previous)
                if refit is not None and refit.ok:
                    keep = self.smoothing
                    scale = (1.0 - keep) * fit.scale + keep * refit.scale
                    shift = (1.0 - keep) * fit.shift + keep * refit.shift
                    status = 'fitted (smoothed with the previous depth)'
            self._depth = affine_to_metric(relative, space, scale, shift)
            self._previous = self._depth
            self._last_good_stamp = stamp
            decision = ScaleDecision(SOURCE_FITTED, note + status, scale, shift, 0.0, fit,
                                     was_reset)
        else:
            why = 'no reference' if fit is None else f'fit rejected: {fit.reason}'
            decision = self._hold(stamp, relative, space, fit, note, why, was_reset)
        self.last_decision = decision
        return decision

    def _hold(self, stamp, relative, space, fit, note, why, was_reset):
        age = self.last_good_age(stamp)
        if age is None or age > self.max_hold_s:
            stale = '' if age is None else f', last good fit {age:.2f} s old'
            return ScaleDecision(SOURCE_FALLBACK, f'{note}fallback to range ({why}{stale})',
                                 None, None, age, fit, was_reset)
        refit = self._refit(relative, space, self._depth)
        if refit is None or not refit.ok:
            because = ('its size changed' if refit is None
                       else f'the re-fit was rejected: {refit.reason}')
            return ScaleDecision(
                SOURCE_FALLBACK, f'{note}fallback to range ({why}; the last good depth '
                f'({age:.2f} s old) does not match this frame: {because})', None, None, age,
                fit, was_reset)
        self._previous = affine_to_metric(relative, space, refit.scale, refit.shift)
        return ScaleDecision(
            SOURCE_HELD, f'{note}holding last good depth (age {age:.2f} s; re-fitted to this '
            f'frame, inlier ratio {refit.inlier_ratio:.2f}; {why})', refit.scale, refit.shift,
            age, fit, was_reset)

    def _refit(self, relative, space, depth):
        if depth is None or depth.shape != relative.shape:
            return None
        return fit_scale_shift(relative, depth, None, space, min_points=self.min_points,
                               min_inlier_ratio=self.min_inlier_ratio)


def _hold_and_smoothing(max_hold_s, smoothing):
    """Return ``(max_hold_s, smoothing)`` as floats; ValueError naming a value out of range."""
    if not (math.isfinite(max_hold_s) and max_hold_s >= 0):
        raise ValueError(f'`max_hold_s` must be finite and >= 0, got {max_hold_s}.')
    if not 0.0 <= float(smoothing) < 1.0:
        raise ValueError(f'`smoothing` must lie in [0, 1), got {smoothing}.')
    return float(max_hold_s), float(smoothing)
