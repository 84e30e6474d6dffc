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
``genpercept bag``: process a rosbag2 (sqlite3 or MCAP) into a new bag.

The new bag holds every original message unchanged plus, for each frame of the image topic, the
messages the node publishes (same `FramePipeline`, so the same types, headers and contents),
under the image topic's namespace (``/cam/image_raw`` -> ``/cam/depth/image``, ...), each
written with the bag time of its image.

Inputs come from beside the image topic whatever ``--output-namespace`` says: camera_info from
``<image namespace>/camera_info`` and the metric references from ``<image namespace>/reference/``.
With ``--camera-info-topic`` named explicitly, a bag without that topic is an error.
When the topic is only the default guess (``<image namespace>/camera_info``) and the bag lacks it,
depth and normals are still written, without point clouds or ``depth/camera_info``, and a
warning says so. Each image is paired with the camera_info of the same stamp, else the nearest.
``--camera-info FILE.yaml`` (camera_calibration format) supplies one for bags without any.

Random weights (a model root marked by ``genpercept make-tiny-weights``) are announced on stdout
and recorded in the output bag's metadata (``custom_data``: ``genpercept.predictions_meaningful``
``false`` and ``genpercept.random_weights`` with the reason).

``-p scale_mode=reference`` feeds ``<namespace>/reference/depth`` (+ ``reference/camera_info``)
or ``reference/points`` (``-p reference_type=points``) to the pipeline in bag order, exactly as
the node receives them when the bag is replayed.
"""

import bisect
from pathlib import Path
import shutil
import sys

from .bag_io import BagError
from .bag_io import BagReader
from .bag_io import BagWriter
from .bag_io import stamp_ns
from .common import add_model_arguments
from .common import add_parameter_arguments
from .common import check_model_arguments
from .common import load_predictor
from .common import node_parameters
from .common import pipeline_settings
from .common import random_weights_banner
from .common import random_weights_reason

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'


def add_arguments(parser):
    """Add the options of ``genpercept bag``."""
    parser.add_argument('input_bag', metavar='INPUT_BAG',
                        help='rosbag2 folder, or a single .db3 / .mcap file')
    parser.add_argument('-o', '--output', required=True, metavar='OUTPUT_BAG',
                        help='rosbag2 folder to create')
    parser.add_argument('--image-topic', required=True,
                        help='sensor_msgs/Image or sensor_msgs/CompressedImage topic, e.g. '
                             '/cam/image_raw or /cam/image_raw/compressed')
    parser.add_argument('--camera-info-topic', default=None,
                        help='CameraInfo topic (default: camera_info beside the image topic, '
                             'e.g. /cam/camera_info; when given explicitly it must exist in the '
                             'bag)')
    parser.add_argument('--camera-info', default=None, metavar='FILE.yaml',
                        help='camera_calibration YAML to use for every frame instead of a '
                             'camera_info topic (for bags recorded without one)')
    parser.add_argument('--output-namespace', default=None,
                        help='namespace of the output topics (default: that of the image topic, '
                             'e.g. /cam for /cam/image_raw); inputs are always read beside the '
                             'image topic')
    parser.add_argument('--storage', default='same', choices=('same', 'sqlite3', 'mcap'),
                        help='storage of the output bag (default: as the input)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace OUTPUT_BAG when it exists')
    add_model_arguments(parser)
    add_parameter_arguments(parser)


def split_image_topic(topic):
    """Return the namespace of an image topic: ``/cam/image_raw[/compressed]`` -> ``/cam``."""
    base = topic.rstrip('/')
    if base.endswith('/compressed'):
        base = base[:-len('/compressed')]
    parent = base.rsplit('/', 1)[0]
    return parent


def output_topic(namespace, relative):
    """Resolve a node-relative topic name in ``namespace``."""
    if relative.startswith('/'):
        return relative
    return f'{namespace.rstrip("/")}/{relative}'


class _CameraInfos:
    """All camera_info messages of the bag, looked up by header stamp."""

    def __init__(self, messages, fixed=None):
        self.fixed = fixed
        pairs = sorted(((stamp_ns(m.header.stamp), m) for m in messages), key=lambda p: p[0])
        self.stamps = [p[0] for p in pairs]
        self.messages = [p[1] for p in pairs]

    def nearest(self, stamp):
        if self.fixed is not None:
            return self.fixed
        if not self.messages:
            return None
        index = bisect.bisect_left(self.stamps, stamp)
        candidates = [i for i in (index - 1, index) if 0 <= i < len(self.stamps)]
        best = min(candidates, key=lambda i: abs(self.stamps[i] - stamp))
        return self.messages[best]


def _fixed_camera_info(args):
    """Return the CameraInfo of ``--camera-info`` or None (ValueError when unusable)."""
    if not args.camera_info:
        return None
    if args.camera_info_topic:
        raise ValueError('give either --camera-info or --camera-info-topic, not both')
    from .camera_yaml import load_camera_yaml
    return load_camera_yaml(args.camera_info).camera_info


def _plan(reader, args):
    """
    Check the topics; return ``(image_connection_type, info_topic, namespace)``.

    ``namespace`` is where the outputs go; the camera_info is looked up beside the image topic.
    """
    topics = reader.topics()
    image_type = topics.get(args.image_topic)
    if image_type is None:
        images = sorted(t for t, kind in topics.items() if kind in (IMAGE_TYPE, COMPRESSED_TYPE))
        raise BagError(f'the bag has no topic {args.image_topic!r}; image topics in it: '
                       f'{", ".join(images) or "none"}')
    if image_type not in (IMAGE_TYPE, COMPRESSED_TYPE):
        raise BagError(f'{args.image_topic} holds {image_type}, not {IMAGE_TYPE} or '
                       f'{COMPRESSED_TYPE}')
    camera_namespace = split_image_topic(args.image_topic)
    namespace = camera_namespace
    if args.output_namespace is not None:
        namespace = args.output_namespace
    if args.camera_info:
        return image_type, None, namespace
    info_topic = args.camera_info_topic or output_topic(camera_namespace, 'camera_info')
    info_type = topics.get(info_topic)
    if info_type is None:
        if args.camera_info_topic:
            raise BagError(f'the bag has no camera_info topic {info_topic!r}')
        info_topic = None
    elif info_type != CAMERA_INFO_TYPE:
        raise BagError(f'{info_topic} holds {info_type}, not {CAMERA_INFO_TYPE}')
    return image_type, info_topic, namespace


def _check_output_topics(reader, pipeline, namespace):
    existing = set(reader.topics())
    clashes = [output_topic(namespace, t) for t in pipeline.output_topics()
               if output_topic(namespace, t) in existing]
    if clashes:
        raise BagError(f'the input bag already holds output topics {", ".join(clashes)}; choose '
                       'another --output-namespace')


def reference_topics(args):
    """
    Return ``(reference topic, reference camera_info topic or None)`` or None (no mode).

    The references are inputs of the camera: they are read beside the image topic.
    """
    from genpercept_ros.pipeline import DEFAULTS
    namespace = split_image_topic(args.image_topic)
    params = node_parameters(args)
    if params.get('scale_mode', DEFAULTS['scale_mode']) != 'reference':
        return None
    if params.get('reference_type', DEFAULTS['reference_type']) == 'points':
        return output_topic(namespace, 'reference/points'), None
    return (output_topic(namespace, 'reference/depth'),
            output_topic(namespace, 'reference/camera_info'))


class _References:
    """Feed the metric reference messages of the bag to the pipeline."""

    def __init__(self, topics, pipeline, reader):
        self.topic, self.info_topic = topics if topics else (None, None)
        self.pipeline = pipeline
        self.reader = reader
        self.info = None

    def handle(self, record):
        """Consume ``record`` when it is a reference message; return whether it was one."""
        if record.topic not in (self.topic, self.info_topic):
            return False
        try:
            message = self.reader.deserialize(record)
            if record.topic == self.info_topic:
                self.info = message
            else:
                self.pipeline.add_reference(message, camera='', camera_info=self.info)
        except (BagError, TypeError) as error:
            print(f'genpercept bag: warning: reference message on {record.topic} at '
                  f'{record.timestamp} ns ignored: {error}', file=sys.stderr)
        return True


def _process(args, reader, writer, pipeline, namespace, infos):
    """Copy every message and add the pipeline's outputs; return ``(frames, failures)``."""
    from genpercept_ros.pipeline import decode_image
    from genpercept_ros.pipeline import Frame
    from tqdm import tqdm
    frames = failures = 0
    reported = set()
    references = _References(reference_topics(args), pipeline, reader)
    total = reader.message_count(args.image_topic)
    with tqdm(total=total, unit='frame', desc='genpercept bag') as progress:
        for record in reader.records():
            writer.copy(record)
            if references.handle(record) or record.topic != args.image_topic:
                continue
            progress.update(1)
            try:
                image = reader.deserialize(record)
            except BagError as error:
                failures += 1
                progress.write(f'genpercept bag: error: {error}')
                continue
            info = infos.nearest(stamp_ns(image.header.stamp))
            try:
                frame = Frame(rgb=decode_image(image), header=image.header, camera_info=info)
                [result] = pipeline.process([frame])
            except ValueError as error:
                failures += 1
                progress.write(f'genpercept bag: error: frame at {record.timestamp} ns: {error}')
                continue
            for kind, problem in result.problems:
                if kind not in reported:
                    reported.add(kind)
                    progress.write(f'genpercept bag: warning: {problem} (reported once)')
            for relative, message in result.outputs.items():
                writer.write_message(output_topic(namespace, relative), message, record.timestamp)
            frames += 1
    return frames, failures


