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
Model latency, throughput, peak memory and fast-path accuracy, side by side with the reference.

Run ``python benchmarks/bench_model.py --help``. Frames are made at the camera size (default
640x480) and resized by the pipeline to each processing resolution, so the real resize is timed.
For every task set x dtype x mode x processing resolution x batch it reports per-call and
per-frame latency (CUDA events on a GPU, ``perf_counter`` on the CPU), frames per second, peak
memory (``torch.cuda.max_memory_allocated`` since the row started, weights included; on the
CPU the process peak RSS so far), the max abs difference of the [0, 1] outputs from our fp32
eager path on the same weights and frames (bf16 must be <= 2e-2), and the speed-up over
``reference_style_pipeline.py`` (fp32 under PyTorch's default TF32 flags as the reference runs,
one image and one task per call, CPU resize, text encoder per call) measured in the same run on
the same device. Modes the device cannot run are listed as skipped with the reason.
``--smoke`` is a seconds-long end-to-end check on tiny weights (64x48 frames at processing
resolution 64, one iteration). The one-command GPU run (every question in one call under a time
budget) is ``bench_gpu.py``.
"""

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time

try:
    import genpercept_ros  # noqa: F401
except ImportError:  # run as a script from a checkout without installing the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from genpercept_ros.geometry.synthetic import box_room
from genpercept_ros.model.acceleration import apply_cuda_graphs
from genpercept_ros.model.acceleration import cuda_graphs_unavailable_reason
from genpercept_ros.model.acceleration import enable_tf32
from genpercept_ros.model.predictor import GenPerceptPredictor
from genpercept_ros.model.registry import get_model_spec
import numpy as np
try:
    from reference_style_pipeline import ReferenceStylePipeline
except ImportError:  # imported from outside benchmarks/
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from reference_style_pipeline import ReferenceStylePipeline
import torch

MODES = ('eager', 'compile', 'cudagraph')
TASK_SETS = {'depth': ('depth',), 'normal': ('normal',), 'depth+normal': ('depth', 'normal')}
BF16_TOLERANCE = 2e-2


def parse_list(text, convert=str):
    """Split a comma-separated option into converted items."""
    return [convert(item.strip()) for item in text.split(',') if item.strip()]


def parse_resolution(text):
    """Parse 'WxH' into (width, height)."""
    try:
        width, height = (int(part) for part in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'resolution {text!r} is not WIDTHxHEIGHT') from None
    return width, height


def build_parser():
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model-root', default=None,
                        help='weights folder (default: tiny weights written to a temp dir)')
    parser.add_argument('--full-size-weights', default=None, metavar='DIR',
                        help='folder written by `genpercept make-tiny-weights DIR --full-size` '
                             '(the real architecture with random values); overrides --model-root')
    parser.add_argument('--depth-model', default='depth-v2')
    parser.add_argument('--normal-model', default='normal-v2')
    parser.add_argument('--device', default='auto', help='cpu, cuda, cuda:N (default: auto)')
    parser.add_argument('--dtypes', default='fp32,bf16')
    parser.add_argument('--camera', type=parse_resolution, default=(640, 480),
                        help='WIDTHxHEIGHT of the frames (default 640x480)')
    parser.add_argument('--resolutions', default='768',
                        help='processing resolutions (longest edge after resizing), comma '
                             'separated (default 768: 640x480 runs at 768x576)')
    parser.add_argument('--batch', default='1,4', help='frames per predict() call (cameras)')
    parser.add_argument('--tasks', default='depth,normal,depth+normal')
    parser.add_argument('--modes', default=None,
                        help='eager,compile,cudagraph (default: all; eager with --smoke)')
    parser.add_argument('--channels-last', choices=('auto', 'on', 'off'), default='auto',
                        help='channels_last weights/activations (auto: on for CUDA)')
    parser.add_argument('--compile-mode', default='max-autotune-no-cudagraphs',
                        help='torch.compile mode of the compile mode (default: %(default)s; '
                             "'default' for torch's default)")
    parser.add_argument('--tf32', action='store_true',
                        help='allow TF32 for fp32 on CUDA (default: off, strict fp32 baseline)')
    parser.add_argument('--no-reference', action='store_true',
                        help='skip the reference-style pipeline')
    parser.add_argument('--interleave-reference', action='store_true',
                        help='time the reference right after each of our calls (both loaded '
                             'at once) and report paired ratios; for shared/noisy machines')
    parser.add_argument('--reference-iters', type=int, default=None,
                        help='timed reference iterations (default: --iters)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--json', default=None, metavar='OUT', help='write all results here')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny weights, 64x48 frames at 64, batch 1, eager, 1 iteration, '
                             'no warm-up')
    return parser


def make_frames(width, height, batch):
    """Return ``batch`` different synthetic RGB frames of the box room."""
    base = box_room(width, height).rgb
    return [np.ascontiguousarray(np.roll(base, shift=7 * index, axis=1))
            for index in range(batch)]


def raw_outputs(output, tasks):
    """Return the v2 [0, 1] raw outputs of a PredictionOutput as {task: [B, ...] array}."""
    result = {}
    if 'depth' in tasks:
        result['depth'] = np.stack(output.depth_raw)
    if 'normal' in tasks:
        result['normal'] = np.stack(output.normal_raw)
    return result


def max_abs_difference(outputs, baseline):
    """Return {task: max |a - b|} over the tasks present in both."""
    if baseline is None:
        return None
    return {task: float(np.max(np.abs(outputs[task] - baseline[task])))
            for task in outputs if task in baseline}


class Timer:
    """Time calls with CUDA events on a GPU and ``perf_counter`` on the CPU."""

    def __init__(self, device):
        self.cuda = device.type == 'cuda'

    def __call__(self, function):
        """Return (seconds, result) of one call."""
        if self.cuda:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            result = function()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0, result
        started = time.perf_counter()
        result = function()
        return time.perf_counter() - started, result


def reset_peak(device):
    """Start a new peak-memory window."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device):
    """Return (bytes, what) of the peak memory."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device), 'cuda max_memory_allocated'
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, 'process peak RSS so far'


def mode_unavailable_reason(mode, device, predictor_specs):
    """Return why ``mode`` cannot run here, or None."""
    if mode == 'cudagraph':
        reason = cuda_graphs_unavailable_reason(device)
        if reason is None and any(spec.has_dpt_head for spec in predictor_specs):
            reason = 'CUDA graphs do not support DPT-head variants'
        return reason
    if mode == 'compile' and not hasattr(torch, 'compile'):
        return 'torch.compile is not available in this torch build'
    return None


def summarise(seconds, batch):
    """Return latency statistics in milliseconds."""
    ms = [value * 1000.0 for value in seconds]
    median = statistics.median(ms)
    return {
        'iters': len(ms), 'median_ms': median, 'mean_ms': statistics.fmean(ms),
        'min_ms': min(ms), 'max_ms': max(ms), 'per_frame_ms': median / batch,
        'min_per_frame_ms': min(ms) / batch,
        'frames_per_s': 1000.0 * batch / median if median > 0 else None}


def run_ours(args, device, tasks, dtype, mode, channels_last, frames_by_key, baselines, timer,
             interleaved=None):
    """Benchmark one predictor configuration over every resolution x batch; return rows."""
    depth_model = args.depth_model if 'depth' in tasks else None
    normal_model = args.normal_model if 'normal' in tasks else None
    reset_peak(device)
    started = time.perf_counter()
    predictor = GenPerceptPredictor.from_pretrained(
        depth_model=depth_model, normal_model=normal_model, model_root=args.weights,
        device=str(device), dtype=dtype, channels_last=channels_last)
    load_s = time.perf_counter() - started
    if mode == 'compile':
        predictor.compile_models(mode=None if args.compile_mode == 'default'
                                 else args.compile_mode)
    elif mode == 'cudagraph':
        apply_cuda_graphs(predictor)
    rows = []
    for (resolution, batch), frames in frames_by_key.items():
        reset_peak(device)
        height, width = frames[0].shape[:2]

        def call():
            return predictor.predict(frames, processing_resolution=resolution, tasks=tasks)

        # The first call compiles / captures for this shape: reported, never averaged in.
        first_s, output = timer(call)
        for _ in range(max(0, args.warmup - 1)):
            output = call()
        seconds, paired = [], []
        for _ in range(args.iters):
            elapsed, output = timer(call)
            seconds.append(elapsed)
            if interleaved is not None:
                paired.append(interleaved.time_once(resolution, batch, frames) / elapsed)
        outputs = raw_outputs(output, tasks)
        key = (tasks, resolution, batch)
        if dtype == 'fp32' and mode == 'eager':
            baselines[key] = outputs
        memory, memory_kind = peak_memory(device)
        difference = max_abs_difference(outputs, baselines.get(key))
        row = {
            'tasks': '+'.join(tasks), 'dtype': dtype, 'mode': mode,
            'channels_last': channels_last,
            'width': width, 'height': height, 'processing_resolution': resolution,
            'batch': batch, 'processing_size': list(output.processing_size[0]),
            'load_s': load_s, 'first_call_s': first_s,
            'peak_memory_bytes': memory, 'peak_memory_kind': memory_kind,
            'max_abs_diff_vs_fp32_eager': difference,
            'stage_seconds_last_call': dict(output.timings),
        }
        row.update(summarise(seconds, batch))
        if paired:
            # Median of per-iteration ratios, each from back-to-back calls: robust to load
            # that changes slowly compared with one call.
            row['paired_speedup_vs_reference'] = statistics.median(paired)
        if dtype == 'bf16' and difference is not None:
            row['bf16_within_tolerance'] = all(
                value <= BF16_TOLERANCE for value in difference.values())
        rows.append(row)
        print(format_row(row), flush=True)
    predictor = None
    reset_peak(device)
    return rows


def reference_pipeline(args, device, tasks):
    """Load the reference-style pipeline (fp32) for ``tasks``."""
    return ReferenceStylePipeline(
        args.weights, depth_model=args.depth_model if 'depth' in tasks else None,
        normal_model=args.normal_model if 'normal' in tasks else None, device=str(device))


def reference_row(tasks, resolution, batch, frames, seconds, result, baselines, memory=None):
    """Return the report row of the reference-style pipeline."""
    outputs = {task: np.stack(values) for task, values in result.items()}
    memory, memory_kind = memory or (None, 'not measured (loaded beside our predictor)')
    row = {'tasks': '+'.join(tasks), 'dtype': 'fp32', 'mode': 'reference-style',
           'width': frames[0].shape[1], 'height': frames[0].shape[0],
           'processing_resolution': resolution, 'batch': batch,
           'peak_memory_bytes': memory, 'peak_memory_kind': memory_kind,
           'max_abs_diff_vs_fp32_eager': max_abs_difference(
               outputs, baselines.get((tasks, resolution, batch)))}
    row.update(summarise(seconds, batch))
    return row


class InterleavedReference:
    """Time the reference-style pipeline right after each of our timed calls."""

    def __init__(self, pipeline, tasks, timer):
        self.pipeline, self.tasks, self.timer = pipeline, tasks, timer
        self.samples, self.results, self.frames = {}, {}, {}

    def time_once(self, resolution, batch, frames):
        """Run the reference once on ``frames`` (warming up first); return seconds."""
        key = (resolution, batch)
        self.frames[key] = frames

        def call():
            return self.pipeline.predict(frames, tasks=self.tasks,
                                         processing_resolution=resolution)

        if key not in self.samples:
            call()
            self.samples[key] = []
        elapsed, self.results[key] = self.timer(call)
        self.samples[key].append(elapsed)
        return elapsed

    def rows(self, baselines):
        """Return one row per size with every interleaved sample."""
        rows = []
        for (resolution, batch), seconds in self.samples.items():
            rows.append(reference_row(self.tasks, resolution, batch,
                                      self.frames[(resolution, batch)], seconds,
                                      self.results[(resolution, batch)], baselines))
            print(format_row(rows[-1]), flush=True)
        return rows


def run_reference(args, device, tasks, frames_by_key, baselines, timer):
    """Benchmark the reference-style pipeline (fp32) on the same frames; return rows."""
    reset_peak(device)
    pipeline = reference_pipeline(args, device, tasks)
    rows = []
    iters = args.iters if args.reference_iters is None else args.reference_iters
    for (resolution, batch), frames in frames_by_key.items():
        reset_peak(device)

        def call():
            return pipeline.predict(frames, tasks=tasks, processing_resolution=resolution)

        result = call()
        seconds = []
        for _ in range(iters):
            elapsed, result = timer(call)
            seconds.append(elapsed)
        rows.append(reference_row(tasks, resolution, batch, frames, seconds, result, baselines,
                                  peak_memory(device)))
        print(format_row(rows[-1]), flush=True)
    pipeline = None
    reset_peak(device)
    return rows


def format_row(row):
    """Return one printable line."""
    difference = row.get('max_abs_diff_vs_fp32_eager')
    difference = ('-' if difference is None else
                  ' '.join(f'{task}={value:.2e}' for task, value in difference.items()))
    speedup = row.get('speedup_vs_reference')
    speedup_min = row.get('speedup_vs_reference_min')
    paired = row.get('paired_speedup_vs_reference')
    memory = row.get('peak_memory_bytes')
    memory = '-' if memory is None else f'{memory / 2**30:6.2f} GiB'
    return (f"{row['tasks']:>13} {row['dtype']:>4} {row['mode']:>15} "
            f"{row['width']}x{row['height']}@{row['processing_resolution']} b{row['batch']}: "
            f"{row['median_ms']:9.1f} ms/call "
            f"{row['per_frame_ms']:9.1f} ms/frame {row['frames_per_s'] or 0:7.2f} fps "
            f'peak {memory} | diff {difference}'
            + (f' | x{speedup:.2f} vs reference (min x{speedup_min:.2f})' if speedup else '')
            + (f' (paired x{paired:.2f})' if paired else ''))


def add_speedups(rows, reference_rows):
    """Attach the reference-style per-frame latency and speed-up to each of our rows."""
    reference = {(r['tasks'], r['processing_resolution'], r['batch']): r
                 for r in reference_rows}
    for row in rows:
        match = reference.get((row['tasks'], row['processing_resolution'], row['batch']))
        if match is not None and row['per_frame_ms'] > 0:
            row['reference_per_frame_ms'] = match['per_frame_ms']
            row['speedup_vs_reference'] = match['per_frame_ms'] / row['per_frame_ms']
            # Minimum over minimum: the figure least affected by other jobs on a shared machine.
            row['speedup_vs_reference_min'] = (match['min_per_frame_ms']
                                               / row['min_per_frame_ms'])


def machine_info(device):
    """Return a description of where this ran."""
    import diffusers
    info = {
        'date_utc': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'platform': platform.platform(), 'python': platform.python_version(),
        'torch': torch.__version__, 'diffusers': diffusers.__version__,
        'cpu_count': os.cpu_count(), 'torch_threads': torch.get_num_threads(),
        'device': str(device), 'tf32': torch.backends.cuda.matmul.allow_tf32,
        'load_average': os.getloadavg()}
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
        info['cuda'] = torch.version.cuda
    else:
        with contextlib.suppress(OSError):
            with open('/proc/cpuinfo', encoding='utf-8') as stream:
                for line in stream:
                    if line.startswith('model name'):
                        info['cpu'] = line.split(':', 1)[1].strip()
                        break
    return info


def apply_smoke(args):
    """Shrink the run to a seconds-long check."""
    args.camera = (64, 48)
    args.resolutions = '64'
    args.batch = '1'
    args.modes = args.modes or 'eager'
    args.warmup = 0
    args.iters = 1
    args.reference_iters = 1


def resolve_device(name):
    """Return the torch.device to run on."""
    if name in ('auto', '', None):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(name)


def main(argv=None):
    """Run the benchmark; return the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command = ['python', 'benchmarks/bench_model.py'] + argv
    if args.smoke:
        apply_smoke(args)
    args.modes = args.modes or ','.join(MODES)
    device = resolve_device(args.device)
    # Explicit either way: PyTorch allows TF32 in cuDNN convolutions by default, which would make
    # our fp32 baseline not fp32. The reference-style pipeline sets PyTorch's defaults itself
    # for its own calls, as the reference runs.
    enable_tf32(args.tf32)
    with contextlib.ExitStack() as stack:
        args.weights = args.full_size_weights or args.model_root
        weights_kind = 'full-size random' if args.full_size_weights else 'given'
        if args.weights is None:
            from genpercept_ros.model.tiny_weights import make_tiny_weights
            args.weights = stack.enter_context(tempfile.TemporaryDirectory(prefix='gp_bench_'))
            make_tiny_weights(args.weights, models=[args.depth_model, args.normal_model])
            weights_kind = 'tiny random (temporary)'
        return run_all(args, device, weights_kind)


