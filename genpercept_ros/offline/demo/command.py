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
``genpercept demo``: synthetic camera -> ``genpercept_node`` -> recorder, in one process.

Everything runs with real rclpy in one executor: `SyntheticCamera` publishes a rendered box
room with known depth (Image + CameraInfo at a fixed rate), the real ``genpercept_node``
processes it, and `Recorder` writes ``<output>/``: ``input.png``, ``depth_colored.png``,
``normals.png``, ``cloud.ply`` (newest processed frame), ``bag/`` (rosbag2 of the camera, every
output and /diagnostics), ``camera_info.yaml`` and ``summary.json`` (frames, rates, latency
percentiles, weights, accuracy against the known depth, ``predictions_meaningful``).

Weights: real weights of the chosen models (``--depth-model``/``--normal-model``, default the
GenPercept v2 pair; E2E-FT and Lotus-D models too) from ``--model-root`` or the Hugging Face cache
(offline) when present; otherwise tiny random weights are written to a cache folder and the demo
says loudly, on stdout and in ``summary.json``, that the predictions are not meaningful.
"""

import argparse
import os
from pathlib import Path
import sys
import time

from .session import run_demo
from ..common import banner
from ...model.weights import RANDOM_WEIGHTS_MARKER as RANDOM_MARKER

DEMO_MODELS = ('depth-v2', 'normal-v2')
SCALE_MODES = ('range', 'reference', 'ground')


def demo_models(args):
    """Return the (depth, normal) model names the demo runs."""
    return (args.depth_model, args.normal_model)


def add_arguments(parser):
    """Add the options of ``genpercept demo``."""
    parser.add_argument('--output', default='demo_output', metavar='DIR',
                        help='folder for the results (default: %(default)s)')
    parser.add_argument('--frames', type=int, default=None,
                        help='frames the camera publishes (default: 30, --short: 6)')
    parser.add_argument('--rate', type=float, default=5.0, metavar='HZ',
                        help='camera rate (default: %(default)s)')
    parser.add_argument('--model-root', default=None, metavar='DIR',
                        help='folder with real GenPercept weights (default: the Hugging Face '
                             'cache; tiny random weights when neither has them)')
    from genpercept_ros.model.registry import DEPTH_MODELS
    from genpercept_ros.model.registry import NORMAL_MODELS
    parser.add_argument('--depth-model', default=DEMO_MODELS[0], choices=DEPTH_MODELS,
                        metavar='MODEL', help=f'depth model: {", ".join(DEPTH_MODELS)} '
                        '(default: %(default)s)')
    parser.add_argument('--normal-model', default=DEMO_MODELS[1], choices=NORMAL_MODELS,
                        metavar='MODEL', help=f'normal model: {", ".join(NORMAL_MODELS)} '
                        '(default: %(default)s)')
    parser.add_argument('--short', action='store_true',
                        help='a few small frames only (tests, smoke checks)')
    parser.add_argument('--width', type=int, default=None,
                        help='camera width (default: 320, --short: 128, at most the processing '
                             'resolution)')
    parser.add_argument('--height', type=int, default=None,
                        help='camera height (default: 3/4 of the width)')
    parser.add_argument('--processing-resolution', type=int, default=None, metavar='PIXELS',
                        help='model input longest edge (default: 128 with tiny weights; with '
                             'real weights 192 on CPU, 768 on CUDA)')
    parser.add_argument('--device', default='auto', help='cpu, cuda, cuda:N or auto')
    parser.add_argument('--dtype', default='auto', choices=('auto', 'fp32', 'fp16', 'bf16'))
    parser.add_argument('--time-limit', type=float, default=100.0, metavar='S',
                        help='stop waiting for outputs after this many seconds in all '
                             '(default: %(default)s)')
    parser.add_argument('--metric-reference', action='store_true',
                        help='also publish the true depth on reference/depth and run the node '
                             'with scale_mode reference (metric depth fitted per frame); the '
                             'same as --scale-mode reference')
    parser.add_argument('--scale-mode', default=None, choices=SCALE_MODES,
                        help="the node's scale_mode: 'range' (default, assumed scale), "
                             "'reference' (as --metric-reference) or 'ground' (the room is "
                             'seen from a known camera height and pitch and the node scales '
                             'its depth from the floor)')
    parser.add_argument('--tiny-weights-dir', default=None, metavar='DIR',
                        help='where to write the tiny fallback weights (default: '
                             '~/.cache/genpercept_ros/tiny_weights)')


# Weights ---------------------------------------------------------------------------------------

def choose_weights(model_root, models=DEMO_MODELS):
    """
    Decide which weights the demo uses; return ``(model_root or None, meaningful, note)``.

    The model layer's :func:`~genpercept_ros.model.weights.weights_origin` decides (the node,
    ``infer`` and ``bag`` use the same check): published-size weights without the random-weights
    marker are meaningful; random or reduced-size ones run but are reported as not meaningful.
    Missing weights return ``(None, False, reason)``.
    """
    from genpercept_ros.model.weights import weights_origin
    from genpercept_ros.model.weights import WeightsError
    try:
        origin = weights_origin(model_root, [name for name in models if name])
    except WeightsError as error:
        return None, False, str(error)
    return model_root, origin.meaningful, origin.reason


def tiny_weights_root(preferred, output, models=DEMO_MODELS):
    """Write (once per model) and return a folder with tiny random weights of the models."""
    from genpercept_ros.model.tiny_weights import make_tiny_weights
    candidates = [Path(preferred)] if preferred else [
        Path.home() / '.cache' / 'genpercept_ros' / 'tiny_weights', Path(output) / 'tiny_weights']
    last_error = None
    for root in candidates:
        marker = root / RANDOM_MARKER
        try:
            wanted = [name for name in models if name]
            if not marker.is_file() or not _has_models(root, wanted):
                root.mkdir(parents=True, exist_ok=True)
                make_tiny_weights(root, models=wanted)
                marker.write_text('Tiny randomly initialised weights written by `genpercept '
                                  'demo`; their predictions mean nothing.\n')
            return root
        except OSError as error:
            last_error = error
    raise OSError(f'cannot write tiny weights in {", ".join(map(str, candidates))}: '
                  f'{last_error}')


def _has_models(root, models):
    from genpercept_ros.model.weights import weights_origin
    from genpercept_ros.model.weights import WeightsError
    try:
        weights_origin(str(root), models)
    except WeightsError:
        return False
    return True


# Run -------------------------------------------------------------------------------------------

def processing_resolution(args, meaningful):
    """
    Return the model's processing resolution for the demo.

    ``--processing-resolution`` when given, else 128 with random weights and, with real ones,
    768 on CUDA and 192 on the CPU (about 20 s a frame there).
    """
    if args.processing_resolution is not None:
        return args.processing_resolution
    if not meaningful:
        return 128
    import torch
    cuda = args.device.startswith('cuda') or (args.device == 'auto'
                                              and torch.cuda.is_available())
    return 768 if cuda else 192


def camera_size(args, resolution):
    """
    Return the camera's ``(width, height)``.

    ``--width``/``--height`` when given; otherwise 320x240 (``--short``: 128x96) shrunk, at the
    same 4:3 aspect, to the processing resolution: pixels the model never sees would only
    fill the bag (camera and every output are recorded at the camera's size).
    """
    width, height = (128, 96) if args.short else (320, 240)
    if resolution and resolution < width:
        width, height = resolution, max(16, round(resolution * height / width))
    return args.width or width, args.height or height


def _defaults(args):
    frames = args.frames if args.frames is not None else (6 if args.short else 30)
    return frames, args.width or 16, args.height or 16


def _check(args, frames, width, height):
    if args.metric_reference and args.scale_mode not in (None, 'reference'):
        return f'--metric-reference contradicts --scale-mode {args.scale_mode}'
    if frames < 1:
        return f'--frames must be >= 1, got {frames}'
    if not args.rate > 0:
        return f'--rate must be positive, got {args.rate}'
    if width < 16 or height < 16:
        return f'the camera must be at least 16x16, got {width}x{height}'
    if args.processing_resolution is not None and 0 < args.processing_resolution < 16:
        return f'--processing-resolution must be 0 or >= 16, got {args.processing_resolution}'
    if args.processing_resolution is not None and args.processing_resolution < 0:
        return f'--processing-resolution must be >= 0, got {args.processing_resolution}'
    return None


def run(args):
    """Run the demo; return the exit status."""
    frames, width, height = _defaults(args)
    message = _check(args, frames, width, height)
    if message:
        print(f'genpercept demo: error: {message}', file=sys.stderr)
        return 2
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    started = time.monotonic()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    models = demo_models(args)
    model_root, meaningful, note = choose_weights(args.model_root, models)
    if model_root is None and not meaningful:
        fallback = tiny_weights_root(args.tiny_weights_dir, out, models)
        print(f'genpercept demo: no weights found for {" + ".join(filter(None, models))} '
              f'({note})')
        model_root, note = str(fallback), f'tiny random weights in {fallback}: {note}'
    if not meaningful:
        print(banner(['PREDICTIONS ARE NOT MEANINGFUL',
                      'This demo runs with random weights; depth and normals are noise.',
                      f'Weights: {note}',
                      'Get the real weights: genpercept download --model-root DIR, then',
                      '  genpercept demo --model-root DIR']), flush=True)
    resolution = processing_resolution(args, meaningful)
    width, height = camera_size(args, resolution)
    args = argparse.Namespace(**{**vars(args), 'processing_resolution': resolution})
    return run_demo(args, out, frames, width, height, model_root, meaningful, note, started)
