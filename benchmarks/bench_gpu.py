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
Every GPU question of the speed issue in ONE command, under a time budget (default 8 minutes).

``python3 benchmarks/bench_gpu.py --json $OUT/gpu.json`` on a CUDA machine builds full-size
random weights (the real SD 2.1 architecture) directly on the GPU (no checkpoint is written or
read), then runs the sections below in order of importance. Each section runs under its own
time guard (``SIGALRM``; a section that overruns is recorded as ``timeout`` with what it had
measured) and the JSON is rewritten after every section, so a run killed from the outside still
leaves everything finished before it.

Sections:

- ``ceilings``: bf16 matmul TFLOP/s (8192^3 on random data) and device-to-device copy GB/s
  (bytes read + written), the two rates every "share of the floor" below is divided by.
- ``end_to_end``: ``predict()`` on 640x480 frames resized to 768x576 (the real resize is timed),
  depth and depth + normal, batch 1 and 4, bf16, for each acceleration path that runs here
  without compiling (eager, channels_last, CUDA graphs); CUDA event latency per frame.
- ``peak_memory``: depth alone, bf16, batch 1: the weights it needs plus the activation peak of
  one call (``torch.cuda.max_memory_allocated``), eager and CUDA graphs.
- ``bf16_vs_fp32``: max and mean abs difference of the [0, 1] outputs of bf16 against strict fp32
  (TF32 off) on the same weights and frames (random weights amplify rounding: no verdict on the
  real checkpoints), and whether bf16 depth is still quantised (distinct values per image).
- ``sdpa_kernels``: which ``scaled_dot_product_attention`` implementation (aten op) each
  attention shape of the VAE (one head of 512) and the UNet gets, read with the profiler.
- ``reference``: the reference-style pipeline (fp32, PyTorch default TF32 flags, one image and
  one task per call), depth and depth + normal at batch 1, and our speed-up over it.
- ``modules``: encoder, UNet and decoder alone at 768x576, bf16, batch 1: eager,
  channels_last and CUDA graphs; FLOPs counted with ``torch.utils.flop_counter`` and the share of
  the FLOP floor (FLOPs / measured matmul rate / time).
- ``fast_decoder``: the optional TAESD decoder (``decoder='taesd'``, random full-size
  ``AutoencoderTiny`` built on the device) against the SD VAE decoder alone on the 768x576
  latent, bf16, batch 1, and ``predict()`` depth and depth + normal with each decoder (eager,
  batch 1). Speed only: the accuracy cost needs the real weights (recorded as not measured).
- ``compile``: the same modules under ``torch.compile`` and compile + CUDA graphs (compile time
  reported), then ``predict()`` depth end to end with compile + CUDA graphs.