def _error(message):
    print(f'genpercept bag: error: {message}', file=sys.stderr)
    return 2


def _check_output(args):
    """Return an error message when the output path cannot be (re)used, else None."""
    output = Path(args.output)
    if not output.exists():
        return None
    if not args.overwrite:
        return f'{output} exists (use --overwrite to replace it)'
    source = Path(args.input_bag).resolve()
    if output.resolve() == source or output.resolve() in source.parents:
        return f'--overwrite would delete the input bag {args.input_bag}'
    if output.is_dir() and not (output / 'metadata.yaml').is_file():
        return f'refusing to delete {output}: it is not a rosbag2 folder (no metadata.yaml)'
    return None


def _remove_output(output):
    if output.is_dir():
        shutil.rmtree(output)
    elif output.exists():
        output.unlink()


def run(args):
    """Run ``genpercept bag``; return the exit status."""
    from genpercept_ros.pipeline import FramePipeline
    message = check_model_arguments(args)
    if message:
        return _error(message)
    try:
        settings = pipeline_settings(args)
    except ValueError as error:
        return _error(error)
    message = _check_output(args)
    if message:
        return _error(message)
    output = Path(args.output)
    try:
        reader = BagReader(args.input_bag)
        reader.start()
    except BagError as error:
        return _error(error)
    try:
        try:
            _, info_topic, namespace = _plan(reader, args)
            infos = _CameraInfos(reader.read_all(info_topic) if info_topic else [],
                                 fixed=_fixed_camera_info(args))
        except (BagError, ValueError) as error:
            return _error(error)
        if info_topic is None and infos.fixed is None:
            print(f'genpercept bag: warning: the bag has no camera_info topic '
                  f'{output_topic(split_image_topic(args.image_topic), "camera_info")!r}: '
                  'writing depth and normals, but '
                  'no point clouds and no depth/camera_info (name the topic with '
                  '--camera-info-topic)', file=sys.stderr)
        references = reference_topics(args)
        if references and references[0] not in reader.topics():
            print(f'genpercept bag: warning: scale_mode is reference but the bag has no '
                  f'{references[0]}; depth falls back as the node does (last fit, then range)',
                  file=sys.stderr)
        random_reason = random_weights_reason(
            args.model_root, [name for name in (args.depth_model, args.normal_model) if name])
        predictor = load_predictor(args, 'bag')
        if predictor is None:
            return 2
        if random_reason:
            print(random_weights_banner('bag', random_reason), flush=True)
        pipeline = FramePipeline(predictor, settings)
        try:
            _check_output_topics(reader, pipeline, namespace)
            storage = reader.storage if args.storage == 'same' else args.storage
            _remove_output(output)
            writer = BagWriter(output, storage)
        except BagError as error:
            return _error(error)
        writer.set_custom_data('genpercept.predictions_meaningful',
                               'false' if random_reason else 'true')
        writer.set_custom_data('genpercept.random_weights', random_reason or '')
        writer.set_custom_data('genpercept.predictor', predictor.describe())
        try:
            frames, failures = _process(args, reader, writer, pipeline, namespace, infos)
        except BagError as error:
            writer.discard()
            print(f'genpercept bag: error: {error}; no output bag written', file=sys.stderr)
            return 1
        except BaseException:
            writer.discard()
            raise
        writer.close()
        for topic, msgtype in sorted(writer.undefined.items()):
            print(f'genpercept bag: note: {topic} ({msgtype}) has no message definition in the '
                  'input bag; its messages are copied unchanged without one', file=sys.stderr)
        for reason, count in writer.skipped.values():
            print(f'genpercept bag: error: {count} messages not copied: {reason}',
                  file=sys.stderr)
    finally:
        reader.finish()
    if writer.skipped:
        topics = ', '.join(sorted(reason.split(' ', 1)[0]
                                  for reason, _ in writer.skipped.values()))
        print(f'genpercept bag: error: {output} lacks the messages of {topics}',
              file=sys.stderr)
        return 1
    print(f'genpercept bag: {frames} frames processed, {failures} failed; wrote {output} '
          f'({storage}), outputs under {namespace or "/"}'
          + ('; RANDOM WEIGHTS: the outputs are NOT meaningful' if random_reason else ''))
    return 1 if failures else 0
