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
``genpercept infer``: GenPercept on images, folders, globs and video files.

Per image (or video frame ``<video stem>_<index:06d>``) it writes into the output folder:

- ``<stem>_depth.png``: 16-bit relative depth/disparity, ``(rel * 65535).astype(uint16)``
  (truncation, exactly the reference ``_pred.png``);
- ``<stem>_depth_colored.png``: Spectral colour map over [0, 1] (as the reference);
- ``<stem>_depth.npy``: relative output, HxW float32 in [0, 1];
- ``<stem>_normals.png``: ``(n + 1) / 2 * 255`` of the unit normals in the ROS optical frame
  (x right, y down, z forward), as the node's ``normals/colored``;
- ``<stem>_normals.npy``: those normals, HxWx3 float32, NaN where invalid;
- with ``--save-raw``: ``<stem>_depth_raw.npy`` / ``<stem>_normal_raw.npy``, the reference's
  ``_pred.npy`` (same shape, dtype and meaning);
- ``<stem>_cloud.ply`` when intrinsics are known: the node's ``points`` cloud of the frame
  (optical frame, metres from ``scale_mode``, after the depth filters), its colours and normals;
- ``summary.json``: the run (counts, node parameters, weights, ``predictions_meaningful``).

Every output comes from the node's frame pipeline (:class:`FramePipeline`) with the node's
parameters (``-p NAME=VALUE``; ``--depth-scale-mode``, ``--near-m``..., ``--input-rectified``
are aliases), so an image gives the same depth and cloud here as through ``genpercept_node`` or
``genpercept bag``. With ``--camera-info`` the full camera model is used, as by the node: a raw
(distorted) image is back-projected along its undistorted rays (``plumb_bob``,
``rational_polynomial``, ``equidistant``), a rectified one with P, decided by
``input_rectified``. A calibration of another aspect ratio than the images is refused (exit 1)
unless ``--allow-aspect-change``.

Images are decoded as the node decodes messages (see ``sources.py``): the stored pixel grid
(EXIF orientation ignored, with a note) and 16-bit values reduced by ``v >> 8``.

