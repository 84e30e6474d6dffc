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
The offline tools' first hour: each command a newcomer ran, with the outcome it must have.

``infer`` and ``bag`` agree on the same frame, both say when the weights are random and what
loads, ``bag`` finds camera_info beside the image topic and copies vendor messages of old bags,
``infer`` refuses a calibration of another aspect ratio.
"""

import argparse
import json
import shutil
import sqlite3

from genpercept_ros.offline import bag
from genpercept_ros.offline import infer
import numpy as np
from PIL import Image
import pytest
from rosbags.rosbag2 import Reader
from test_offline_bag import _rgb
from test_offline_bag import CX
from test_offline_bag import CY
from test_offline_bag import FX
from test_offline_bag import H
from test_offline_bag import read_bag
from test_offline_bag import RES
from test_offline_bag import TS
from test_offline_bag import W
from test_offline_bag import write_bag
import yaml

CAMERA_YAML = (
    f'image_width: {W}\nimage_height: {H}\ncamera_name: cam\n'
    f'camera_matrix: {{rows: 3, cols: 3, data: [{FX}, 0, {CX}, 0, {FX}, {CY}, 0, 0, 1]}}\n'
    'distortion_model: plumb_bob\n'
    'distortion_coefficients: {rows: 1, cols: 5, data: [0, 0, 0, 0, 0]}\n'
    'rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}\n'
    f'projection_matrix: {{rows: 3, cols: 4, data: [{FX}, 0, {CX}, 0, 0, {FX}, {CY}, 0, '
    '0, 0, 1, 0]}\n')


def _run(module, argv):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def _model(root):
    return ['--model-root', str(root), '--device', 'cpu', '--dtype', 'fp32',
            '--processing-resolution', str(RES)]


def read_ply(path):
    """Read a binary little-endian PLY's vertex table with numpy (independent of open3d)."""
    data = path.read_bytes()
    end = data.index(b'end_header\n') + len(b'end_header\n')
    header = data[:end].decode('ascii').splitlines()
    assert 'format binary_little_endian 1.0' in header
    count = next(int(line.split()[2]) for line in header if line.startswith('element vertex'))
    codes = {'float': '<f4', 'float32': '<f4', 'double': '<f8', 'float64': '<f8',
             'uchar': 'u1', 'uint8': 'u1'}
    fields = [(line.split()[2], codes[line.split()[1]]) for line in header
              if line.startswith('property')]
    return np.frombuffer(data, dtype=np.dtype(fields), count=count, offset=end)


def _cloud_arrays(msg):
    """Return ``(xyz, rgb, normals)`` of the finite points of a rosbags PointCloud2."""
    fields = {f.name: f.offset for f in msg.fields}
    step = msg.point_step
    raw = np.asarray(msg.data, dtype=np.uint8).reshape(-1, step)

    def column(name, dtype='<f4'):
        return raw[:, fields[name]:fields[name] + 4].copy().view(dtype)[:, 0]
    xyz = np.stack([column(n) for n in 'xyz'], axis=1)
    packed = column('rgb', '<u4')
    rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1)
    normals = np.stack([column(f'normal_{n}') for n in 'xyz'], axis=1)
    keep = np.isfinite(xyz).all(axis=1)
    return xyz[keep], rgb[keep].astype(np.uint8), normals[keep]


# Same frame, same outputs ----------------------------------------------------------------------

PARAMS = ['-p', 'far_m=7', '-p', 'near_m=1.5', '-p', 'flying_pixel_threshold=0.02',
          '-p', 'max_range_m=6.5', '-p', 'cloud_decimation=2']


