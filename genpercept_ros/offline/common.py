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

"""Command-line options shared by the offline jobs: model choice and depth scale."""

import sys

DEFAULT_NEAR_M = 0.5
DEFAULT_FAR_M = 10.0


def add_model_arguments(parser, processing_resolution=768):
    """Add the options that choose and place the GenPercept model."""
    group = parser.add_argument_group('model')
    group.add_argument('--model-root', default=None, metavar='DIR',
                       help='folder holding one folder per hub repo (genpercept-models/, '
                            'stable-diffusion-2-1/, marigold-e2e-ft-depth/, ...; default: the '
                            'Hugging Face cache)')
    from genpercept_ros.model.registry import DEPTH_MODELS
    from genpercept_ros.model.registry import NORMAL_MODELS
    group.add_argument('--depth-model', default='depth-v2', metavar='MODEL',
                       help=f'depth model: {", ".join(DEPTH_MODELS)}; '
                            "'' disables depth (default: %(default)s)")
    group.add_argument('--normal-model', default='normal-v2', metavar='MODEL',
                       help=f'normal model: {", ".join(NORMAL_MODELS)}; '
                            "'' disables normals (default: %(default)s)")
    group.add_argument('--device', default='auto',
                       help='cpu, cuda, cuda:N or auto (cuda when available; default: auto)')
    group.add_argument('--dtype', default='auto', choices=('auto', 'fp32', 'fp16', 'bf16'),
                       help='compute dtype (auto: bf16 on CUDA, fp32 on CPU)')
    group.add_argument('--processing-resolution', type=int, default=processing_resolution,
                       metavar='PIXELS',
                       help='longest edge the model runs at, 0 = native (default: %(default)s)')
    group.add_argument('--output-resolution', default='input', choices=('input', 'processing'),
                       help='size of the outputs: the input size or the processing size')
    group.add_argument('--acceleration', default='auto',
                       choices=('auto', 'eager', 'compile', 'cuda_graphs', 'compile+cuda_graphs'),
                       help='fast path, checked against eager on the first frame of each size '
                            '(eager with one warning when it fails); auto: the fastest passing '
                            'path on CUDA, eager on CPU (default: %(default)s)')
    group.add_argument('--allow-pickle', action='store_true',
                       help='allow loading pickle (.bin/.ckpt) checkpoints; never do this with '
                            'files you do not trust')


def add_scale_arguments(parser):
    """Add the options that turn relative depth into metres (used for point clouds)."""
    group = parser.add_argument_group('metric depth (point clouds)')
    group.add_argument('--depth-scale-mode', default='range', choices=('range', 'fixed'),
                       help='range: map relative output onto [near, far] (an assumed scale); '
                            'fixed: apply --depth-scale / --depth-shift (default: range)')
    group.add_argument('--near-m', type=float, default=DEFAULT_NEAR_M,
                       help='near end of the range mode in metres (default: %(default)s)')
    group.add_argument('--far-m', type=float, default=DEFAULT_FAR_M,
                       help='far end of the range mode in metres (default: %(default)s)')
    group.add_argument('--depth-scale', type=float, default=1.0,
                       help='scale of the fixed mode (default: %(default)s)')
    group.add_argument('--depth-shift', type=float, default=0.0,
                       help='shift of the fixed mode (default: %(default)s)')


def check_model_arguments(args):
    """Return an error message for invalid model options, or None."""
    if not (args.depth_model or args.normal_model):
        return 'both --depth-model and --normal-model are disabled: nothing to compute'
    if args.processing_resolution < 0:
        return f'--processing-resolution must be >= 0, got {args.processing_resolution}'
    return None


def load_predictor(args):
    """
    Load the predictor the options describe.

    Returns the predictor, or None after printing the reason (missing weights, bad variant).
    """
    from genpercept_ros.model.predictor import GenPerceptPredictor
    from genpercept_ros.model.weights import WeightsError
    try:
        # 'auto' device and dtype are resolved by the model layer (model/runtime.py).
        predictor = GenPerceptPredictor.from_pretrained(
            depth_model=args.depth_model or None, normal_model=args.normal_model or None,
            model_root=args.model_root, device=args.device, dtype=args.dtype,
            allow_pickle=args.allow_pickle, acceleration=getattr(args, 'acceleration', 'eager'),
            warn=lambda message: print(f'genpercept: warning: {message}', file=sys.stderr))
    except (WeightsError, ValueError) as error:
        print(f'genpercept: cannot load the model: {error}', file=sys.stderr)
        return None
    return predictor


def scale_settings(args):
    """Return the keyword arguments of `relative_to_metric` chosen on the command line."""
    return {'mode': args.depth_scale_mode, 'near_m': args.near_m, 'far_m': args.far_m,
            'scale': args.depth_scale, 'shift': args.depth_shift}