A stem whose outputs all exist is skipped unless ``--overwrite``. Unreadable inputs are reported
and skipped; the exit status is then non-zero.
"""

import json
import os
from pathlib import Path
import sys

import numpy as np

from .common import add_model_arguments
from .common import add_parameter_arguments
from .common import check_model_arguments
from .common import load_predictor
from .common import node_parameters
from .common import pipeline_settings
from .common import random_weights_banner
from .common import random_weights_reason
from .sources import count_video_frames
from .sources import duplicate_stems
from .sources import expand_inputs
from .sources import InputError
from .sources import iter_video_frames
from .sources import media_size
from .sources import read_image_rgb

SUMMARY_NAME = 'summary.json'


def add_arguments(parser):
    """Add the options of ``genpercept infer``."""
    parser.add_argument('inputs', nargs='+', metavar='INPUT',
                        help='image files, folders, glob patterns or video files')
    parser.add_argument('-o', '--output', required=True, metavar='DIR',
                        help='output folder (created if missing)')
    add_model_arguments(parser)
    parser.add_argument('--batch-size', type=int, default=1, metavar='N',
                        help='images per model call (default: %(default)s)')
    parser.add_argument('--save-raw', action='store_true',
                        help="also write the reference's raw _pred.npy arrays as "
                             '<stem>_depth_raw.npy / <stem>_normal_raw.npy')
    parser.add_argument('--overwrite', action='store_true',
                        help='recompute stems whose outputs already exist')
    camera = parser.add_argument_group('intrinsics (point clouds)')
    camera.add_argument('--camera-info', metavar='FILE.yaml',
                        help='camera_calibration YAML of the camera that took the images '
                             '(K, D, R, P and distortion_model are used)')
    camera.add_argument('--input-rectified', default=None, choices=('auto', 'true', 'false'),
                        help='= -p input_rectified=: with --camera-info, are the images '
                             'rectified (P) or raw (K and D)? auto: rectified exactly when every '
                             'D coefficient is 0 (default: auto)')
    camera.add_argument('--allow-aspect-change', action='store_true',
                        help='accept a --camera-info calibrated at another aspect ratio than '
                             'the images (each axis rescaled separately); refused otherwise')
    for name in ('fx', 'fy', 'cx', 'cy'):
        camera.add_argument(f'--{name}', type=float, default=None,
                            help=f'{name} in pixels of the input images')
    add_parameter_arguments(parser)


class _Cameras:
    """The CameraInfo of each image size, from a camera_info YAML or from fx, fy, cx, cy."""

    def __init__(self, camera_info=None, focal=None, source=None):
        self.camera_info = camera_info
        self.focal = focal
        self.source = source
        self._by_size = {}

    @property
    def known(self):
        return self.camera_info is not None or self.focal is not None

    def for_image(self, width, height):
        """Return the CameraInfo to pair with a ``width`` x ``height`` image (or None)."""
        if self.camera_info is not None or self.focal is None:
            return self.camera_info
        info = self._by_size.get((width, height))
        if info is None:
            from genpercept_ros.geometry.intrinsics import Intrinsics
            from genpercept_ros.messages.camera_info import intrinsics_to_camera_info
            from std_msgs.msg import Header
            fx, fy, cx, cy = self.focal
            info = intrinsics_to_camera_info(
                Intrinsics(fx=fx, fy=fy, cx=cx, cy=cy, width=width, height=height), Header())
            self._by_size[(width, height)] = info
        return info

    def size_problem(self, width, height, allow_aspect_change):
        """
        Return ``(error, note)`` for a ``width`` x ``height`` image and the YAML calibration.

        ``error`` (a refusal) when the aspect ratios differ and that is not allowed, else None;
        ``note`` when the intrinsics are rescaled.
        """
        from genpercept_ros.messages.camera_info import resolve_camera_info
        if self.camera_info is None:
            return None, None
        resolved = resolve_camera_info(self.camera_info, width, height)
        if not resolved.rescaled:
            return None, None
        described = (f'{self.source} describes {resolved.info_width}x{resolved.info_height} '
                     f'images')
        if np.isclose(resolved.scale_x, resolved.scale_y, rtol=1e-3):
            return None, f'{described}; its intrinsics are scaled to {width}x{height}'
        aspects = (f'aspect ratio {resolved.info_width / resolved.info_height:.4g} against '
                   f'{width / height:.4g} for {width}x{height} images')
        if allow_aspect_change:
            return None, (f'{described} ({aspects}); --allow-aspect-change: each axis is '
                          'rescaled separately')
        return (f'{described} ({aspects}): the clouds would be stretched. Use the calibration '
                'of these images, or --allow-aspect-change if the images were resized '
                'without cropping'), None


def _cameras_from_args(args, input_rectified):
    focal = [getattr(args, name) for name in ('fx', 'fy', 'cx', 'cy')]
    given = [v is not None for v in focal]
    if args.camera_info and any(given):
        raise ValueError('give either --camera-info or --fx/--fy/--cx/--cy, not both')
    if any(given) and not all(given):
        raise ValueError('--fx, --fy, --cx and --cy must be given together')
    if args.camera_info:
        from genpercept_ros.messages.camera_info import resolve_camera_model
        from .camera_yaml import load_camera_yaml
        info = load_camera_yaml(args.camera_info).camera_info
        # Unusable calibrations and unsupported distortion models fail here, before any work.
        try:
            resolve_camera_model(info, int(info.width), int(info.height),
                                 input_rectified).model.check_distortion()
        except ValueError as error:
            raise ValueError(f'{args.camera_info}: {error}') from None
        return _Cameras(camera_info=info, source=args.camera_info)
    if all(given):
        if focal[0] <= 0 or focal[1] <= 0:
            raise ValueError(f'--fx and --fy must be positive, got {focal[0]}, {focal[1]}')
        return _Cameras(focal=tuple(focal))
    return _Cameras()


def output_names(stem, depth, normals, save_raw, cloud):
    """Return the file names written for one stem with these outputs enabled."""
    names = []
    if depth:
        names += [f'{stem}_depth.png', f'{stem}_depth_colored.png', f'{stem}_depth.npy']
        names += [f'{stem}_depth_raw.npy'] if save_raw else []
    if normals:
        names += [f'{stem}_normals.png', f'{stem}_normals.npy']
        names += [f'{stem}_normal_raw.npy'] if save_raw else []
    if cloud:
        names.append(f'{stem}_cloud.ply')
    return names


def depth_to_png16(relative):
    """Quantise relative output in [0, 1] to uint16 exactly as the reference saves it."""
    return (np.asarray(relative, dtype=np.float32) * 65535.0).astype(np.uint16)


def _write_atomic(path, write):
    """Write via a temporary name: an interrupted run never leaves a complete-looking file."""
    partial = path.with_name(f'.{path.stem}.partial{path.suffix}')
    write(partial)
    os.replace(partial, path)


def _write_png(path, array):
    import cv2
    if array.ndim == 3:
        array = np.ascontiguousarray(array[:, :, ::-1])

    def write(target):
        if not cv2.imwrite(str(target), array):
            raise OSError(f'OpenCV could not write {target}')
    _write_atomic(path, write)


def _write_npy(path, array):
    _write_atomic(path, lambda target: np.save(target, array))


class _KeepPrediction:
    """
    The predictor, passed through, keeping its last prediction for ``--save-raw``.

    The pipeline builds messages from the post-processed outputs; the reference's raw arrays
    are only in the prediction itself.
    """

    def __init__(self, predictor):
        self._predictor = predictor
        self.last = None

    def __getattr__(self, name):
        return getattr(self._predictor, name)

    def predict(self, *args, **kwargs):
        self.last = self._predictor.predict(*args, **kwargs)
        return self.last


class _Job:
    """One ``infer`` run: the pipeline, the options and the counters."""

    def __init__(self, args, predictor, settings, cameras, out_dir):
        from genpercept_ros.pipeline import FramePipeline
        from genpercept_ros.pipeline.topics import NORMALS_TOPIC
        from genpercept_ros.pipeline.topics import POINTS_TOPIC
        from genpercept_ros.pipeline.topics import relative_topic
        self.args = args
        self.predictor = _KeepPrediction(predictor)
        self.pipeline = FramePipeline(self.predictor, settings)
        self.cameras = cameras
        self.out_dir = out_dir
        self.depth = self.pipeline.depth_kind is not None
        self.normals = self.pipeline.has_normals
        self.cloud = cameras.known and self.depth
        self.relative_topic = relative_topic(self.pipeline.depth_kind)
        wanted = ((self.relative_topic,) if self.depth else ()) + (
            (NORMALS_TOPIC,) if self.normals else ()) + ((POINTS_TOPIC,) if self.cloud else ())
        self.wanted = frozenset(wanted)
        self.done = self.skipped = self.failed = 0
        self.reported = set()

    def names(self, stem):
        return output_names(stem, self.depth, self.normals, self.args.save_raw, self.cloud)

    def finished(self, stem):
        if self.args.overwrite:
            return False
        return all((self.out_dir / name).is_file() for name in self.names(stem))

    def fail(self, message):
        self.failed += 1
        print(f'genpercept infer: error: {message}', file=sys.stderr)

    def process(self, batch, progress):
        """Run the pipeline on ``[(stem, rgb)]`` and save; isolate failures to single frames."""
        from genpercept_ros.pipeline import Frame
        from genpercept_ros.pipeline import INPUT_SIZE_PROBLEM
        from std_msgs.msg import Header
        frames = [Frame(rgb=rgb, header=Header(frame_id='camera'),
                        camera_info=self.cameras.for_image(rgb.shape[1], rgb.shape[0]),
                        wanted=self.wanted) for _, rgb in batch]
        self.predictor.last = None
        try:
            results = self.pipeline.process(frames)
        except (ValueError, RuntimeError) as error:
            if len(batch) > 1:
                for frame in batch:
                    self.process([frame], progress)
                return
            self.fail(f'{batch[0][0]}: inference failed: {error}')
            return
        index = 0      # position in the prediction: frames refused before it have none
        for (stem, _), result in zip(batch, results):
            refused = [text for kind, text in result.problems if kind == INPUT_SIZE_PROBLEM]
            if refused:
                self.fail(f'{stem}: {refused[0]}')
                continue
            for kind, problem in result.problems:
                if kind not in self.reported:
                    self.reported.add(kind)
                    progress.write(f'genpercept infer: warning: {problem} (reported once)')
            try:
                self.save(stem, result.outputs, index)
            except (ValueError, OSError) as error:
                self.fail(f'{stem}: cannot save the outputs: {error}')
            else:
                self.done += 1
            index += 1

    def save(self, stem, outputs, index):
        from genpercept_ros.geometry.colorize import colorize_depth
        from genpercept_ros.geometry.colorize import normals_to_rgb
        from genpercept_ros.messages.image import image_to_array
        from genpercept_ros.pipeline.topics import NORMALS_TOPIC
        from genpercept_ros.pipeline.topics import POINTS_TOPIC
        out = self.out_dir
        prediction = self.predictor.last
        if self.cloud and POINTS_TOPIC not in outputs:
            raise ValueError('the pipeline built no point cloud for this frame')
        if self.depth:
            depth = np.asarray(image_to_array(outputs[self.relative_topic]), dtype=np.float32)
            _write_png(out / f'{stem}_depth.png', depth_to_png16(depth))
            _write_png(out / f'{stem}_depth_colored.png', colorize_depth(depth, 0.0, 1.0))
            _write_npy(out / f'{stem}_depth.npy', depth)
            if self.args.save_raw:
                # The predictor's raw output already has the reference's shape and dtype.
                _write_npy(out / f'{stem}_depth_raw.npy', np.asarray(prediction.depth_raw[index]))
        if self.normals:
            normals = np.asarray(image_to_array(outputs[NORMALS_TOPIC]), dtype=np.float32)
            _write_png(out / f'{stem}_normals.png', normals_to_rgb(normals))
            _write_npy(out / f'{stem}_normals.npy', normals)
            if self.args.save_raw:
                _write_npy(out / f'{stem}_normal_raw.npy',
                           np.asarray(prediction.normal_raw[index]))
        if self.cloud:
            from genpercept_ros.messages.pointcloud import pointcloud_to_arrays
            from .ply import write_ply
            xyz, rgb, normals = pointcloud_to_arrays(outputs[POINTS_TOPIC])
            _write_atomic(out / f'{stem}_cloud.ply',
                          lambda target: write_ply(target, xyz, rgb, normals))


def _check_arguments(args):
    message = check_model_arguments(args)
    if message:
        return message
    if args.batch_size < 1:
        return f'--batch-size must be >= 1, got {args.batch_size}'
    return None


def _settings(args):
    """Return the pipeline settings of the command line (ValueError with the reason)."""
    settings = pipeline_settings(args)
    if settings.scale_mode == 'reference':
        raise ValueError("scale_mode 'reference' needs a metric reference per frame, which "
                         "images do not have: use 'range' or 'fixed' here, or genpercept bag "
                         'with reference topics')
    return settings


OUTPUT_SUFFIXES = ('_depth.png', '_depth_colored.png', '_normals.png')


def _without_own_outputs(files, out_dir):
    """Drop images in the output folder that this command wrote (folders read in place)."""
    out_dir = out_dir.resolve()

    def ours(item):
        return (item.path.resolve().parent == out_dir
                and item.path.name.endswith(OUTPUT_SUFFIXES))
    kept = [item for item in files if not ours(item)]
    return kept, len(files) - len(kept)


def _check_sizes(files, cameras, allow_aspect_change):
    """Return the refusal for an input whose size the calibration does not fit, else None."""
    notes = set()
    for item in files:
        size = media_size(item)
        if size is None:
            continue        # unreadable: reported when it is read
        error, note = cameras.size_problem(*size, allow_aspect_change)
        if error:
            return f'{item.path}: {error}'
        if note and note not in notes:
            notes.add(note)
            print(f'genpercept infer: note: {note}', file=sys.stderr)
    return None


def _frames(files, job, progress):
    """Yield ``(stem, rgb)`` of every frame still to compute; report unreadable inputs."""
    for item in files:
        if not item.is_video:
            if job.finished(item.stem):
                job.skipped += 1
                progress.update(1)
                continue
            try:
                rgb, note = read_image_rgb(item.path)
            except InputError as error:
                job.fail(str(error))
                progress.update(1)
                continue
            if note:
                progress.write(f'genpercept infer: note: {note}')
            yield item.stem, rgb
            continue
        try:
            for index, rgb in iter_video_frames(item.path):
                stem = f'{item.stem}_{index:06d}'
                if job.finished(stem):
                    job.skipped += 1
                    progress.update(1)
                    continue
                yield stem, rgb
        except InputError as error:
            job.fail(str(error))


def _write_summary(out_dir, args, job, random_reason):
    """Write ``summary.json``: counts, parameters and whether the outputs mean anything."""
    summary = {
        'predictions_meaningful': random_reason is None,
        'weights': {'model_root': args.model_root or 'Hugging Face cache',
                    'random_weights': random_reason,
                    'depth_model': args.depth_model or None,
                    'normal_model': args.normal_model or None},
        'predictor': job.predictor.describe(),
        'parameters': {'processing_resolution': args.processing_resolution,
                       'output_resolution': args.output_resolution,
                       **node_parameters(args)},
        'written': job.done, 'already_done': job.skipped, 'failed': job.failed,
    }
    text = json.dumps(summary, indent=2, allow_nan=False) + '\n'
    _write_atomic(out_dir / SUMMARY_NAME, lambda target: target.write_text(text))


def _error(message, status=2):
    print(f'genpercept infer: error: {message}', file=sys.stderr)
    return status


def run(args):
    """Run ``genpercept infer``; return the exit status."""
    from tqdm import tqdm
    message = _check_arguments(args)
    if message:
        return _error(message)
    try:
        settings = _settings(args)
    except ValueError as error:
        return _error(error)
    files, errors = expand_inputs(args.inputs)
    for error in errors:
        print(f'genpercept infer: error: {error}', file=sys.stderr)
    files, ours = _without_own_outputs(files, Path(args.output))
    if ours:
        print(f'genpercept infer: note: {ours} earlier outputs in {args.output} are not '
              'treated as inputs', file=sys.stderr)
    clashes = duplicate_stems(files)
    if clashes:
        for stem, paths in clashes.items():
            print(f'genpercept infer: error: inputs {", ".join(map(str, paths))} would all write '
                  f'{stem}_*; rename one or process them into different folders',
                  file=sys.stderr)
        return 2
    if not files:
        return _error('nothing to process')
    try:
        cameras = _cameras_from_args(args, settings.input_rectified)
    except ValueError as error:
        return _error(error)
    message = _check_sizes(files, cameras, args.allow_aspect_change)
    if message:
        return _error(message, status=1)
    if not cameras.known:
        print('genpercept infer: note: no intrinsics given (--camera-info or --fx/--fy/--cx/'
              '--cy), so no point clouds are written', file=sys.stderr)
    elif not args.depth_model:
        print("genpercept infer: note: depth is disabled (--depth-model ''), so no point "
              'clouds are written', file=sys.stderr)
    out_dir = Path(args.output)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return _error(f'cannot create the output folder: {error}')
    random_reason = random_weights_reason(
        args.model_root, [name for name in (args.depth_model, args.normal_model) if name])
    predictor = load_predictor(args, 'infer')
    if predictor is None:
        return 2
    if random_reason:
        print(random_weights_banner('infer', random_reason), flush=True)
    job = _Job(args, predictor, settings, cameras, out_dir)
    total = sum(count_video_frames(f.path) if f.is_video else 1 for f in files)
    with tqdm(total=total, unit='frame', desc='genpercept infer') as progress:
        batch = []
        for frame in _frames(files, job, progress):
            batch.append(frame)
            if len(batch) == args.batch_size:
                job.process(batch, progress)
                progress.update(len(batch))
                batch = []
        if batch:
            job.process(batch, progress)
            progress.update(len(batch))
    _write_summary(out_dir, args, job, random_reason)
    print(f'genpercept infer: {job.done} written, {job.skipped} already done, '
          f'{job.failed} failed; outputs in {out_dir}'
          + ('; RANDOM WEIGHTS: the outputs are NOT meaningful' if random_reason else ''))
    return 1 if job.failed or errors else 0
