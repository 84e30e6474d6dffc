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
Acceleration paths of a :class:`GenPerceptPredictor`, each checked against eager before it serves.

Paths (``ACCELERATIONS``): ``eager``; ``compile`` (``torch.compile`` of the UNets, heads and VAE
halves, static shapes); ``cuda_graphs`` (each UNet and VAE half replayed from a CUDA graph
captured per input signature, :class:`CudaGraphModule`); ``compile+cuda_graphs`` (graphs of the
compiled modules); ``auto`` (on CUDA: every path that can run is tried and the fastest one that
passes its check serves; on a CPU: eager, the fast paths target GPU launch overhead).

:class:`Accelerator` installs a path on a predictor and checks it on the warm-up frame of every
new input signature (camera size, processing size, batch, tasks): max abs difference of the
[0, 1] outputs against eager within ``CHECK_TOLERANCE`` (2e-2 in bf16/fp16, 1e-4 in fp32). Any
exception or mismatch -- at the check or later while serving -- is one warning with the reason
and eager service from then on, so a path never run on this GPU can neither take the caller down
nor change its outputs. Out-of-memory errors are not a fast-path failure: they propagate.
:func:`enable_tf32` is the TF32 switch for fp32 runs on CUDA. Every CUDA object (streams,
events, graphs, memory pools) is created under the predictor's device, so ``cuda:N`` works.
"""

import contextlib
from dataclasses import dataclass
from dataclasses import field
import logging
import threading
import time

import numpy as np
import torch

ACCELERATIONS = ('auto', 'eager', 'compile', 'cuda_graphs', 'compile+cuda_graphs')
# What ``auto`` tries on CUDA, expected fastest first (performance-anchors.md section 4); the
# fastest that passes its check wins, eager included.
AUTO_CANDIDATES = ('compile+cuda_graphs', 'cuda_graphs', 'compile')
# Device types on which ``auto`` tries the fast paths (elsewhere it serves eager unchecked).
AUTO_DEVICE_TYPES = ('cuda',)
CHECK_TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 2e-2, torch.float16: 2e-2}
_LOG = logging.getLogger(__name__)


def enable_tf32(enabled=True):
    """Allow TF32 tensor cores for fp32 matmuls and convolutions on CUDA (no-op on CPU)."""
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)


def cuda_graphs_unavailable_reason(device):
    """Return why CUDA graphs cannot run on ``device``, or None when they can."""
    device = torch.device(device)
    if device.type != 'cuda':
        return f'CUDA graphs need a CUDA device; this predictor runs on {device}'
    if not torch.cuda.is_available():
        return 'CUDA graphs need CUDA, which is not available in this torch build or machine'
    return None


class _SampleOutput:
    """Stand-in for diffusers' UNet2DConditionOutput: the caller only reads ``.sample``."""

    __slots__ = ('sample',)

    def __init__(self, sample):
        self.sample = sample


class _Captured:
    __slots__ = ('graph', 'inputs', 'output')

    def __init__(self, graph, inputs, output):
        self.graph, self.inputs, self.output = graph, inputs, output


def cuda_device_scope(device):
    """Return ``torch.cuda.device(device)`` for a CUDA device, else a null context."""
    device = torch.device(device)
    if device.type != 'cuda':
        return contextlib.nullcontext()
    return torch.cuda.device(device)


def record_event(device):
    """Create a CUDA event under ``device`` and record it on that device's current stream."""
    with torch.cuda.device(device):
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(device))
    return event


