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
- ``<stem>_cloud.ply`` when intrinsics are known: points in the optical frame (metres from the
  chosen scale mode) with colours and normals. With ``--camera-info`` the full camera model
  is used: a raw (distorted) image is back-projected along its undistorted rays
  (``plumb_bob``, ``rational_polynomial``, ``equidistant``), a rectified one with P, decided by
  ``--input-rectified`` exactly as the node's ``input_rectified`` parameter.

Images are decoded as the node decodes messages (see ``sources.py``): the stored pixel grid
(EXIF orientation ignored, with a note) and 16-bit values reduced by ``v >> 8``.

A stem whose outputs all exist is skipped unless ``--overwrite``. Unreadable inputs are reported
and skipped; the exit status is then non-zero.
"""

import os
from pathlib import Path
import sys

import numpy as np

from .common import add_model_arguments
from .common import add_scale_arguments
from .common import check_model_arguments
from .common import load_predictor
from .common import scale_settings
from .sources import count_video_frames
from .sources import duplicate_stems
from .sources import expand_inputs
from .sources import InputError
from .sources import iter_video_frames
from .sources import read_image_rgb


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
    camera.add_argument('--input-rectified', default='auto', choices=('auto', 'true', 'false'),
                        help='with --camera-info: are the images rectified (P) or raw (K and '
                             'D)? auto: rectified exactly when every D coefficient is 0 '
                             '(default: %(default)s)')
    for name in ('fx', 'fy', 'cx', 'cy'):
        camera.add_argument(f'--{name}', type=float, default=None,
                            help=f'{name} in pixels of the input images')
    add_scale_arguments(parser)


class _Intrinsics:
    """Intrinsics for each image from a camera_info YAML or from fx, fy, cx, cy."""

    def __init__(self, camera_info=None, focal=None, input_rectified='auto'):
        self.camera_info = camera_info
        self.focal = focal
        self.input_rectified = input_rectified
        self.warned_sizes = set()

    @property
    def known(self):
        return self.camera_info is not None or self.focal is not None

    def for_output(self, input_size, output_size):
        from genpercept_ros.geometry.intrinsics import Intrinsics
        from genpercept_ros.messages.camera_info import resolve_camera_model
        (in_h, in_w), (out_h, out_w) = input_size, output_size
        if self.camera_info is not None:
            resolved = resolve_camera_model(self.camera_info, in_w, in_h, self.input_rectified)
            intrinsics = resolved.model
            if resolved.rescaled and (in_w, in_h) not in self.warned_sizes:
                self.warned_sizes.add((in_w, in_h))
                aspect = ('; the aspect ratio differs, check that the calibration belongs '
                          'to these images' if abs(resolved.scale_x - resolved.scale_y)
                          > 0.01 * resolved.scale_x else '')
                print(f'genpercept infer: note: the camera_info describes '
                      f'{resolved.info_width}x{resolved.info_height} images; its intrinsics '
                      f'are scaled to {in_w}x{in_h}{aspect}', file=sys.stderr)
        else:
            fx, fy, cx, cy = self.focal
            intrinsics = Intrinsics(fx=fx, fy=fy, cx=cx, cy=cy, width=in_w, height=in_h)
        if (out_h, out_w) != (in_h, in_w):
            intrinsics = intrinsics.scaled(out_w, out_h)
        return intrinsics


def _intrinsics_from_args(args):
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
        mode = getattr(args, 'input_rectified', 'auto')
        # Unusable calibrations and unsupported distortion models fail here, before any work.
        try:
            resolve_camera_model(info, info.width, info.height, mode).model.check_distortion()
        except ValueError as error:
            raise ValueError(f'{args.camera_info}: {error}') from None
        return _Intrinsics(camera_info=info, input_rectified=mode)
    if all(given):
        if focal[0] <= 0 or focal[1] <= 0:
            raise ValueError(f'--fx and --fy must be positive, got {focal[0]}, {focal[1]}')
        return _Intrinsics(focal=tuple(focal))
    return _Intrinsics()


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


class _Job:
    """One ``infer`` run: the predictor, the options and the counters."""

    def __init__(self, args, predictor, intrinsics, out_dir):
        self.args = args
        self.predictor = predictor
        self.intrinsics = intrinsics
        self.out_dir = out_dir
        self.tasks = tuple(t for t, on in (('depth', args.depth_model),
                                           ('normal', args.normal_model)) if on)
        self.cloud = intrinsics.known and 'depth' in self.tasks
        self.scale = scale_settings(args)
        self.done = self.skipped = self.failed = 0

    def names(self, stem):
        return output_names(stem, 'depth' in self.tasks, 'normal' in self.tasks,
                            self.args.save_raw, self.cloud)

    def finished(self, stem):
        if self.args.overwrite:
            return False
        return all((self.out_dir / name).is_file() for name in self.names(stem))

    def fail(self, message):
        self.failed += 1
        print(f'genpercept infer: error: {message}', file=sys.stderr)

    def process(self, batch):
        """Run the model on ``[(stem, rgb)]`` and save; isolate failures to single frames."""
        try:
            result = self.predictor.predict(
                [rgb for _, rgb in batch],
                processing_resolution=self.args.processing_resolution,
                output_resolution=self.args.output_resolution, tasks=self.tasks)
        except (ValueError, RuntimeError) as error:
            if len(batch) > 1:
                for frame in batch:
                    self.process([frame])
                return
            self.fail(f'{batch[0][0]}: inference failed: {error}')
            return
        for index, (stem, rgb) in enumerate(batch):
            try:
                self.save(stem, rgb, result, index)
            except (ValueError, OSError) as error:
                self.fail(f'{stem}: cannot save the outputs: {error}')
            else:
                self.done += 1

    def save(self, stem, rgb, result, index):
        from genpercept_ros.geometry.colorize import colorize_depth
        from genpercept_ros.geometry.colorize import normals_to_rgb
        out = self.out_dir
        depth = result.depth[index] if result.depth is not None else None
        normals = result.normals[index] if result.normals is not None else None
        if depth is not None:
            depth = np.asarray(depth, dtype=np.float32)
            _write_png(out / f'{stem}_depth.png', depth_to_png16(depth))
            _write_png(out / f'{stem}_depth_colored.png', colorize_depth(depth, 0.0, 1.0))
            _write_npy(out / f'{stem}_depth.npy', depth)
            if self.args.save_raw:
                # The predictor's raw output already has the reference's shape and dtype.
                _write_npy(out / f'{stem}_depth_raw.npy', np.asarray(result.depth_raw[index]))
        if normals is not None:
            normals = np.asarray(normals, dtype=np.float32)
            _write_png(out / f'{stem}_normals.png', normals_to_rgb(normals))
            _write_npy(out / f'{stem}_normals.npy', normals)
            if self.args.save_raw:
                _write_npy(out / f'{stem}_normal_raw.npy', np.asarray(result.normal_raw[index]))
        if self.cloud and depth is not None:
            self.save_cloud(out / f'{stem}_cloud.ply', rgb, depth, normals, result.depth_kind)

    def save_cloud(self, path, rgb, relative, normals, kind):
        import cv2
        from genpercept_ros.geometry.backproject import backproject
        from genpercept_ros.geometry.scale import relative_to_metric
        from .ply import write_ply
        out_h, out_w = relative.shape
        intrinsics = self.intrinsics.for_output(rgb.shape[:2], (out_h, out_w))
        if rgb.shape[:2] != (out_h, out_w):
            rgb = cv2.resize(rgb, (out_w, out_h), interpolation=cv2.INTER_AREA)
        metres = relative_to_metric(relative, kind, **self.scale)
        xyz = backproject(metres, intrinsics)
        _write_atomic(path, lambda target: write_ply(target, xyz, rgb, normals))


def _check_arguments(args):
    message = check_model_arguments(args)
    if message:
        return message
    if args.batch_size < 1:
        return f'--batch-size must be >= 1, got {args.batch_size}'
    if args.depth_scale_mode == 'range' and not 0 < args.near_m < args.far_m:
        return f'need 0 < --near-m < --far-m, got {args.near_m} and {args.far_m}'
    if args.depth_scale_mode == 'fixed' and not args.depth_scale > 0:
        return f'--depth-scale must be positive, got {args.depth_scale}'
    return None


OUTPUT_SUFFIXES = ('_depth.png', '_depth_colored.png', '_normals.png')


def _without_own_outputs(files, out_dir):
    """Drop images in the output folder that this command wrote (folders read in place)."""
    out_dir = out_dir.resolve()

    def ours(item):
        return (item.path.resolve().parent == out_dir
                and item.path.name.endswith(OUTPUT_SUFFIXES))
    kept = [item for item in files if not ours(item)]
    return kept, len(files) - len(kept)


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


def run(args):
    """Run ``genpercept infer``; return the exit status."""
    from tqdm import tqdm
    message = _check_arguments(args)
    if message:
        print(f'genpercept infer: error: {message}', file=sys.stderr)
        return 2
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
        print('genpercept infer: error: nothing to process', file=sys.stderr)
        return 2
    try:
        intrinsics = _intrinsics_from_args(args)
    except ValueError as error:
        print(f'genpercept infer: error: {error}', file=sys.stderr)
        return 2
    if not intrinsics.known:
        print('genpercept infer: note: no intrinsics given (--camera-info or --fx/--fy/--cx/'
              '--cy), so no point clouds are written', file=sys.stderr)
    elif not args.depth_model:
        print("genpercept infer: note: depth is disabled (--depth-model ''), so no point "
              'clouds are written', file=sys.stderr)
    out_dir = Path(args.output)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f'genpercept infer: error: cannot create the output folder: {error}',
              file=sys.stderr)
        return 2
    predictor = load_predictor(args)
    if predictor is None:
        return 2
    job = _Job(args, predictor, intrinsics, out_dir)
    total = sum(count_video_frames(f.path) if f.is_video else 1 for f in files)
    with tqdm(total=total, unit='frame', desc='genpercept infer') as progress:
        batch = []
        for frame in _frames(files, job, progress):
            batch.append(frame)
            if len(batch) == args.batch_size:
                job.process(batch)
                progress.update(len(batch))
                batch = []
        if batch:
            job.process(batch)
            progress.update(len(batch))
    print(f'genpercept infer: {job.done} written, {job.skipped} already done, '
          f'{job.failed} failed; outputs in {out_dir}')
    return 1 if job.failed or errors else 0