@pytest.fixture(scope='module')
def same_frame(tiny_model_root, tmp_path_factory):
    """One camera frame through `genpercept infer` and through `genpercept bag`."""
    root = tmp_path_factory.mktemp('same_frame')
    source = root / 'in'
    image_topic = write_bag(source, 'sqlite3', frames=1)
    Image.fromarray(_rgb(0)).save(root / 'frame.png')
    (root / 'cam.yaml').write_text(CAMERA_YAML)
    assert _run(bag, [str(source), '-o', str(root / 'out'), '--image-topic', image_topic]
                + PARAMS + _model(tiny_model_root)) == 0
    assert _run(infer, [str(root / 'frame.png'), '-o', str(root / 'infer'), '--camera-info',
                        str(root / 'cam.yaml')] + PARAMS + _model(tiny_model_root)) == 0
    topics, _ = read_bag(root / 'out')
    return root, topics


def test_infer_and_bag_give_the_same_relative_depth(same_frame):
    root, topics = same_frame
    [(_, _, msg)] = topics['/cam/depth_relative/image'][1]
    from_bag = np.frombuffer(bytes(msg.data), dtype='<f4').reshape(H, W)
    np.testing.assert_array_equal(np.load(root / 'infer' / 'frame_depth.npy'), from_bag)