class CudaGraphModule(torch.nn.Module):
    """
    Replay ``module`` from a CUDA graph captured once per input signature (shapes, dtypes).

    Tensor arguments are copied into static buffers before each replay and the output is
    cloned after it, so results never alias graph memory (graphs may then share one memory
    pool: see :func:`apply_cuda_graphs`). ``sample_output=True`` is for modules returning an
    object with ``.sample`` (diffusers' UNet): the graph holds that tensor and the wrapper
    returns an object with the same attribute. Modules with forward hooks that collect
    outputs (the DPT feature taps) cannot be graphed: the hooks would only run at capture.
    ``device`` (default: the device of the first tensor argument) is where the side stream,
    the capture stream, the graph and its pool are created, whatever the current device is.
    """

    def __init__(self, module, sample_output=False, warmup_calls=2, pool=None, device=None):
        super().__init__()
        self.module = module
        self.sample_output = bool(sample_output)
        self.warmup_calls = max(1, int(warmup_calls))
        self.pool = pool
        self.device = None if device is None else torch.device(device)
        self._graphs = {}
        self._lock = threading.Lock()

    @staticmethod
    def _signature(args, kwargs):
        items = list(enumerate(args)) + sorted(kwargs.items())
        return tuple(
            (name, tuple(value.shape), value.dtype, value.device)
            if isinstance(value, torch.Tensor) else (name, repr(value))
            for name, value in items)

    def _call(self, args, kwargs):
        result = self.module(*args, **kwargs)
        return result.sample if self.sample_output else result

    def _device_of(self, args, kwargs):
        if self.device is not None:
            return self.device
        for value in list(args) + list(kwargs.values()):
            if isinstance(value, torch.Tensor):
                return value.device
        raise ValueError('CudaGraphModule needs a tensor argument or an explicit device')

    def _capture(self, args, kwargs, device):
        static_args = [value.clone() if isinstance(value, torch.Tensor) else value
                       for value in args]
        static_kwargs = {key: value.clone() if isinstance(value, torch.Tensor) else value
                         for key, value in kwargs.items()}
        # Warm-up on a side stream (cuDNN/cuBLAS workspaces, lazy initialisation) as the
        # torch.cuda.graphs documentation requires before capture. Every stream is created
        # for ``device`` explicitly: torch.cuda.graph's default capture stream would belong to
        # whatever device is current when it is first used.
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup_calls):
                self._call(static_args, static_kwargs)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        capture_stream = torch.cuda.Stream(device=device)
        with torch.cuda.graph(graph, pool=self.pool, stream=capture_stream):
            output = self._call(static_args, static_kwargs)
        inputs = [value for value in static_args if isinstance(value, torch.Tensor)]
        inputs += [static_kwargs[key] for key in sorted(static_kwargs)
                   if isinstance(static_kwargs[key], torch.Tensor)]
        return _Captured(graph, inputs, output)

    def forward(self, *args, **kwargs):
        """Copy the inputs into the captured buffers, replay, return a copy of the output."""
        key = self._signature(args, kwargs)
        device = self._device_of(args, kwargs)
        with self._lock, torch.cuda.device(device):
            captured = self._graphs.get(key)
            if captured is None:
                captured = self._graphs[key] = self._capture(args, kwargs, device)
            tensors = [value for value in args if isinstance(value, torch.Tensor)]
            tensors += [kwargs[name] for name in sorted(kwargs)
                        if isinstance(kwargs[name], torch.Tensor)]
            for static, value in zip(captured.inputs, tensors):
                static.copy_(value)
            captured.graph.replay()
            output = captured.output.clone()
        return _SampleOutput(output) if self.sample_output else output

    @property
    def captured_signatures(self):
        """Return the number of graphs captured so far (one per input signature)."""
        return len(self._graphs)


def graph_pool(device):
    """Return a new CUDA graph memory pool handle created under ``device``."""
    with torch.cuda.device(device):
        return torch.cuda.graph_pool_handle()


