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
Command-line options shared by the offline jobs: model choice, node parameters, loading.

``infer`` and ``bag`` take the node's parameters as ``-p NAME=VALUE`` (YAML-typed values, as
``ros2 run ... -p``), so a frame gives the same outputs whichever tool made it; the older
``--depth-scale-mode``/``--near-m``/... flags stay as aliases of ``scale_mode``/``near_m``/....
"""

import sys
import time


# Alias flag (argparse dest) -> node parameter (flags a tool lacks are skipped).
FLAG_ALIASES = {'depth_scale_mode': 'scale_mode', 'near_m': 'near_m', 'far_m': 'far_m',
                'depth_scale': 'depth_scale', 'depth_shift': 'depth_shift',
                'input_rectified': 'input_rectified'}

# Node parameters that have their own command-line option.
OPTION_PARAMETERS = {
    'model_root': '--model-root', 'depth_model': '--depth-model',
    'normal_model': '--normal-model', 'device': '--device', 'dtype': '--dtype',
    'allow_pickle': '--allow-pickle', 'processing_resolution': '--processing-resolution',
    'output_resolution': '--output-resolution', 'acceleration': '--acceleration',
    'decoder': '--decoder'}


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
    group.add_argument('--decoder', default='vae', choices=('vae', 'taesd'),
                       help="decoder of the VAE-decoded models: 'vae' (their own SD VAE) or "
                            "'taesd' (madebyollin/taesd, faster, less accurate; fetch it with "
                            'genpercept download --decoder taesd); DPT-head models ignore it '
                            '(default: %(default)s)')
    group.add_argument('--allow-pickle', action='store_true',
                       help='allow loading pickle (.bin/.ckpt) checkpoints; never do this with '
                            'files you do not trust')


def add_parameter_arguments(parser):
    """Add ``-p NAME=VALUE`` (node parameters) and the older scale flags as its aliases."""
    parser.add_argument('-p', '--param', action='append', default=[], metavar='NAME=VALUE',
                        help='node parameter for the outputs (scale_mode, near_m, far_m, '
                             'depth_scale, depth_shift, cloud_decimation, cloud_color, '
                             'min_range_m, ...; see config/genpercept.yaml), repeatable')
    group = parser.add_argument_group(
        'metric depth (aliases of -p scale_mode=, near_m=, far_m=, depth_scale=, depth_shift=)')
    group.add_argument('--depth-scale-mode', default=None, choices=('range', 'fixed'),
                       help='= -p scale_mode=: range maps relative output onto [near, far] (an '
                            'assumed scale); fixed applies depth_scale / depth_shift')
    group.add_argument('--near-m', type=float, default=None, help='= -p near_m=')
    group.add_argument('--far-m', type=float, default=None, help='= -p far_m=')
    group.add_argument('--depth-scale', type=float, default=None, help='= -p depth_scale=')
    group.add_argument('--depth-shift', type=float, default=None, help='= -p depth_shift=')


def parse_params(items):
    """Turn ``NAME=VALUE`` strings into a dict with YAML-typed values; ValueError on bad ones."""
    import yaml
    params = {}
    for item in items:
        name, sep, text = item.partition('=')
        name = name.strip()
        if not sep or not name:
            raise ValueError(f'--param expects NAME=VALUE, got {item!r}')
        if name in OPTION_PARAMETERS:
            raise ValueError(f'set {name} with {OPTION_PARAMETERS[name]}, not --param')
        try:
            params[name] = yaml.safe_load(text) if text.strip() else ''
        except yaml.YAMLError as error:
            raise ValueError(f'--param {name}: cannot parse {text!r} ({error})') from None
    return params


def node_parameters(args):
    """
    Return the node-parameter dict of the command line: ``-p`` values plus the alias flags.

    Raises ValueError for malformed ``-p`` items and for an alias that contradicts ``-p``.
    """
    params = parse_params(getattr(args, 'param', []))
    for dest, name in FLAG_ALIASES.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        flag = '--' + dest.replace('_', '-')
        if name in params and params[name] != value:
            raise ValueError(f'{flag} {value} contradicts -p {name}={params[name]}')
        params[name] = value
    return params


def pipeline_settings(args):
    """Return the `PipelineSettings` of the model options and node parameters (ValueError)."""
    from genpercept_ros.pipeline import PipelineSettings
    values = {'depth_model': args.depth_model, 'normal_model': args.normal_model,
              'processing_resolution': args.processing_resolution,
              'output_resolution': args.output_resolution}
    values.update(node_parameters(args))
    return PipelineSettings.from_parameters(values)


def check_model_arguments(args):
    """Return an error message for invalid model options, or None."""
    if not (args.depth_model or args.normal_model):
        return 'both --depth-model and --normal-model are disabled: nothing to compute'
    if args.processing_resolution < 0:
        return f'--processing-resolution must be >= 0, got {args.processing_resolution}'
    return None


def random_weights_reason(model_root, models):
    """
    Return why the weights ``models`` load from ``model_root`` are not meaningful, or None.

    The model layer's :func:`~genpercept_ros.model.weights.weights_origin` decides, as for the
    node and the demo: random (the folder carries the random-weights marker) or reduced size.
    Weights that cannot be found return None here: loading them reports that.
    """
    from genpercept_ros.model.weights import weights_origin
    from genpercept_ros.model.weights import WeightsError
    try:
        origin = weights_origin(model_root, models)
    except (WeightsError, ValueError):
        return None
    return None if origin.meaningful else origin.reason


def banner(lines, width=78):
    """Return a loud framed block of text, long lines wrapped."""
    import textwrap
    lines = [part for line in lines
             for part in (textwrap.wrap(line, width - 4, subsequent_indent='  ') or [''])]
    width = max(len(line) for line in lines) + 4
    rule = '!' * width
    return '\n'.join([rule] + [f'! {line.ljust(width - 4)} !' for line in lines] + [rule])


def random_weights_banner(tool, reason):
    """Return the loud block printed on stdout when a tool runs with random weights."""
    return banner([f'{tool.upper()}: OUTPUTS ARE NOT MEANINGFUL',
                   f'Random weights: {reason}.',
                   'Get the real weights: genpercept download --model-root DIR, then',
                   f'  genpercept {tool} ... --model-root DIR'])


class _LoadProgress:
    """A tqdm bar over the model's components, fed by the predictor's ``progress`` callback."""

    def __init__(self, tool):
        self.tool = tool
        self.bar = None

    def __call__(self, step, total, label):
        from tqdm import tqdm
        if self.bar is None:
            self.bar = tqdm(total=total, unit='part', desc=f'genpercept {self.tool}: loading',
                            file=sys.stdout)
        self.bar.set_postfix_str(label)
        self.bar.update(step - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def load_predictor(args, tool='infer'):
    """
    Load the predictor the options describe, saying what loads and showing a progress bar.

    Returns the predictor, or None after printing the reason (missing weights, bad variant).
    """
    from genpercept_ros.model.predictor import GenPerceptPredictor
    from genpercept_ros.model.runtime import resolve_device
    from genpercept_ros.model.runtime import resolve_dtype
    from genpercept_ros.model.weights import WeightsError
    models = ' + '.join(name for name in (args.depth_model, args.normal_model) if name)
    try:
        # 'auto' device and dtype are resolved by the model layer (model/runtime.py).
        device = resolve_device(args.device)
        dtype = resolve_dtype(args.dtype, device)
    except ValueError as error:
        print(f'genpercept {tool}: cannot load the model: {error}', file=sys.stderr)
        return None
    print(f'genpercept {tool}: loading {models} from {args.model_root or "the Hugging Face cache"}'
          f' on {device} ...', flush=True)
    progress = _LoadProgress(tool)
    started = time.monotonic()
    try:
        predictor = GenPerceptPredictor.from_pretrained(
            depth_model=args.depth_model or None, normal_model=args.normal_model or None,
            model_root=args.model_root, device=device, dtype=dtype,
            allow_pickle=args.allow_pickle, acceleration=args.acceleration,
            decoder=getattr(args, 'decoder', 'vae'),
            warn=lambda message: print(f'genpercept {tool}: warning: {message}', file=sys.stderr),
            progress=progress)
    except (WeightsError, ValueError) as error:
        progress.close()
        print(f'genpercept {tool}: cannot load the model: {error}', file=sys.stderr)
        return None
    progress.close()
    print(f'genpercept {tool}: loaded {predictor.describe()} in '
          f'{time.monotonic() - started:.1f} s', flush=True)
    return predictor