def run_all(args, device, weights_kind):
    """Run every configuration and write the report."""
    dtypes = parse_list(args.dtypes)
    modes = parse_list(args.modes)
    bad = [mode for mode in modes if mode not in MODES] + [
        name for name in parse_list(args.tasks) if name not in TASK_SETS]
    if bad:
        raise SystemExit(f'unknown mode/task {bad}; modes {MODES}, tasks {sorted(TASK_SETS)}')
    channels_last = args.channels_last == 'on' or (
        args.channels_last == 'auto' and device.type == 'cuda')
    resolutions = parse_list(args.resolutions, int)
    batches = parse_list(args.batch, int)
    frames_by_key = {(resolution, batch): make_frames(*args.camera, batch)
                     for resolution in resolutions for batch in batches}
    timer = Timer(device)
    rows, reference_rows, skipped = [], [], []
    print(f'weights: {args.weights} ({weights_kind}); device {device}', flush=True)
    for task_name in parse_list(args.tasks):
        tasks = TASK_SETS[task_name]
        baselines = {}
        # fp32 eager first: it is the baseline every fast path is compared with.
        configs = [('fp32', 'eager')] + [(dtype, mode) for dtype in dtypes for mode in modes
                                         if (dtype, mode) != ('fp32', 'eager')]
        wanted = {(dtype, mode) for dtype in dtypes for mode in modes}
        interleaved = None
        if args.interleave_reference and not args.no_reference:
            interleaved = InterleavedReference(reference_pipeline(args, device, tasks), tasks,
                                               timer)
        specs = [get_model_spec(args.depth_model)] if 'depth' in tasks else []
        specs += [get_model_spec(args.normal_model)] if 'normal' in tasks else []
        for dtype, mode in configs:
            reason = mode_unavailable_reason(mode, device, specs)
            if reason is not None:
                if (dtype, mode) in wanted:
                    skipped.append({'tasks': task_name, 'dtype': dtype, 'mode': mode,
                                    'reason': reason})
                    print(f'{task_name:>13} {dtype:>4} {mode:>15}: skipped ({reason})')
                continue
            config_rows = run_ours(args, device, tasks, dtype, mode, channels_last,
                                   frames_by_key, baselines, timer, interleaved)
            if (dtype, mode) in wanted:
                rows.extend(config_rows)
        if interleaved is not None:
            reference_rows.extend(interleaved.rows(baselines))
            interleaved = None
        elif not args.no_reference:
            reference_rows.extend(run_reference(args, device, tasks, frames_by_key, baselines,
                                                timer))
    add_speedups(rows, reference_rows)
    report = {'machine': machine_info(device), 'command': ' '.join(args.command),
              'weights': args.weights, 'weights_kind': weights_kind,
              'bf16_tolerance': BF16_TOLERANCE, 'rows': rows,
              'reference_rows': reference_rows, 'skipped': skipped}
    print('\nside by side (median per frame):')
    for row in rows:
        print(format_row(row))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as stream:
            json.dump(report, stream, indent=2)
        print(f'wrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