def apply_cuda_graphs(predictor, warmup_calls=2):
    """
    Replace the predictor's UNets and VAE encoder/decoder by :class:`CudaGraphModule` wrappers.

    Graphs are captured on the first ``predict`` per input shape (static shapes: one camera
    size and batch size is one capture; a new size captures again). All graphs of one
    predictor share one memory pool, which is safe because calls never overlap and outputs
    are copied out right after each replay. Raises ValueError on a CPU predictor and for
    DPT-head variants (their feature hooks cannot run inside a graph). Unchecked: the
    ``acceleration`` option of the predictor (:class:`Accelerator`) is the checked way.
    """
    reason = cuda_graphs_unavailable_reason(predictor.device)
    if reason is not None:
        raise ValueError(reason)
    unets, heads, vaes = _modules_of(predictor)
    if heads:
        raise ValueError('CUDA graphs do not support DPT-head variants (their UNet feature '
                         f'taps are forward hooks): {sorted(heads)}')
    device = predictor.device
    pool = graph_pool(device)
    for task in list(unets):
        if not isinstance(unets[task], CudaGraphModule):
            unets[task] = CudaGraphModule(unets[task], sample_output=True,
                                          warmup_calls=warmup_calls, pool=pool, device=device)
    for vae in vaes.values():
        if not isinstance(vae.encoder, CudaGraphModule):
            vae.encoder = CudaGraphModule(vae.encoder, warmup_calls=warmup_calls, pool=pool,
                                          device=device)
        if not isinstance(vae.decoder, CudaGraphModule):
            vae.decoder = CudaGraphModule(vae.decoder, warmup_calls=warmup_calls, pool=pool,
                                          device=device)
    return predictor


def _modules_of(predictor):
    try:
        return predictor._unets, predictor._heads, predictor._vaes
    except AttributeError as error:
        raise TypeError(f'expected a GenPerceptPredictor, got {type(predictor).__name__}'
                        ) from error


def validate_acceleration(name):
    """Return ``name`` if it is one of ``ACCELERATIONS``; raise ValueError otherwise."""
    if name not in ACCELERATIONS:
        raise ValueError(f'acceleration must be one of {", ".join(ACCELERATIONS)}; '
                         f'got {name!r}')
    return name


def path_unavailable_reason(path, predictor):
    """Return why ``path`` cannot run for ``predictor`` here, or None when it can."""
    if path == 'eager':
        return None
    if 'compile' in path and not hasattr(torch, 'compile'):
        return 'torch.compile is not available in this torch build'
    if 'cuda_graphs' in path:
        reason = cuda_graphs_unavailable_reason(predictor.device)
        if reason is not None:
            return reason
        heads = sorted(_modules_of(predictor)[1])
        if heads:
            return ('CUDA graphs do not support DPT-head models (their UNet feature taps are '
                    f'forward hooks): {heads}')
    return None