def test_infer_and_bag_give_the_same_cloud(same_frame):
    root, topics = same_frame
    [(_, _, msg)] = topics['/cam/points'][1]
    assert (msg.height, msg.width) == ((H + 1) // 2, (W + 1) // 2)   # cloud_decimation=2
    xyz, rgb, normals = _cloud_arrays(msg)
    # The parameters reach infer: range limits and the flying-pixel filter removed points.
    assert 0 < len(xyz) < msg.height * msg.width
    assert np.all((xyz[:, 2] >= 1.5 - 1e-5) & (xyz[:, 2] <= 6.5 + 1e-5))
    ply = read_ply(root / 'infer' / 'frame_cloud.ply')
    np.testing.assert_array_equal(np.stack([ply['x'], ply['y'], ply['z']], axis=1), xyz)
    np.testing.assert_array_equal(np.stack([ply['red'], ply['green'], ply['blue']], axis=1), rgb)
    np.testing.assert_allclose(np.stack([ply['nx'], ply['ny'], ply['nz']], axis=1), normals,
                               atol=1e-6)


def test_scale_flags_are_aliases_of_the_node_parameters(same_frame, tiny_model_root, tmp_path):
    root, _ = same_frame
    image = str(root / 'frame.png')
    camera = ['--camera-info', str(root / 'cam.yaml')]
    aliases = ['--near-m', '1.5', '--far-m', '7', '-p', 'flying_pixel_threshold=0.02',
               '-p', 'max_range_m=6.5', '-p', 'cloud_decimation=2']
    assert _run(infer, [image, '-o', str(tmp_path / 'a')] + camera + aliases
                + _model(tiny_model_root)) == 0
    first = read_ply(tmp_path / 'a' / 'frame_cloud.ply')
    np.testing.assert_array_equal(first, read_ply(root / 'infer' / 'frame_cloud.ply'))


def test_contradicting_alias_and_unknown_parameter_are_refused(
        same_frame, tiny_model_root, tmp_path, capsys):
    root, _ = same_frame
    base = [str(root / 'frame.png'), '-o', str(tmp_path)] + _model(tiny_model_root)
    assert _run(infer, base + ['--far-m', '8', '-p', 'far_m=9']) == 2
    assert '--far-m 8.0 contradicts -p far_m=9' in capsys.readouterr().err
    assert _run(infer, base + ['-p', 'no_such_parameter=1']) == 2
    assert 'no_such_parameter' in capsys.readouterr().err
    assert _run(infer, base + ['-p', 'scale_mode=reference']) == 2
    assert "'reference'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir()), 'refused before writing anything'


# Random weights and loading ---------------------------------------------------------------------

def _real_looking_root(tiny_model_root, tmp_path):
    """Copy the tiny checkpoints without the random-weights marker (as a real root looks)."""
    from genpercept_ros.model.tiny_weights import RANDOM_WEIGHTS_MARKER
    root = tmp_path / 'unmarked'
    shutil.copytree(tiny_model_root, root)
    (root / RANDOM_WEIGHTS_MARKER).unlink()
    return root


def test_infer_says_random_weights_loudly(
        same_frame, tiny_model_root, tmp_path, capsys, monkeypatch):
    root, _ = same_frame
    out = tmp_path / 'out'
    assert _run(infer, [str(root / 'frame.png'), '-o', str(out)]
                + _model(tiny_model_root)) == 0
    stdout = capsys.readouterr().out
    assert 'INFER: OUTPUTS ARE NOT MEANINGFUL' in stdout
    assert stdout.rstrip().endswith('RANDOM WEIGHTS: the outputs are NOT meaningful')
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['predictions_meaningful'] is False
    assert 'GENPERCEPT_RANDOM_WEIGHTS' in summary['weights']['random_weights']
    assert summary['written'] == 1 and summary['failed'] == 0
    # Without the marker the tiny UNets are still recognised by their size.
    unmarked = _real_looking_root(tiny_model_root, tmp_path)
    out = tmp_path / 'unmarked_out'
    assert _run(infer, [str(root / 'frame.png'), '-o', str(out)] + _model(unmarked)) == 0
    assert 'NOT MEANINGFUL' in capsys.readouterr().out
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['predictions_meaningful'] is False
    assert 'reduced-size' in summary['weights']['random_weights']
    # Weights the check accepts: no banner, meaningful in the summary.
    monkeypatch.setattr(infer, 'random_weights_reason', lambda *args: None)
    out = tmp_path / 'accepted_out'
    assert _run(infer, [str(root / 'frame.png'), '-o', str(out)] + _model(unmarked)) == 0
    assert 'NOT MEANINGFUL' not in capsys.readouterr().out
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['predictions_meaningful'] is True
    assert summary['weights']['random_weights'] is None


def _custom_data(bag_path):
    info = yaml.safe_load((bag_path / 'metadata.yaml').read_text())
    return info['rosbag2_bagfile_information'].get('custom_data') or {}


def test_bag_says_random_weights_loudly(tiny_model_root, tmp_path, capsys, monkeypatch):
    source = tmp_path / 'in'
    image_topic = write_bag(source, 'sqlite3', frames=1)
    out = tmp_path / 'out'
    assert _run(bag, [str(source), '-o', str(out), '--image-topic', image_topic]
                + _model(tiny_model_root)) == 0
    stdout = capsys.readouterr().out
    assert 'BAG: OUTPUTS ARE NOT MEANINGFUL' in stdout
    assert 'RANDOM WEIGHTS: the outputs are NOT meaningful' in stdout
    custom = _custom_data(out)
    assert custom['genpercept.predictions_meaningful'] == 'false'
    assert 'GENPERCEPT_RANDOM_WEIGHTS' in custom['genpercept.random_weights']
    unmarked = _real_looking_root(tiny_model_root, tmp_path)
    out = tmp_path / 'out2'
    assert _run(bag, [str(source), '-o', str(out), '--image-topic', image_topic]
                + _model(unmarked)) == 0
    assert 'NOT MEANINGFUL' in capsys.readouterr().out
    assert 'reduced-size' in _custom_data(out)['genpercept.random_weights']
    monkeypatch.setattr(bag, 'random_weights_reason', lambda *args: None)
    out = tmp_path / 'out3'
    assert _run(bag, [str(source), '-o', str(out), '--image-topic', image_topic]
                + _model(unmarked)) == 0
    assert 'NOT MEANINGFUL' not in capsys.readouterr().out
    assert _custom_data(out)['genpercept.predictions_meaningful'] == 'true'
    assert _custom_data(out)['genpercept.random_weights'] == ''


def test_tools_say_what_loads_before_loading(same_frame, tiny_model_root, tmp_path, capsys):
    root, _ = same_frame
    assert _run(infer, [str(root / 'frame.png'), '-o', str(tmp_path), '--normal-model', '']
                + _model(tiny_model_root)) == 0
    lines = capsys.readouterr().out.splitlines()
    loading = next(i for i, line in enumerate(lines) if 'loading depth-v2 from' in line)
    loaded = next(i for i, line in enumerate(lines) if 'loaded GenPercept depth=depth-v2' in line)
    assert str(tiny_model_root) in lines[loading] and 'cpu' in lines[loading]
    assert loading < loaded


def test_load_progress_reports_every_component(tiny_model_root):
    from genpercept_ros.model.predictor import GenPerceptPredictor
    calls = []
    GenPerceptPredictor.from_pretrained(
        depth_model='disparity-dpt-v2', normal_model='normal-v2', model_root=str(tiny_model_root),
        device='cpu', dtype='fp32', progress=lambda *call: calls.append(call))
    # Text encoder, VAE, two UNets and the DPT head, then the end.
    labels = [label for _, _, label in calls]
    assert labels == ['text encoder', 'VAE', 'disparity-dpt-v2 UNet', 'disparity-dpt-v2 DPT head',
                      'normal-v2 UNet', 'done']
    assert [done for done, _, _ in calls] == [0, 1, 2, 3, 4, 5]
    assert {total for _, total, _ in calls} == {5}


# bag: camera_info beside the image topic ---------------------------------------------------------

def test_output_namespace_keeps_camera_info_from_the_camera(tiny_model_root, tmp_path, capsys):
    source = tmp_path / 'in'
    image_topic = write_bag(source, 'sqlite3', frames=2)
    out = tmp_path / 'out'
    assert _run(bag, [str(source), '-o', str(out), '--image-topic', image_topic,
                      '--output-namespace', '/gp', '--normal-model', '']
                + _model(tiny_model_root)) == 0
    assert 'camera_info' not in capsys.readouterr().err
    topics, _ = read_bag(out)
    assert len(topics['/gp/points'][1]) == 2
    [(_, _, info), _] = topics['/gp/depth/camera_info'][1]
    assert list(info.k[[0, 2, 5]]) == [FX, CX, CY]
    assert not any(topic.startswith('/cam/depth') for topic in topics)


# bag: vendor messages of bags recorded without message definitions -------------------------------

STATUS_TYPE = 'acme_camera_msgs/msg/Status'


def write_humble_bag(path, frames=2):
    """
    Write a rosbag2 as ROS 2 Humble records it: metadata version 5, sqlite3 schema 3, no types.

    Holds ``/cam/image_raw``, ``/cam/camera_info`` and ``/cam/status``, a vendor type this
    machine has no definition of (its CDR bytes are arbitrary). Returns ``{topic: [bytes]}``.
    """
    path.mkdir()
    db = sqlite3.connect(path / 'humble_0.db3')
    db.executescript(
        'CREATE TABLE schema(schema_version INTEGER PRIMARY KEY, ros_distro TEXT NOT NULL);'
        "INSERT INTO schema VALUES(3, 'humble');"
        'CREATE TABLE metadata(id INTEGER PRIMARY KEY, metadata_version INTEGER NOT NULL,'
        ' metadata TEXT NOT NULL);'
        'CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,'
        ' serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL);'
        'CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL,'
        ' timestamp INTEGER NOT NULL, data BLOB NOT NULL);')
    topics = [('/cam/image_raw', 'sensor_msgs/msg/Image'),
              ('/cam/camera_info', 'sensor_msgs/msg/CameraInfo'), ('/cam/status', STATUS_TYPE)]
    for index, (name, msgtype) in enumerate(topics, start=1):
        db.execute('INSERT INTO topics VALUES(?, ?, ?, ?, ?)', (index, name, msgtype, 'cdr', ''))
    image_cls = TS.types['sensor_msgs/msg/Image']
    info_cls = TS.types['sensor_msgs/msg/CameraInfo']
    stamp_cls = TS.types['builtin_interfaces/msg/Time']
    header_cls = TS.types['std_msgs/msg/Header']
    roi = TS.types['sensor_msgs/msg/RegionOfInterest']
    written = {name: [] for name, _ in topics}
    t0 = 1_700_000_000_000_000_000
    for frame in range(frames):
        t = t0 + frame * 100_000_000
        header = header_cls(stamp=stamp_cls(sec=t // 10**9, nanosec=t % 10**9),
                            frame_id='cam_optical')
        image = image_cls(header=header, height=H, width=W, encoding='rgb8', is_bigendian=0,
                          step=W * 3, data=_rgb(frame).ravel())
        info = info_cls(header=header, height=H, width=W, distortion_model='plumb_bob',
                        d=np.zeros(5), k=np.array([FX, 0, CX, 0, FX, CY, 0, 0, 1.0]),
                        r=np.eye(3).ravel(),
                        p=np.array([FX, 0, CX, 0, 0, FX, CY, 0, 0, 0, 1, 0.0]), binning_x=0,
                        binning_y=0, roi=roi(x_offset=0, y_offset=0, height=0, width=0,
                                             do_rectify=False))
        status = b'\x00\x01\x00\x00' + bytes([frame, 7, 42, 0]) + b'vendor-bytes'
        for topic_id, (name, data, offset) in enumerate((
                ('/cam/image_raw', TS.serialize_cdr(image, image_cls.__msgtype__), 0),
                ('/cam/camera_info', TS.serialize_cdr(info, info_cls.__msgtype__), 1000),
                ('/cam/status', status, 2000)), start=1):
            db.execute('INSERT INTO messages(topic_id, timestamp, data) VALUES(?, ?, ?)',
                       (topic_id, t + offset, bytes(data)))
            written[name].append((t + offset, bytes(data)))
    db.commit()
    db.close()
    count = sum(len(v) for v in written.values())
    start = t0
    end = max(t for v in written.values() for t, _ in v)
    metadata = {'rosbag2_bagfile_information': {
        'version': 5, 'storage_identifier': 'sqlite3',
        'duration': {'nanoseconds': end - start},
        'starting_time': {'nanoseconds_since_epoch': start},
        'message_count': count,
        'topics_with_message_count': [
            {'topic_metadata': {'name': name, 'type': msgtype, 'serialization_format': 'cdr',
                                'offered_qos_profiles': ''},
             'message_count': len(written[name])} for name, msgtype in topics],
        'compression_format': '', 'compression_mode': '',
        'relative_file_paths': ['humble_0.db3'],
        'files': [{'path': 'humble_0.db3', 'starting_time': {'nanoseconds_since_epoch': start},
                   'duration': {'nanoseconds': end - start}, 'message_count': count}]}}
    (path / 'metadata.yaml').write_text(yaml.safe_dump(metadata, sort_keys=False))
    return written


def _raw_messages(path):
    """Return ``{topic: (msgtype, definition, [(time, bytes)])}`` read with rosbags."""
    topics = {}
    with Reader(path) as reader:
        for connection, timestamp, raw in reader.messages():
            entry = topics.setdefault(connection.topic,
                                      (connection.msgtype, connection.msgdef.data, []))
            entry[2].append((timestamp, bytes(raw)))
    return topics


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_vendor_messages_of_a_humble_bag_are_copied(tiny_model_root, tmp_path, capsys, storage):
    source = tmp_path / 'humble'
    written = write_humble_bag(source)
    with Reader(source) as reader:          # rosbags reads it as a bag without definitions
        assert {c.topic: c.msgtype for c in reader.connections}['/cam/status'] == STATUS_TYPE
        assert all(c.msgdef.data == '' and c.digest == '' for c in reader.connections)
    out = tmp_path / 'out'
    assert _run(bag, [str(source), '-o', str(out), '--image-topic', '/cam/image_raw',
                      '--storage', storage, '--normal-model', '']
                + _model(tiny_model_root)) == 0
    err = capsys.readouterr().err
    assert f'/cam/status ({STATUS_TYPE}) has no message definition' in err
    copied = _raw_messages(out)
    msgtype, definition, messages = copied['/cam/status']
    assert msgtype == STATUS_TYPE and definition == ''
    assert messages == written['/cam/status']          # same bytes at the same bag times
    assert copied['/cam/image_raw'][2] == written['/cam/image_raw']
    assert copied['/cam/camera_info'][2] == written['/cam/camera_info']
    # Standard types got their definitions from the typestore; the outputs are there.
    assert 'uint32 height' in copied['/cam/image_raw'][1]
    assert len(copied['/cam/points'][2]) == 2


def test_a_vendor_message_that_cannot_be_copied_fails_naming_the_topic(
        tiny_model_root, tmp_path, capsys, monkeypatch):
    from genpercept_ros.offline.bag_io import BagWriter
    from rosbags.rosbag2 import WriterError

    def refuse(self, source):
        raise WriterError('storage refused the connection')
    monkeypatch.setattr(BagWriter, '_add_undefined_connection', refuse)
    source = tmp_path / 'humble'
    write_humble_bag(source)
    assert _run(bag, [str(source), '-o', str(tmp_path / 'out'), '--image-topic',
                      '/cam/image_raw', '--normal-model', ''] + _model(tiny_model_root)) == 1
    err = capsys.readouterr().err
    assert f'2 messages not copied: /cam/status ({STATUS_TYPE})' in err
    assert 'lacks the messages of /cam/status' in err


# infer: a calibration of another aspect ratio ----------------------------------------------------

def _wide_calibration(path):
    """Write the camera calibrated at 2:1 (the images are 56x36, about 14:9)."""
    path.write_text(CAMERA_YAML.replace(f'image_width: {W}', 'image_width: 72'))
    return path


def test_calibration_of_another_aspect_ratio_is_refused(
        same_frame, tiny_model_root, tmp_path, capsys):
    root, _ = same_frame
    calibration = _wide_calibration(tmp_path / 'wide.yaml')
    out = tmp_path / 'out'
    assert _run(infer, [str(root / 'frame.png'), '-o', str(out), '--camera-info',
                        str(calibration)] + _model(tiny_model_root)) == 1
    captured = capsys.readouterr()
    assert f'describes 72x{H} images' in captured.err and f'for {W}x{H} images' in captured.err
    assert '--allow-aspect-change' in captured.err
    assert 'loading' not in captured.out, 'refused before the model loads'
    assert not out.exists()


def test_allow_aspect_change_rescales_each_axis(same_frame, tiny_model_root, tmp_path, capsys):
    root, _ = same_frame
    calibration = _wide_calibration(tmp_path / 'wide.yaml')
    out = tmp_path / 'out'
    assert _run(infer, [str(root / 'frame.png'), '-o', str(out), '--camera-info',
                        str(calibration), '--allow-aspect-change', '--normal-model', '']
                + _model(tiny_model_root)) == 0
    assert '--allow-aspect-change' in capsys.readouterr().err
    ply = read_ply(out / 'frame_cloud.ply')
    z = np.load(out / 'frame_depth.npy').astype(np.float64) * (10.0 - 0.5) + 0.5
    # x scaled by W / 72 with the pixel-centre convention: fx' = FX W / 72.
    sx = W / 72
    fx, cx = FX * sx, (CX + 0.5) * sx - 0.5
    v, u = np.mgrid[0:H, 0:W]
    np.testing.assert_allclose(ply['x'], ((u - cx) * z / fx).ravel(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ply['y'], ((v - CY) * z / FX).ravel(), rtol=1e-5, atol=1e-5)