``--smoke`` runs every section on the CPU with tiny configurations in seconds (CUDA graphs and,
on a CPU, compile are listed as skipped with the reason); ``test/test_speed_bench.py`` runs it.
"""

import argparse
import contextlib
import copy
import datetime
import gc
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
import traceback

try:
    import genpercept_ros  # noqa: F401
except ImportError:  # run as a script from a checkout without installing the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from genpercept_ros.geometry.synthetic import box_room
from genpercept_ros.model import configs
from genpercept_ros.model.acceleration import cuda_graphs_unavailable_reason
from genpercept_ros.model.acceleration import CudaGraphModule
from genpercept_ros.model.precision import keep_decoder_output_fp32
from genpercept_ros.model.predictor import GenPerceptPredictor
from genpercept_ros.model.predictor import TAESD_KEY
from genpercept_ros.model.registry import get_model_spec
from genpercept_ros.model.registry import LATENT_SCALE
import numpy as np
try:
    from reference_style_pipeline import precision_flags
    from reference_style_pipeline import ReferenceStylePipeline
except ImportError:  # imported from outside benchmarks/
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from reference_style_pipeline import precision_flags
    from reference_style_pipeline import ReferenceStylePipeline
import torch

# name -> share of the budget it may use at most (the guard is also capped by what is left).
SECTIONS = (
    ('ceilings', 0.06),
    ('end_to_end', 0.25),
    ('peak_memory', 0.08),
    ('bf16_vs_fp32', 0.10),
    ('sdpa_kernels', 0.05),
    ('reference', 0.12),
    ('modules', 0.15),
    ('fast_decoder', 0.05),
    ('compile', 0.45),
)
TASK_SETS = {'depth': ('depth',), 'depth+normal': ('depth', 'normal')}
DEPTH_MODEL, NORMAL_MODEL = 'depth-v2', 'normal-v2'


class SectionTimeout(Exception):
    """Raised inside a section when its time guard fires."""


@contextlib.contextmanager
def time_guard(seconds):
    """Raise SectionTimeout in the main thread after ``seconds`` (SIGALRM; POSIX only)."""
    if seconds <= 0:
        raise SectionTimeout('no time left in the budget')

    def fire(_signum, _frame):
        raise SectionTimeout(f'section guard of {seconds:.0f} s expired')

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Settings:
    """Sizes and counts of a run: full size on a GPU, tiny with ``--smoke``."""

    def __init__(self, smoke, device):
        self.smoke = smoke
        self.device = device
        self.full_size = not smoke
        self.camera = (64, 48) if smoke else (640, 480)
        self.resolution = 64 if smoke else 768
        self.batches = (1, 2) if smoke else (1, 4)
        self.warmup = 0 if smoke else 3
        self.iters = 1 if smoke else 20
        self.reference_iters = 1 if smoke else 3
        self.matmul_size = 256 if smoke else 8192
        self.copy_bytes = (16 if smoke else 2048) * 2**20

    @property
    def cuda(self):
        """Return whether this run is on a CUDA device."""
        return self.device.type == 'cuda'


def synchronize(device):
    """Wait for the device (no-op on the CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_call(function, device, warmup, iters):
    """Return (median, min) milliseconds of ``function()`` after ``warmup`` calls."""
    for _ in range(warmup):
        function()
    synchronize(device)
    samples = []
    for _ in range(iters):
        if device.type == 'cuda':
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record(torch.cuda.current_stream(device))
            function()
            end.record(torch.cuda.current_stream(device))
            end.synchronize()
            samples.append(start.elapsed_time(end))
        else:
            started = time.perf_counter()
            function()
            samples.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(samples), min(samples)


def make_frames(width, height, batch):
    """Return ``batch`` different synthetic RGB frames (the box room, shifted)."""
    base = box_room(width, height).rgb
    return [np.ascontiguousarray(np.roll(base, shift=7 * index, axis=1))
            for index in range(batch)]


# ---------------------------------------------------------------------------- weights
class Weights:
    """Random fp32 modules built directly on the device, and bf16 copies of them."""

    def __init__(self, settings, seed=0):
        from diffusers import AutoencoderKL
        from diffusers import UNet2DConditionModel
        device, full = settings.device, settings.full_size
        started = time.perf_counter()
        with torch.device(device):
            torch.manual_seed(seed)
            self.vae = AutoencoderKL.from_config(configs.vae_config(full))
            self.unets = {'depth': UNet2DConditionModel.from_config(configs.unet_config(full)),
                          'normal': UNet2DConditionModel.from_config(configs.unet_config(full))}
        width = configs.unet_config(full)['cross_attention_dim']
        # The empty-prompt embedding of SD 2.1 is 2 tokens wide; random values of unit scale.
        self.conditioning = torch.randn(1, 2, width, device=device, generator=None)
        for module in [self.vae, *self.unets.values()]:
            module.eval().requires_grad_(False)
        self.specs = {'depth': get_model_spec(DEPTH_MODEL, task='depth'),
                      'normal': get_model_spec(NORMAL_MODEL, task='normal')}
        self.vae_key = (self.specs['depth'].vae_repo, self.specs['depth'].vae_subfolder)
        self._bf16 = None
        self._taesd = {}
        synchronize(device)
        self.build_s = time.perf_counter() - started
        self.settings = settings

    def modules(self, dtype):
        """Return (vae, unets) in ``dtype`` (bf16 copies are made once and kept)."""
        if dtype == torch.float32:
            return self.vae, self.unets
        if self._bf16 is None:
            self._bf16 = (copy.deepcopy(self.vae).to(dtype),
                          {task: copy.deepcopy(unet).to(dtype)
                           for task, unet in self.unets.items()})
        return self._bf16

    def taesd(self, dtype):
        """Return a random TAESD (AutoencoderTiny, full-size or tiny config) in ``dtype``."""
        if dtype not in self._taesd:
            from diffusers import AutoencoderTiny
            with torch.device(self.settings.device):
                torch.manual_seed(1)
                taesd = AutoencoderTiny.from_config(configs.taesd_config(self.settings.full_size))
            taesd = keep_decoder_output_fp32(taesd.eval().requires_grad_(False))
            self._taesd[dtype] = taesd.to(dtype)
        return self._taesd[dtype]

    def predictor(self, tasks, dtype, channels_last=False, acceleration='eager',
                  decoder='vae'):
        """
        Return a GenPerceptPredictor over the modules for ``tasks``.

        The VAE is a shallow copy (own encoder/decoder slots, shared parameters), so that the
        predictor's acceleration wrappers never reach the shared modules. ``acceleration`` is
        the predictor's checked option: the first call of each shape checks it against eager.
        """
        vae, unets = self.modules(dtype)
        vae = shallow_copy(vae)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            vae = copy.deepcopy(vae).to(memory_format=memory_format)
            unets = {task: copy.deepcopy(unets[task]).to(memory_format=memory_format)
                     for task in tasks}
        vaes = {self.vae_key: vae}
        if decoder == 'taesd':
            vaes[TAESD_KEY] = shallow_copy(self.taesd(dtype))
        return GenPerceptPredictor(
            {task: self.specs[task] for task in tasks},
            {task: unets[task] for task in tasks}, {}, vaes,
            {(self.specs[task].text_repo, self.specs[task].conditioning):
             self.conditioning.to(dtype) for task in tasks},
            self.settings.device, dtype, channels_last=channels_last, max_batch_size=8,
            acceleration=acceleration, warn=lambda message: print(f'warning: {message}'),
            compile_mode=getattr(self, 'compile_mode', None), decoder=decoder)

    def parameter_bytes(self, tasks, dtype):
        """Return the bytes of the weights ``tasks`` need in ``dtype``."""
        vae, unets = self.modules(dtype)
        modules = [vae] + [unets[task] for task in tasks]
        return sum(p.numel() * p.element_size() for m in modules for p in m.parameters())


def shallow_copy(module):
    """Return a copy of ``module`` with its own child/parameter tables, sharing the tensors."""
    clone = copy.copy(module)
    clone._modules = dict(module._modules)
    clone._parameters = dict(module._parameters)
    clone._buffers = dict(module._buffers)
    return clone


# ---------------------------------------------------------------------------- sections
class Run:
    """Holds the settings, the weights and the report; one method per section."""

    def __init__(self, args, settings):
        self.args, self.settings = args, settings
        self.report = {'machine': machine_info(settings.device),
                       'command': ' '.join(['python3', 'benchmarks/bench_gpu.py'] + args.argv),
                       'budget_s': args.budget_s, 'smoke': settings.smoke,
                       'weights': 'random (not a prediction), built on the device',
                       'sections': {}}
        self.weights = None
        self.frames = {batch: make_frames(*settings.camera, batch)
                       for batch in settings.batches}
        self.e2e = {}

    def need_weights(self):
        """Build the weights on first use (their time is reported under ``weights``)."""
        if self.weights is None:
            self.weights = Weights(self.settings)
            self.report['weights_build_s'] = self.weights.build_s
        return self.weights

    def section_ceilings(self, out):
        """Measure bf16 matmul TFLOP/s and device-to-device copy GB/s."""
        device, size = self.settings.device, self.settings.matmul_size
        a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
        b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
        median, best = time_call(lambda: a @ b, device, 3, 10)
        out['matmul_bf16'] = {'n': size, 'median_ms': median,
                              'tflops': 2 * size**3 / (median / 1e3) / 1e12,
                              'tflops_best': 2 * size**3 / (best / 1e3) / 1e12}
        count = self.settings.copy_bytes // 4
        source = torch.randn(count, device=device)
        target = torch.empty_like(source)
        median, best = time_call(lambda: target.copy_(source), device, 3, 10)
        moved = 2 * count * 4
        out['copy'] = {'bytes_read_plus_written': moved, 'median_ms': median,
                       'gb_per_s': moved / (median / 1e3) / 1e9,
                       'gb_per_s_best': moved / (best / 1e3) / 1e9}
        self.matmul_tflops = out['matmul_bf16']['tflops']

    def _paths(self):
        paths = {'eager': None, 'channels_last': None}
        reason = cuda_graphs_unavailable_reason(self.settings.device)
        paths['cuda_graphs'] = reason
        return paths

    def section_end_to_end(self, out):
        """Time predict() for depth and depth + normal, batch 1 and 4, per acceleration path."""
        weights = self.need_weights()
        out['camera'] = list(self.settings.camera)
        out['processing_resolution'] = self.settings.resolution
        rows, skipped = out.setdefault('rows', []), out.setdefault('skipped', [])
        for path, reason in self._paths().items():
            if reason is not None:
                skipped.append({'path': path, 'reason': reason})
                continue
            for name, tasks in TASK_SETS.items():
                predictor = weights.predictor(
                    tasks, torch.bfloat16, channels_last=path == 'channels_last',
                    acceleration='eager' if path == 'channels_last' else path)
                for batch in self.settings.batches:
                    rows.append(self._time_predict(predictor, name, path, batch))
                    per_frame = rows[-1]['per_frame_ms']
                    print(f'end_to_end {name:>12} {path:>13} b{batch}: '
                          f'{per_frame:8.2f} ms/frame', flush=True)
                del predictor
                gc.collect()

    def _time_predict(self, predictor, name, path, batch):
        frames = self.frames[batch]
        resolution = self.settings.resolution

        def call():
            return predictor.predict(frames, processing_resolution=resolution,
                                     return_raw=False)

        started = time.perf_counter()
        output = call()
        synchronize(self.settings.device)
        first_s = time.perf_counter() - started
        median, best = time_call(call, self.settings.device, self.settings.warmup,
                                 self.settings.iters)
        status = predictor.acceleration
        row = {'tasks': name, 'path': path, 'dtype': 'bf16', 'batch': batch,
               'acceleration_active': status.active, 'acceleration_reason': status.summary(),
               'acceleration_checks': [dict(check, signature=repr(check['signature']))
                                       for check in status.checks],
               'processing_size': list(output.processing_size[0]), 'first_call_s': first_s,
               'median_ms': median, 'min_ms': best, 'per_frame_ms': median / batch,
               'min_per_frame_ms': best / batch, 'frames_per_s': 1000.0 * batch / median}
        self.e2e[(name, path, batch)] = row
        return row

    def section_peak_memory(self, out):
        """Weights + activation peak of depth alone, bf16, batch 1 (eager, CUDA graphs)."""
        weights = self.need_weights()
        device = self.settings.device
        out['weights_bytes'] = weights.parameter_bytes(('depth',), torch.bfloat16)
        for path, reason in self._paths().items():
            if path == 'channels_last':
                continue
            if reason is not None:
                out[path] = {'skipped': reason}
                continue
            predictor = weights.predictor(('depth',), torch.bfloat16, acceleration=path)
            frames = self.frames[1]
            if device.type == 'cuda':
                predictor.predict(frames, processing_resolution=self.settings.resolution)
                synchronize(device)
                gc.collect()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
                before = torch.cuda.memory_allocated(device)
                predictor.predict(frames, processing_resolution=self.settings.resolution)
                synchronize(device)
                activations = torch.cuda.max_memory_allocated(device) - before
                total = out['weights_bytes'] + activations
                out[path] = {'activation_peak_bytes': activations, 'depth_only_bytes': total,
                             'depth_only_gib': total / 2**30,
                             'note': 'CUDA graph pools hold their memory between calls'
                             if path == 'cuda_graphs' else None}
            else:
                out[path] = {'skipped': 'device memory is only measured on CUDA'}
            del predictor
            gc.collect()

    def section_bf16_vs_fp32(self, out):
        """Compare bf16 with strict fp32 on the same weights and frames."""
        weights = self.need_weights()
        frames = self.frames[1]
        results = {}
        for dtype in (torch.float32, torch.bfloat16):
            predictor = weights.predictor(TASK_SETS['depth+normal'], dtype)
            with precision_flags(False, False):
                results[dtype] = predictor.predict(frames,
                                                   processing_resolution=self.settings.resolution)
            del predictor
        exact, fast = results[torch.float32], results[torch.bfloat16]
        for name in ('depth_raw', 'normal_raw'):
            a, b = np.stack(getattr(fast, name)), np.stack(getattr(exact, name))
            out[name] = {'max_abs': float(np.abs(a - b).max()),
                         'mean_abs': float(np.abs(a - b).mean())}
        depth = fast.depth[0]
        out['bf16_depth_distinct_values'] = int(np.unique(depth).size)
        out['fp32_depth_distinct_values'] = int(np.unique(exact.depth[0]).size)
        out['pixels'] = int(depth.size)
        out['note'] = ('random weights amplify rounding far more than trained ones; judge the '
                       '2e-2 bound on the real checkpoints')

    def section_sdpa_kernels(self, out):
        """Record the aten SDPA implementation each attention shape runs with."""
        weights = self.need_weights()
        vae, unets = weights.modules(torch.bfloat16)
        seen = {}
        original = torch.nn.functional.scaled_dot_product_attention
        current = ['']

        def recording(query, key, value, *args, **kwargs):
            shape = (current[0], tuple(query.shape), tuple(key.shape), str(query.dtype))
            if shape in seen:
                seen[shape]['calls'] += 1
                return original(query, key, value, *args, **kwargs)
            # Profile the first call of each shape only: the aten op under SDPA names the
            # implementation (flash, efficient, cudnn, math / *_for_cpu).
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                result = original(query, key, value, *args, **kwargs)
            ops = sorted({event.name for event in prof.events()
                          if event.name.startswith(('aten::_scaled_dot_product',
                                                    'aten::_efficient_attention',
                                                    'aten::_flash_attention',
                                                    'aten::_cudnn_attention'))})
            seen[shape] = {'module': current[0], 'query_shape': list(query.shape),
                           'key_shape': list(key.shape), 'head_dim': int(query.shape[-1]),
                           'dtype': str(query.dtype), 'ops': ops, 'calls': 1}
            return result

        height, width = self._processing_size()
        latent = torch.randn(1, 4, height // 8, width // 8, device=self.settings.device,
                             dtype=torch.bfloat16)
        torch.nn.functional.scaled_dot_product_attention = recording
        try:
            with torch.inference_mode():
                current[0] = 'vae_decoder'
                decoded = vae.decoder(vae.post_quant_conv(latent))
                current[0] = 'unet'
                sample = unets['depth'](latent, torch.ones(1, dtype=torch.long,
                                                           device=latent.device),
                                        encoder_hidden_states=weights.conditioning.to(
                                            torch.bfloat16)).sample
                del decoded, sample
        finally:
            torch.nn.functional.scaled_dot_product_attention = original
        out['calls'] = list(seen.values())

    def _processing_size(self):
        width, height = self.settings.camera
        scale = self.settings.resolution / max(width, height)
        return int(round(height * scale)), int(round(width * scale))

    def section_reference(self, out):
        """Time the reference-style pipeline and give our speed-up over it."""
        weights = self.need_weights()
        tokenizer, text_encoder = reference_text_model(self.settings, self.tempdir)
        pipeline = ReferenceStylePipeline.from_components(
            weights.specs, weights.vae, weights.unets, tokenizer, text_encoder,
            self.settings.device)
        frames = self.frames[1]
        rows = out.setdefault('rows', [])
        for name, tasks in TASK_SETS.items():
            median, best = time_call(
                lambda: pipeline.predict(frames, tasks=tasks,
                                         processing_resolution=self.settings.resolution),
                self.settings.device, 1, self.settings.reference_iters)
            row = {'tasks': name, 'batch': 1, 'dtype': 'fp32 (PyTorch default TF32 flags)',
                   'median_ms': median, 'min_ms': best}
            ours = [r for (n, _path, batch), r in self.e2e.items() if n == name and batch == 1]
            if ours:
                fastest = min(ours, key=lambda r: r['per_frame_ms'])
                row['our_fastest_path'] = fastest['path']
                row['speedup'] = median / fastest['per_frame_ms']
            rows.append(row)
            speedup = row.get('speedup')
            print(f'reference {name:>12}: {median:8.1f} ms/frame'
                  + (f' (ours x{speedup:.1f})' if speedup else ''), flush=True)

    def _module_inputs(self, dtype):
        weights = self.need_weights()
        vae, unets = weights.modules(dtype)
        height, width = self._processing_size()
        device = self.settings.device
        pixels = torch.rand(1, 3, height, width, device=device, dtype=dtype) * 2 - 1
        latent = torch.randn(1, 4, height // 8, width // 8, device=device, dtype=dtype)
        timestep = torch.ones(1, dtype=torch.long, device=device)
        cond = weights.conditioning.to(dtype)
        unet = unets['depth']
        return {
            'encoder': (vae.encoder, (pixels,), {}),
            'unet': (unet, (latent, timestep), {'encoder_hidden_states': cond}),
            'decoder': (vae.decoder, (latent / LATENT_SCALE,), {}),
        }

    def _time_modules(self, out, variant, wrap):
        rows = out.setdefault('rows', [])
        for name, (module, args, kwargs) in self._module_inputs(torch.bfloat16).items():
            started = time.perf_counter()
            wrapped = wrap(module, name)
            with torch.inference_mode():
                first = wrapped(*args, **kwargs)
                del first
                synchronize(self.settings.device)
                first_s = time.perf_counter() - started
                median, best = time_call(lambda: wrapped(*args, **kwargs), self.settings.device,
                                         self.settings.warmup, self.settings.iters)
            flops = self.flops.get(name)
            row = {'module': name, 'variant': variant, 'first_call_s': first_s,
                   'median_ms': median, 'min_ms': best, 'gflop': flops / 1e9 if flops else None}
            rate = getattr(self, 'matmul_tflops', None)
            if flops and rate:
                floor_ms = flops / (rate * 1e12) * 1e3
                row['floor_ms'] = floor_ms
                row['share_of_floor'] = floor_ms / median
            rows.append(row)
            share = row.get('share_of_floor')
            print(f'modules {name:>8} {variant:>22}: {median:8.2f} ms'
                  + (f' ({share:.0%} of the FLOP floor)' if share else ''), flush=True)

    def _count_flops(self):
        if getattr(self, 'flops', None):
            return
        from torch.utils.flop_counter import FlopCounterMode
        self.flops = {}
        for name, (module, args, kwargs) in self._module_inputs(torch.bfloat16).items():
            # no_grad, not inference_mode: torch 2.5's FlopCounterMode counts nothing under
            # inference_mode (0 FLOP for a convolution; found by make test-oldest).
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                module(*args, **kwargs)
            self.flops[name] = counter.get_total_flops()

    def section_modules(self, out):
        """Time encoder, UNet and decoder alone: eager, channels_last, CUDA graphs."""
        self._count_flops()
        out['gflop'] = {name: value / 1e9 for name, value in self.flops.items()}
        out['processing_size'] = list(self._processing_size())

        def eager(module, _name):
            return module

        def channels_last(module, _name):
            return ChannelsLast(copy.deepcopy(module).to(memory_format=torch.channels_last))

        def graphs(module, name):
            return CudaGraphModule(module, sample_output=name == 'unet')

        self._time_modules(out, 'eager', eager)
        self._time_modules(out, 'channels_last', channels_last)
        saved = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            self._time_modules(out, 'cudnn_benchmark', eager)
        finally:
            torch.backends.cudnn.benchmark = saved
        reason = cuda_graphs_unavailable_reason(self.settings.device)
        if reason is None:
            self._time_modules(out, 'cuda_graphs', graphs)
        else:
            out['skipped'] = [{'variant': 'cuda_graphs', 'reason': reason}]

    def section_fast_decoder(self, out):
        """Time TAESD's decoder against the SD VAE decoder, alone and in predict() (eager)."""
        weights = self.need_weights()
        vae, _ = weights.modules(torch.bfloat16)
        taesd = weights.taesd(torch.bfloat16)
        height, width = self._processing_size()
        out['processing_size'] = [height, width]
        out['accuracy'] = ('not measured: random weights; the accuracy cost against the SD VAE '
                           'decoder needs the real model and madebyollin/taesd weights')
        latent = torch.randn(1, 4, height // 8, width // 8, device=self.settings.device,
                             dtype=torch.bfloat16)
        decoders = {'vae': lambda: vae.decoder(vae.post_quant_conv(latent / LATENT_SCALE)),
                    'taesd': lambda: taesd.decoder(latent)}
        rows = out.setdefault('rows', [])
        for name, call in decoders.items():
            with torch.inference_mode():
                median, best = time_call(call, self.settings.device, self.settings.warmup,
                                         self.settings.iters)
            rows.append({'what': 'decoder', 'decoder': name, 'median_ms': median,
                         'min_ms': best})
            print(f'fast_decoder decoder {name:>5}: {median:8.2f} ms', flush=True)
        saved = dict(self.e2e)   # _time_predict records eager rows that end_to_end owns
        try:
            for decoder in ('vae', 'taesd'):
                for task_set, tasks in TASK_SETS.items():
                    predictor = weights.predictor(tasks, torch.bfloat16, decoder=decoder)
                    row = dict(self._time_predict(predictor, task_set, 'eager', 1))
                    row.update(what='predict', decoder=decoder)
                    row.pop('acceleration_checks', None)
                    rows.append(row)
                    print(f'fast_decoder predict {task_set:>12} {decoder:>5}: '
                          f'{row["per_frame_ms"]:8.2f} ms/frame', flush=True)
                    del predictor
                    gc.collect()
        finally:
            self.e2e = saved

    def section_compile(self, out):
        """Time the modules under torch.compile, compile + CUDA graphs, then predict()."""
        if not self.settings.cuda and not self.args.cpu_compile:
            out['skipped'] = ('torch.compile is timed on CUDA only (on this CPU compiling even '
                              'the tiny models takes minutes); --cpu-compile forces it')
            return
        self._count_flops()
        mode = None if self.args.compile_mode == 'default' else self.args.compile_mode
        out['compile_mode'] = self.args.compile_mode
        compiled = {}

        def compile_module(module, name):
            compiled[name] = torch.compile(module, mode=mode, dynamic=False)
            return compiled[name]

        self._time_modules(out, 'compile', compile_module)
        reason = cuda_graphs_unavailable_reason(self.settings.device)
        if reason is not None:
            out['skipped'] = [{'variant': 'compile+cuda_graphs', 'reason': reason}]
            return
        self._time_modules(out, 'compile+cuda_graphs', lambda module, name: CudaGraphModule(
            compiled[name], sample_output=name == 'unet'))
        # End to end through the predictor's checked option (compiles its own modules again:
        # torch.compile caches per code object, so this reuses most of the work above).
        self.weights.compile_mode = mode
        predictor = self.weights.predictor(('depth',), torch.bfloat16,
                                           acceleration='compile+cuda_graphs')
        out['end_to_end'] = self._time_predict(predictor, 'depth', 'compile+cuda_graphs', 1)


class ChannelsLast(torch.nn.Module):
    """Run ``module`` (channels_last weights) on channels_last inputs."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        """Convert 4-D tensor arguments to channels_last and call the module."""
        args = [value.contiguous(memory_format=torch.channels_last)
                if isinstance(value, torch.Tensor) and value.dim() == 4 else value
                for value in args]
        return self.module(*args, **kwargs)


def reference_text_model(settings, folder):
    """Return (tokenizer, text encoder) of the right size, the encoder built on the device."""
    from genpercept_ros.model.tiny_weights import write_tokenizer
    from transformers import CLIPTextConfig
    from transformers import CLIPTextModel
    from transformers import CLIPTokenizer
    vocab_size = write_tokenizer(os.path.join(folder, 'tokenizer'), settings.full_size)
    tokenizer = CLIPTokenizer.from_pretrained(os.path.join(folder, 'tokenizer'))
    config = configs.text_encoder_config(settings.full_size, vocab_size=vocab_size)
    with torch.device(settings.device):
        encoder = CLIPTextModel(CLIPTextConfig.from_dict(config))
    return tokenizer, encoder.eval().requires_grad_(False)


def machine_info(device):
    """Return a description of where this ran."""
    import diffusers
    info = {
        'date_utc': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'platform': platform.platform(), 'python': platform.python_version(),
        'torch': torch.__version__, 'diffusers': diffusers.__version__,
        'cpu_count': os.cpu_count(), 'device': str(device)}
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
        info['cuda'] = torch.version.cuda
    return info


def build_parser():
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--device', default='auto', help='cuda, cuda:N or cpu (default: auto)')
    parser.add_argument('--budget-s', type=float, default=480.0,
                        help='time for the whole run in seconds (default 480); each section '
                             'gets at most its share of it and never more than is left')
    parser.add_argument('--sections', default=','.join(name for name, _ in SECTIONS),
                        help='comma-separated subset, in the order run (default: all)')
    parser.add_argument('--compile-mode', default='default',
                        help="torch.compile mode ('default', 'max-autotune-no-cudagraphs', ...)")
    parser.add_argument('--cpu-compile', action='store_true',
                        help='run the compile section on a CPU too')
    parser.add_argument('--json', default=None, metavar='OUT',
                        help='write the report here after every section')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny configurations, 64x48 frames, a few iterations (CPU check)')
    return parser


def write_report(report, path):
    """Write the JSON report atomically (a killed run keeps the previous complete file)."""
    if not path:
        return
    partial = f'{path}.partial'
    with open(partial, 'w', encoding='utf-8') as stream:
        json.dump(report, stream, indent=2, default=str)
    os.replace(partial, path)


def main(argv=None):
    """Run the sections under their guards; return the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    started = time.monotonic()
    if args.device in ('auto', '', None):
        device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    else:
        device = torch.device(args.device)
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    known = dict(SECTIONS)
    wanted = [name.strip() for name in args.sections.split(',') if name.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise SystemExit(f'unknown sections {unknown}; choose from {list(known)}')
    run = Run(args, Settings(args.smoke, device))
    with tempfile.TemporaryDirectory(prefix='gp_bench_gpu_') as folder:
        run.tempdir = folder
        for name in wanted:
            left = args.budget_s - (time.monotonic() - started)
            guard = min(known[name] * args.budget_s, left - 2.0)
            section = {'status': 'running', 'guard_s': guard}
            run.report['sections'][name] = section
            section_started = time.monotonic()
            try:
                with time_guard(guard):
                    getattr(run, f'section_{name}')(section)
                section['status'] = 'skipped' if 'skipped' in section and name == 'compile' \
                    and isinstance(section['skipped'], str) else 'ok'
            except SectionTimeout as error:
                section['status'] = 'timeout'
                section['error'] = str(error)
            except Exception as error:  # noqa: B902 - a failing section must not end the run
                section['status'] = 'error'
                section['error'] = f'{type(error).__name__}: {error}'
                section['traceback'] = traceback.format_exc(limit=8)
            section['seconds'] = time.monotonic() - section_started
            run.report['elapsed_s'] = time.monotonic() - started
            print(f'[{name}] {section["status"]} in {section["seconds"]:.1f} s', flush=True)
            write_report(run.report, args.json)
            gc.collect()
            if device.type == 'cuda':
                torch.cuda.empty_cache()
    print(json.dumps({name: section['status']
                      for name, section in run.report['sections'].items()}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