def check_frames(height, width, batch):
    """
    Return ``batch`` deterministic HxWx3 uint8 warm-up frames with texture at every scale.

    Smooth ramps plus a checkerboard and seeded noise: a constant frame would let a path that
    mixes up pixels or batch entries pass its check.
    """
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    cols = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    checker = ((np.arange(height)[:, None] // 8 + np.arange(width)[None, :] // 8) % 2)
    noise = np.random.default_rng(15).random((height, width, 3), dtype=np.float32)
    base = np.stack([rows + 0.0 * cols, cols + 0.0 * rows, 0.5 * (rows + cols)], axis=-1)
    image = 0.6 * base + 0.25 * checker[..., None] + 0.15 * noise
    frame = np.clip(image * 255.0, 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(np.roll(frame, 11 * index, axis=1)) for index in range(batch)]


def max_output_difference(first, second):
    """Return max |a - b| over the [0, 1] outputs (``depth_raw``, ``normal_raw``) of two runs."""
    worst = 0.0
    for name in ('depth_raw', 'normal_raw'):
        values_a, values_b = getattr(first, name), getattr(second, name)
        if values_a is None or values_b is None:
            continue
        for a, b in zip(values_a, values_b):
            difference = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
            if difference.size:
                if not np.all(np.isfinite(difference)):
                    return float('inf')
                worst = max(worst, float(difference.max()))
    return worst


@dataclass
class AccelerationStatus:
    """
    Which path serves and why, for diagnostics.

    ``checks``: one dict per check (``path``, ``signature``, ``ok``, ``max_abs_diff``,
    ``tolerance``, ``seconds`` of one warm call, ``error``); ``fallback``: the reason eager
    serves instead of a requested/selected fast path, or None.
    """

    requested: str
    active: str = 'eager'
    reason: str = ''
    fallback: str = None
    checks: list = field(default_factory=list)

    def summary(self):
        """Return one line: the path that runs and why."""
        return f'{self.active} (requested {self.requested}): {self.reason}'


class Accelerator:
    """
    Install, check and fall back between the acceleration paths of one predictor.

    ``warn(message)`` is called once per fallback (default: the module logger). The predictor
    calls :meth:`prepare` before running a new input signature and :meth:`fail` when a fast
    path raises while serving.
    """

    def __init__(self, predictor, requested='auto', warn=None, compile_mode=None):
        self.predictor = predictor
        self.requested = validate_acceleration(requested)
        self.compile_mode = compile_mode
        self._warn = warn or _LOG.warning
        self._eager = self._slots()
        self._compiled = {}
        self._installed = {}
        self._prepared = set()
        self._failed = False
        self.status = AccelerationStatus(requested=self.requested)
        if self.requested == 'eager':
            self.status.reason = 'requested'
        elif self.requested == 'auto' and predictor.device.type not in AUTO_DEVICE_TYPES:
            self.status.reason = (f'auto on {predictor.device}: the fast paths target GPU '
                                  'kernel-launch overhead')
        elif self.requested != 'auto' and path_unavailable_reason(self.requested, predictor):
            self._failed = True
            self._fall_back(path_unavailable_reason(self.requested, predictor), warn=True)
        else:
            self.status.reason = 'not checked yet (checked on the first frame of each shape)'

    # ------------------------------------------------------------------ module slots
    def _slots(self):
        unets, heads, vaes = _modules_of(self.predictor)
        slots = {('unet', task): module for task, module in unets.items()}
        slots.update({('head', task): module for task, module in heads.items()})
        seen = set()
        for key, vae in vaes.items():
            if id(vae) in seen:      # one module shared by several repos' keys
                continue
            seen.add(id(vae))
            slots[('encoder', key)] = vae.encoder
            slots[('decoder', key)] = vae.decoder
        return slots

    def _set(self, slot, module):
        unets, heads, vaes = _modules_of(self.predictor)
        kind, key = slot
        if kind == 'unet':
            unets[key] = module
        elif kind == 'head':
            heads[key] = module
        else:
            setattr(vaes[key], kind, module)

    def _compiled_module(self, slot):
        if slot not in self._compiled:
            self._compiled[slot] = torch.compile(self._eager[slot], mode=self.compile_mode,
                                                 dynamic=False)
        return self._compiled[slot]

    def _build(self, path):
        if path == 'eager':
            return dict(self._eager)
        device = self.predictor.device
        modules = {}
        pool = graph_pool(device) if 'cuda_graphs' in path else None
        for slot, module in self._eager.items():
            if 'compile' in path:
                module = self._compiled_module(slot)
            if 'cuda_graphs' in path:
                module = CudaGraphModule(module, sample_output=slot[0] == 'unet', pool=pool,
                                         device=device)
            modules[slot] = module
        return modules

    def install(self, path):
        """Put the modules of ``path`` in the predictor (built once per path and kept)."""
        if path not in self._installed:
            self._installed[path] = self._build(path)
        for slot, module in self._installed[path].items():
            self._set(slot, module)

    def _drop(self, keep):
        for path in list(self._installed):
            if path not in keep:
                del self._installed[path]

    # ------------------------------------------------------------------ checks
    @property
    def active(self):
        """Return the path serving now."""
        return self.status.active

    def needs_prepare(self, signature):
        """Return whether ``signature`` has not been checked yet for the active choice."""
        if self._failed or self.requested == 'eager':
            return False
        if self.requested == 'auto' and self.predictor.device.type not in AUTO_DEVICE_TYPES:
            return False
        return signature not in self._prepared

    def prepare(self, signature, run):
        """
        Check the path(s) for a new input ``signature`` and install the one that serves.

        ``run()`` runs the predictor once on the warm-up frames of that signature with the
        installed modules and returns its PredictionOutput. The first signature chooses the
        path (for ``auto`` the fastest passing one); later signatures re-check the active path.
        """
        self._prepared.add(signature)
        first = len(self._prepared) == 1
        if not first and self.active == 'eager':
            return self.status
        tolerance = CHECK_TOLERANCE.get(self.predictor.dtype, 2e-2)
        self.install('eager')
        reference, eager_seconds = self._timed(run)
        if first and self.requested == 'auto':
            candidates = list(AUTO_CANDIDATES)
        else:
            candidates = [self.requested if first else self.active]
        passed, reasons = {'eager': eager_seconds}, []
        for path in candidates:
            reason = path_unavailable_reason(path, self.predictor)
            if reason is None:
                reason = self._check(path, signature, run, reference, tolerance, passed)
            if reason is not None:
                reasons.append(f'{path}: {reason}')
        if first and self.requested == 'auto':
            best = min(passed, key=passed.get)
            timings = ', '.join(f'{path} {seconds * 1e3:.1f} ms'
                                for path, seconds in sorted(passed.items(), key=lambda i: i[1]))
            self.status.active = best
            self.status.reason = (f'auto: fastest path that passed its check on the warm-up '
                                  f'frame ({timings})'
                                  + (f'; not used: {"; ".join(reasons)}' if reasons else ''))
            if len(passed) == 1 and reasons:
                self._fall_back('; '.join(reasons), warn=True)
        elif reasons:
            self._fall_back(reasons[0], warn=True)
        else:
            path = candidates[0]
            self.status.active = path
            self.status.reason = ('requested; ' if self.requested == path else 'auto; ') + (
                f'checked on the warm-up frame of {len(self._prepared)} shape(s), max abs '
                f'difference from eager <= {tolerance:g}')
        self.install(self.status.active)
        self._drop(keep={'eager', self.status.active})
        return self.status

    def _timed(self, run):
        output = run()
        self._synchronize()
        started = time.perf_counter()
        output = run()
        self._synchronize()
        return output, time.perf_counter() - started

    def _synchronize(self):
        if self.predictor.device.type == 'cuda':
            torch.cuda.synchronize(self.predictor.device)

    def _check(self, path, signature, run, reference, tolerance, passed):
        entry = {'path': path, 'signature': signature, 'tolerance': tolerance}
        self.status.checks.append(entry)
        try:
            self.install(path)
            output, seconds = self._timed(run)   # the first call compiles / captures
        except torch.OutOfMemoryError:
            self.install('eager')
            raise
        except Exception as error:  # noqa: B902 - any failure of a fast path means eager
            self.install('eager')
            self._installed.pop(path, None)
            entry.update(ok=False, error=f'{type(error).__name__}: {error}')
            return f'failed on the warm-up frame: {entry["error"]}'
        finally:
            self.install('eager')
        difference = max_output_difference(output, reference)
        entry.update(max_abs_diff=difference, seconds=seconds,
                     ok=bool(difference <= tolerance))
        if not entry['ok']:
            self._installed.pop(path, None)
            return (f'differs from eager by {difference:.3g} (> {tolerance:g}) on the warm-up '
                    'frame')
        passed[path] = seconds
        return None

    def _fall_back(self, reason, warn):
        self.status.fallback = reason
        self.status.active = 'eager'
        self.status.reason = f'serving eager: {reason}'
        self.install('eager')
        self._drop(keep={'eager'})
        if warn:
            self._warn(f'acceleration {self.requested!r}: {reason}; serving eager')

    def fail(self, error):
        """Record that the active fast path raised while serving; switch to eager for good."""
        self._failed = True
        self._fall_back(f'{self.active} raised while serving: {type(error).__name__}: '
                        f'{error}', warn=True)
