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
Temporal handling of per-frame scale fits: pairing, smoothing, holding and falling back.

GenPercept normalises every frame by its own depth statistics, so the true scale and shift do
change from frame to frame; smoothing therefore defaults to light and is bounded by a maximum
step rather than a long time constant.
"""

import bisect
from dataclasses import dataclass
import math

from genpercept_ros.geometry.scale import ScaleShiftFit

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


class ScaleSmoother:
    """
    Exponential smoothing of (scale, shift): scale in log space, shift linearly.

    ``alpha`` is the weight of the newest fit (1 disables smoothing). ``max_log_step`` bounds
    how far the smoothed log-scale may move per update (None: unbounded); the shift moves by
    the same fraction of the way as the scale so the affine model stays consistent.
    """

    def __init__(self, alpha=0.6, max_log_step=None):
        if not 0.0 < float(alpha) <= 1.0:
            raise ValueError(f'`alpha` must lie in (0, 1], got {alpha}.')
        if max_log_step is not None and not float(max_log_step) > 0:
            raise ValueError(f'`max_log_step` must be positive or None, got {max_log_step}.')
        self.alpha = float(alpha)
        self.max_log_step = None if max_log_step is None else float(max_log_step)
        self.scale = None
        self.shift = None

    def reset(self):
        """Forget the smoothed state."""
        self.scale = None
        self.shift = None

    def update(self, scale, shift):
        """Blend a new positive ``scale`` and ``shift`` in; return the smoothed pair."""
        if not (math.isfinite(scale) and scale > 0 and math.isfinite(shift)):
            raise ValueError(f'cannot smooth scale={scale}, shift={shift}: '
                             'scale must be positive and both finite.')
        if self.scale is None:
            self.scale, self.shift = float(scale), float(shift)
            return self.scale, self.shift
        weight = self.alpha
        log_step = weight * (math.log(scale) - math.log(self.scale))
        if self.max_log_step is not None and abs(log_step) > self.max_log_step:
            weight *= self.max_log_step / abs(log_step)
            log_step = math.copysign(self.max_log_step, log_step)
        self.scale = self.scale * math.exp(log_step)
        self.shift = self.shift + weight * (shift - self.shift)
        return self.scale, self.shift


@dataclass(frozen=True)
class ScaleDecision:
    """
    What :class:`ScaleTracker` decided for one frame.

    ``source`` is ``'fitted'``, ``'held'`` or ``'fallback'``; ``scale``/``shift`` are None on
    fallback (the caller then uses ``range`` mode). ``age_s`` is the age of the fit in use;
    ``fit`` the raw fit of this frame (None when there was none) for diagnostics.
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


class ScaleTracker:
    """
    Decide per frame which scale to use from a (possibly missing or failed) fit.

    A good fit is smoothed and used (``'fitted'``). Without one, the last good fit is held for
    up to ``max_hold_s`` seconds (``'holding last good fit (age X s)'``), after which the caller
    should fall back to ``range`` mode (``'fallback to range'``). Timestamps going backwards
    (a bag loop, a restarted driver) reset the state and say so in the status.
    """

    def __init__(self, max_hold_s=1.0, smoother=None):
        if not (math.isfinite(max_hold_s) and max_hold_s >= 0):
            raise ValueError(f'`max_hold_s` must be finite and >= 0, got {max_hold_s}.')
        self.max_hold_s = float(max_hold_s)
        self.smoother = smoother if smoother is not None else ScaleSmoother()
        self._last_stamp = None
        self._last_good_stamp = None
        self.last_good_fit = None
        self.last_decision = None

    def reset(self):
        """Forget all history."""
        self.smoother.reset()
        self._last_stamp = None
        self._last_good_stamp = None
        self.last_good_fit = None

    def last_good_age(self, stamp_s):
        """Return seconds since the last good fit at ``stamp_s``, or None if there was none."""
        if self._last_good_stamp is None:
            return None
        return float(stamp_s) - self._last_good_stamp

    def update(self, stamp_s, fit=None):
        """Take this frame's fit (None when no reference was paired) and return a decision."""
        stamp = float(stamp_s)
        if not math.isfinite(stamp):
            raise ValueError(f'`stamp_s` must be finite, got {stamp_s}.')
        note = ''
        was_reset = False
        if self._last_stamp is not None and stamp < self._last_stamp:
            note = (f'time went backwards by {self._last_stamp - stamp:.3f} s '
                    '(bag loop or restart): scale state reset; ')
            self.reset()
            was_reset = True
        self._last_stamp = stamp

        if fit is not None and fit.ok:
            scale, shift = self.smoother.update(fit.scale, fit.shift)
            self.last_good_fit = fit
            self._last_good_stamp = stamp
            decision = ScaleDecision(SOURCE_FITTED, note + 'fitted', scale, shift, 0.0, fit,
                                     was_reset)
        else:
            why = 'no reference' if fit is None else f'fit rejected: {fit.reason}'
            age = self.last_good_age(stamp)
            if age is not None and age <= self.max_hold_s:
                decision = ScaleDecision(
                    SOURCE_HELD, f'{note}holding last good fit (age {age:.2f} s; {why})',
                    self.smoother.scale, self.smoother.shift, age, fit, was_reset)
            else:
                stale = '' if age is None else f', last good fit {age:.2f} s old'
                decision = ScaleDecision(SOURCE_FALLBACK,
                                         f'{note}fallback to range ({why}{stale})',
                                         None, None, age, fit, was_reset)
        self.last_decision = decision
        return decision
