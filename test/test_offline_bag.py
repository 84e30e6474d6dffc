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
`genpercept bag` round trips on bags written here with rosbags (sqlite3 and MCAP).

The input bags are written and the output bags read with the rosbags typestore only, so the
checks do not depend on the tool's own (rclpy) serialization.
"""

import argparse

import cv2
from genpercept_ros.offline import bag
import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer
from rosbags.typesys import get_typestore
from rosbags.typesys import Stores

TS = get_typestore(Stores.LATEST)
H, W = 36, 56
RES = 64
FRAMES = 3
T0 = 1_700_000_000_000_000_000
STEP_NS = 100_000_000
FX, CX, CY = 40.0, 27.5, 17.5

# The node's outputs for a depth variant + normals with a camera_info (ARCHITECTURE.md §4).
REQUIRED_OUTPUTS = {
    '/cam/depth_relative/image': 'sensor_msgs/msg/Image',
    '/cam/depth/image': 'sensor_msgs/msg/Image',
    '/cam/depth/camera_info': 'sensor_msgs/msg/CameraInfo',
    '/cam/depth/colored': 'sensor_msgs/msg/Image',
    '/cam/normals/image': 'sensor_msgs/msg/Image',
    '/cam/normals/colored': 'sensor_msgs/msg/Image',
    '/cam/points': 'sensor_msgs/msg/PointCloud2',
    '/cam/depth/confidence': 'sensor_msgs/msg/Image',
    # The scale with the frame's header; /cam/scale is its deprecated header-less form.
    '/cam/depth/scale': 'diagnostic_msgs/msg/DiagnosticArray',
}
OPTIONAL_OUTPUTS = {'/cam/scale': 'std_msgs/msg/Float64MultiArray'}
# Outputs that need the camera_info (the confidence compares surfaces in 3-D).
CLOUD_TOPICS = {'/cam/points', '/cam/depth/camera_info', '/cam/depth/confidence'}


def _types(name):
    return TS.types[name]


def _header(t):
    header, time = _types('std_msgs/msg/Header'), _types('builtin_interfaces/msg/Time')
    return header(stamp=time(sec=t // 10**9, nanosec=t % 10**9), frame_id='cam_optical')


def _rgb(index):
    return np.random.default_rng(index).integers(0, 256, (H, W, 3), dtype=np.uint8)


def write_bag(path, storage, compressed=False, camera_info=True, frames=FRAMES, references=None):
    """
    Write a camera bag: image (raw or png), camera_info, and an unrelated /chatter topic.

    ``references`` (list of HxW float32 metres per frame) adds ``/cam/reference/depth``.
    """
    image_type = 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'
    image_topic = '/cam/image_raw/compressed' if compressed else '/cam/image_raw'
    info_cls = _types('sensor_msgs/msg/CameraInfo')
    roi = _types('sensor_msgs/msg/RegionOfInterest')
    string = _types('std_msgs/msg/String')
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        image_conn = writer.add_connection(image_topic, image_type, typestore=TS)
        info_conn = writer.add_connection('/cam/camera_info', info_cls.__msgtype__,
                                          typestore=TS) if camera_info else None
        chat_conn = writer.add_connection('/chatter', string.__msgtype__, typestore=TS)
        image_cls = _types('sensor_msgs/msg/Image')
        ref_conn = writer.add_connection('/cam/reference/depth', image_cls.__msgtype__,
                                         typestore=TS) if references is not None else None
        for index in range(frames):
            t = T0 + index * STEP_NS
            header = _header(t)
            rgb = _rgb(index)
            if compressed:
                ok, png = cv2.imencode('.png', rgb[:, :, ::-1])
                assert ok
                msg = _types(image_type)(header=header, format='rgb8; png compressed bgr8',
                                         data=png.ravel())
            else:
                msg = _types(image_type)(header=header, height=H, width=W, encoding='rgb8',
                                         is_bigendian=0, step=W * 3, data=rgb.ravel())
            if camera_info:
                info = info_cls(
                    header=header, height=H, width=W, distortion_model='plumb_bob',
                    d=np.zeros(5), k=np.array([FX, 0, CX, 0, FX, CY, 0, 0, 1.0]),
                    r=np.eye(3).ravel(), p=np.array([FX, 0, CX, 0, 0, FX, CY, 0, 0, 0, 1, 0.0]),
                    binning_x=0, binning_y=0,
                    roi=roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
                # camera_info recorded just after its image, as drivers usually do.
                writer.write(info_conn, t + 1000, TS.serialize_cdr(info, info_cls.__msgtype__))
            if references is not None:
                depth = np.ascontiguousarray(references[index], dtype='<f4')
                ref = image_cls(header=header, height=H, width=W, encoding='32FC1',
                                is_bigendian=0, step=W * 4, data=depth.view(np.uint8).ravel())
                writer.write(ref_conn, t - 1000, TS.serialize_cdr(ref, image_cls.__msgtype__))
            writer.write(image_conn, t, TS.serialize_cdr(msg, image_type))
            writer.write(chat_conn, t + 5, TS.serialize_cdr(string(data=f'hello {index}'),
                                                            string.__msgtype__))
    return image_topic


def read_bag(path):
    """Return ``{topic: (msgtype, [(bag_time, raw, message)])}`` and the storage identifier."""
    topics = {}
    with Reader(path) as reader:
        for connection, timestamp, raw in reader.messages():
            entry = topics.setdefault(connection.topic, (connection.msgtype, []))
            entry[1].append((timestamp, bytes(raw),
                             TS.deserialize_cdr(raw, connection.msgtype)))
    storage = 'mcap' if list(path.glob('*.mcap')) else 'sqlite3'
    return topics, storage


def _run(argv):
    parser = argparse.ArgumentParser()
    bag.add_arguments(parser)
    return bag.run(parser.parse_args(argv))


def _model(model_root):
    return ['--model-root', str(model_root), '--device', 'cpu', '--dtype', 'fp32',
            '--processing-resolution', str(RES)]


def _depth_only(model_root):
    return _model(model_root) + ['--normal-model', '']


def _stamp(msg):
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_round_trip(tmp_path, tiny_model_root, storage):
    source, output = tmp_path / 'in', tmp_path / 'out'
    image_topic = write_bag(source, storage)
    assert _run([str(source), '-o', str(output), '--image-topic', image_topic]
                + _model(tiny_model_root)) == 0
    original, _ = read_bag(source)
    result, out_storage = read_bag(output)
    assert out_storage == storage
    # Every original message is kept: same type, bag times and bytes.
    for topic, (msgtype, messages) in original.items():
        assert result[topic][0] == msgtype
        kept = [(t, raw) for t, raw, _ in result[topic][1]]
        assert kept == [(t, raw) for t, raw, _ in messages]
    added = {topic: entry for topic, entry in result.items() if topic not in original}
    assert set(REQUIRED_OUTPUTS) <= set(added)
    assert set(added) <= set(REQUIRED_OUTPUTS) | set(OPTIONAL_OUTPUTS)
    image_times = [t for t, _, _ in original[image_topic][1]]
    image_stamps = [_stamp(m) for _, _, m in original[image_topic][1]]
    for topic, (msgtype, messages) in added.items():
        assert msgtype == {**REQUIRED_OUTPUTS, **OPTIONAL_OUTPUTS}[topic]
        assert len(messages) == FRAMES, topic
        assert [t for t, _, _ in messages] == image_times, topic
        if hasattr(messages[0][2], 'header'):
            assert [_stamp(m) for _, _, m in messages] == image_stamps, topic
            assert {m.header.frame_id for _, _, m in messages} == {'cam_optical'}, topic
    relative = added['/cam/depth_relative/image'][1][0][2]
    assert (relative.encoding, relative.height, relative.width) == ('32FC1', H, W)
    cloud = added['/cam/points'][1][0][2]
    assert (cloud.height, cloud.width) == (H, W)
    assert [f.name for f in cloud.fields][:3] == ['x', 'y', 'z']
    info = added['/cam/depth/camera_info'][1][0][2]
    assert (info.width, info.height) == (W, H)
    np.testing.assert_allclose(info.k, [FX, 0, CX, 0, FX, CY, 0, 0, 1])


def test_outputs_come_from_the_recorded_images(tmp_path, tiny_model_root):
    from genpercept_ros.model.predictor import GenPerceptPredictor
    source, output = tmp_path / 'in', tmp_path / 'out'
    image_topic = write_bag(source, 'sqlite3', frames=2)
    assert _run([str(source), '-o', str(output), '--image-topic', image_topic]
                + _depth_only(tiny_model_root)) == 0
    result, _ = read_bag(output)
    predictor = GenPerceptPredictor.from_pretrained(
        depth_model='depth-v2', normal_model='normal-v2', model_root=str(tiny_model_root),
        device='cpu', dtype='fp32')
    for index, (_, _, msg) in enumerate(result['/cam/depth_relative/image'][1]):
        relative = np.frombuffer(bytes(msg.data), dtype=np.float32).reshape(H, W)
        # Depth alone, as the bag ran (with both tasks the decoder runs one batched call, whose
        # kernels may differ in the last bits).
        expected = predictor.predict([_rgb(index)], processing_resolution=RES,
                                     tasks=('depth',)).depth[0]
        np.testing.assert_allclose(relative, expected, atol=1e-6)


def test_compressed_input_and_storage_conversion(tmp_path, tiny_model_root):
    source, output = tmp_path / 'in', tmp_path / 'out'
    image_topic = write_bag(source, 'sqlite3', compressed=True, frames=2)
    assert image_topic == '/cam/image_raw/compressed'
    assert _run([str(source), '-o', str(output), '--image-topic', image_topic, '--storage',
                 'mcap'] + _model(tiny_model_root)) == 0
    result, storage = read_bag(output)
    assert storage == 'mcap'
    assert set(REQUIRED_OUTPUTS) <= set(result)
    assert len(result['/cam/points'][1]) == 2


def test_without_camera_info_depth_and_normals_only(tmp_path, tiny_model_root, capsys):
    source, output = tmp_path / 'in', tmp_path / 'out'
    image_topic = write_bag(source, 'mcap', camera_info=False, frames=2)
    assert _run([str(source), '-o', str(output), '--image-topic', image_topic]
                + _model(tiny_model_root)) == 0
    assert 'no camera_info topic' in capsys.readouterr().err
    result, _ = read_bag(output)
    for topic in set(REQUIRED_OUTPUTS) - CLOUD_TOPICS:
        assert len(result[topic][1]) == 2, topic
    assert not CLOUD_TOPICS & set(result)


def test_camera_info_from_a_yaml_file(tmp_path, tiny_model_root):
    source, output = tmp_path / 'in', tmp_path / 'out'
    image_topic = write_bag(source, 'sqlite3', camera_info=False, frames=1)
    yaml_path = tmp_path / 'cam.yaml'
    yaml_path.write_text(f'image_width: {W}\nimage_height: {H}\ncamera_name: cam\n'
                         'camera_matrix: {rows: 3, cols: 3, '
                         f'data: [{FX}, 0, {CX}, 0, {FX}, {CY}, 0, 0, 1]}}\n')
    assert _run([str(source), '-o', str(output), '--image-topic', image_topic,
                 '--camera-info', str(yaml_path)] + _depth_only(tiny_model_root)) == 0
    result, _ = read_bag(output)
    assert len(result['/cam/points'][1]) == 1
    info = result['/cam/depth/camera_info'][1][0][2]
    np.testing.assert_allclose(info.k, [FX, 0, CX, 0, FX, CY, 0, 0, 1])


def test_named_camera_info_topic_must_exist(tmp_path, tiny_model_root, capsys):
    source = tmp_path / 'in'
    image_topic = write_bag(source, 'mcap', camera_info=False, frames=1)
    status = _run([str(source), '-o', str(tmp_path / 'out'), '--image-topic', image_topic,
                   '--camera-info-topic', '/cam/camera_info'] + _model(tiny_model_root))
    assert status == 2
    assert "no camera_info topic '/cam/camera_info'" in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_missing_image_topic_lists_the_image_topics(tmp_path, tiny_model_root, capsys):
    source = tmp_path / 'in'
    write_bag(source, 'sqlite3', frames=1)
    status = _run([str(source), '-o', str(tmp_path / 'out'), '--image-topic', '/cam/color']
                  + _model(tiny_model_root))
    assert status == 2
    err = capsys.readouterr().err
    assert "no topic '/cam/color'" in err and '/cam/image_raw' in err
    status = _run([str(source), '-o', str(tmp_path / 'out'), '--image-topic', '/chatter']
                  + _model(tiny_model_root))
    assert status == 2
    assert 'std_msgs/msg/String' in capsys.readouterr().err


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_truncated_bag_is_a_clear_error(tmp_path, tiny_model_root, capsys, storage):
    source = tmp_path / 'in'
    image_topic = write_bag(source, storage)
    [data_file] = [p for p in source.iterdir() if p.suffix in ('.db3', '.mcap')]
    data_file.write_bytes(data_file.read_bytes()[:data_file.stat().st_size // 2])
    status = _run([str(source), '-o', str(tmp_path / 'out'), '--image-topic', image_topic]
                  + _model(tiny_model_root))
    assert status != 0
    assert 'truncated or corrupt' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_existing_output_needs_overwrite(tmp_path, tiny_model_root, capsys):
    source, output = tmp_path / 'in', tmp_path / 'out'
    image_topic = write_bag(source, 'sqlite3', frames=1)
    write_bag(output, 'sqlite3', frames=1)
    argv = [str(source), '-o', str(output), '--image-topic', image_topic]
    argv += _depth_only(tiny_model_root)
    assert _run(argv) == 2
    assert '--overwrite' in capsys.readouterr().err
    assert _run(argv + ['--overwrite']) == 0
    result, _ = read_bag(output)
    assert len(result['/cam/depth/image'][1]) == 1


def test_overwrite_never_deletes_what_is_not_an_output_bag(tmp_path, tiny_model_root, capsys):
    source = tmp_path / 'in'
    image_topic = write_bag(source, 'sqlite3', frames=1)
    precious = tmp_path / 'precious'
    precious.mkdir()
    (precious / 'notes.txt').write_text('keep me')
    for target, fragment in ((precious, 'not a rosbag2 folder'), (tmp_path, 'input bag'),
                             (source, 'input bag')):
        argv = [str(source), '-o', str(target), '--image-topic', image_topic, '--overwrite']
        assert _run(argv + _model(tiny_model_root)) == 2
        assert fragment in capsys.readouterr().err
    assert (precious / 'notes.txt').read_text() == 'keep me'
    assert (source / 'metadata.yaml').is_file()


def test_node_parameters_shape_the_outputs(tmp_path, tiny_model_root, capsys):
    source, output = tmp_path / 'in', tmp_path / 'out'
    image_topic = write_bag(source, 'sqlite3', frames=1)
    argv = [str(source), '-o', str(output), '--image-topic', image_topic, '-p',
            'cloud_decimation=2', '-p', 'scale_mode=fixed', '-p', 'depth_scale=3.0']
    assert _run(argv + _depth_only(tiny_model_root)) == 0
    result, _ = read_bag(output)
    cloud = result['/cam/points'][1][0][2]
    assert (cloud.height, cloud.width) == (H // 2, W // 2)
    relative = result['/cam/depth_relative/image'][1][0][2]
    metric = result['/cam/depth/image'][1][0][2]
    r = np.frombuffer(bytes(relative.data), dtype=np.float32)
    d = np.frombuffer(bytes(metric.data), dtype=np.float32)
    ok = np.isfinite(d)
    np.testing.assert_allclose(d[ok], 3.0 * r[ok], rtol=1e-5)
    bad = [str(source), '-o', str(tmp_path / 'bad'), '--image-topic', image_topic, '-p',
           'near_m=20']
    assert _run(bad + _depth_only(tiny_model_root)) == 2
    assert 'near_m' in capsys.readouterr().err
    assert _run(bad[:-1] + ['depth_model=depth-v1'] + _depth_only(tiny_model_root)) == 2
    assert '--depth-model' in capsys.readouterr().err


def _image_array(msg):
    return np.frombuffer(bytes(msg.data), dtype=np.float32).reshape(msg.height, msg.width)


def test_reference_scale_mode_fits_the_recorded_reference(tmp_path, tiny_model_root):
    # First pass: the relative output of each frame. Second pass: a metric reference made from
    # it with a known affine map, which the reference mode must recover.
    first, first_out = tmp_path / 'first', tmp_path / 'first_out'
    image_topic = write_bag(first, 'sqlite3', frames=2)
    assert _run([str(first), '-o', str(first_out), '--image-topic', image_topic]
                + _depth_only(tiny_model_root)) == 0
    relatives = [_image_array(m) for _, _, m in
                 read_bag(first_out)[0]['/cam/depth_relative/image'][1]]
    scale, shift = 4.0, 0.75
    references = [scale * r + shift for r in relatives]
    source, output = tmp_path / 'in', tmp_path / 'out'
    write_bag(source, 'mcap', frames=2, references=references)
    assert _run([str(source), '-o', str(output), '--image-topic', image_topic,
                 '-p', 'scale_mode=reference', '-p', 'fit_min_points=20']
                + _depth_only(tiny_model_root)) == 0
    result, _ = read_bag(output)
    assert len(result['/cam/reference/depth'][1]) == 2
    for (_, _, depth), expected in zip(result['/cam/depth/image'][1], references):
        np.testing.assert_allclose(_image_array(depth), expected, rtol=1e-3)
    fitted = np.asarray(result['/cam/scale'][1][-1][2].data)
    np.testing.assert_allclose(fitted[:2], [scale, shift], rtol=1e-3, atol=1e-3)


def test_unknown_type_without_definition_is_copied_without_one(tmp_path):
    from genpercept_ros.offline.bag_io import BagWriter
    from genpercept_ros.offline.bag_io import Record
    from rosbags.interfaces import Connection
    from rosbags.interfaces import ConnectionExtRosbag2
    from rosbags.interfaces import MessageDefinition
    from rosbags.interfaces import MessageDefinitionFormat
    ext = ConnectionExtRosbag2(serialization_format='cdr', offered_qos_profiles=[])
    empty = MessageDefinition(MessageDefinitionFormat.NONE, '')

    def connection(cid, topic, msgtype):
        return Connection(id=cid, topic=topic, msgtype=msgtype, msgdef=empty, digest='',
                          msgcount=1, ext=ext, owner=None)
    string = _types('std_msgs/msg/String')
    data = TS.serialize_cdr(string(data='x'), string.__msgtype__)
    writer = BagWriter(tmp_path / 'out', 'sqlite3')
    # A standard type without a stored definition gets it from the typestore ...
    writer.copy(Record(connection(1, '/chatter', 'std_msgs/msg/String'), 5, data))
    # ... a custom one is copied as bytes under its type, with an empty definition.
    writer.copy(Record(connection(2, '/custom', 'my_pkg/msg/Thing'), 6, b'\x00\x01\x00\x00'))
    writer.copy(Record(connection(2, '/custom', 'my_pkg/msg/Thing'), 7, b'\x00\x01\x00\x02'))
    writer.close()
    assert writer.skipped == {} and writer.undefined == {'/custom': 'my_pkg/msg/Thing'}
    with Reader(tmp_path / 'out') as reader:
        types = {c.topic: (c.msgtype, c.msgdef.data) for c in reader.connections}
        custom = [(t, bytes(raw)) for c, t, raw in reader.messages() if c.topic == '/custom']
    assert types['/custom'] == ('my_pkg/msg/Thing', '')
    assert types['/chatter'][1].strip() == 'string data'
    assert custom == [(6, b'\x00\x01\x00\x00'), (7, b'\x00\x01\x00\x02')]


@pytest.mark.parametrize('storage, suffix', [('mcap', '.mcap'), ('sqlite3', '.db3')])
def test_single_storage_file_as_input(tmp_path, tiny_model_root, storage, suffix):
    source = tmp_path / 'in'
    image_topic = write_bag(source, storage, frames=1)
    [data_file] = source.glob(f'*{suffix}')
    output = tmp_path / 'out'
    assert _run([str(data_file), '-o', str(output), '--image-topic', image_topic]
                + _depth_only(tiny_model_root)) == 0
    result, out_storage = read_bag(output)
    assert out_storage == storage
    assert len(result['/cam/depth/image'][1]) == 1


def test_acceleration_option_on_cpu_warns_once_and_serves_eager(tmp_path, tiny_model_root,
                                                                capsys):
    source, output = tmp_path / 'in', tmp_path / 'out'
    image_topic = write_bag(source, 'mcap', camera_info=False, frames=2)
    assert _run([str(source), '-o', str(output), '--image-topic', image_topic,
                 '--acceleration', 'compile+cuda_graphs'] + _model(tiny_model_root)) == 0
    err = capsys.readouterr().err
    assert err.count("acceleration 'compile+cuda_graphs'") == 1 and 'serving eager' in err
    result, _ = read_bag(output)
    for topic in set(REQUIRED_OUTPUTS) - CLOUD_TOPICS:
        assert len(result[topic][1]) == 2, topic
