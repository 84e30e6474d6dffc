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

"""`genpercept demo` in its short mode: real rclpy, synthetic camera, node, recorder."""

import argparse
import json

import cv2
from genpercept_ros.model.registry import get_model_spec
from genpercept_ros.model.registry import REPO_FOLDERS
from genpercept_ros.offline.demo import command as demo
from genpercept_ros.offline.demo import results
import matplotlib
import numpy as np
from plyfile import PlyData
import pytest
from rosbags.rosbag2 import Reader
from rosbags.typesys import get_typestore
from rosbags.typesys import Stores
import yaml

FRAMES = 6

pytestmark = pytest.mark.ros


def _run(argv):
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    return demo.run(parser.parse_args(argv))


@pytest.fixture(scope='module')
def short_demo(tmp_path_factory):
    """Run the short demo with no weights available: it must fall back to tiny weights."""
    root = tmp_path_factory.mktemp('demo')
    out = root / 'demo_output'
    argv = ['--short', '--frames', str(FRAMES), '--rate', '5', '--output', str(out),
            '--model-root', str(root / 'no_weights_here'),
            '--tiny-weights-dir', str(root / 'tiny')]
    return _run(argv), out, root


def test_short_demo_writes_every_result(short_demo):
    status, out, root = short_demo
    assert status == 0
    for name in ('summary.json', 'input.png', 'depth_colored.png', 'normals.png', 'cloud.ply',
                 'camera_info.yaml', 'bag/metadata.yaml'):
        assert (out / name).is_file(), name
    assert (root / 'tiny' / demo.RANDOM_MARKER).is_file()


def test_summary_flags_random_weights(short_demo):
    _, out, root = short_demo
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['predictions_meaningful'] is False
    assert str(root / 'tiny') in summary['weights']['model_root']
    assert 'no_weights_here' in summary['weights']['note']
    assert summary['camera']['frames_published'] == FRAMES
    processed = summary['frames_processed']
    assert 1 <= processed <= FRAMES
    assert summary['frames_dropped'] == FRAMES - processed
    latency = summary['latency_ms']
    assert latency['count'] == processed
    assert 0 < latency['p50'] <= latency['p90'] <= latency['max']
    assert summary['device'] == 'cpu' and summary['dtype'] == 'fp32'


def test_bag_holds_camera_and_outputs_with_matching_stamps(short_demo):
    _, out, _ = short_demo
    summary = json.loads((out / 'summary.json').read_text())
    store = get_typestore(Stores.LATEST)
    stamps = {}
    types = {}
    with Reader(out / 'bag') as reader:
        for connection, _, raw in reader.messages():
            types[connection.topic] = connection.msgtype
            msg = store.deserialize_cdr(raw, connection.msgtype)
            if hasattr(msg, 'header'):
                stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                stamps.setdefault(connection.topic, []).append(stamp)
    assert types['/demo_camera/image'] == 'sensor_msgs/msg/Image'
    assert types['/demo_camera/points'] == 'sensor_msgs/msg/PointCloud2'
    assert types['/demo_camera/depth/camera_info'] == 'sensor_msgs/msg/CameraInfo'
    assert len(stamps['/demo_camera/image']) == FRAMES
    published = set(stamps['/demo_camera/image'])
    for topic in ('/demo_camera/depth_relative/image', '/demo_camera/depth/colored',
                  '/demo_camera/normals/colored', '/demo_camera/points'):
        assert set(stamps[topic]) <= published, topic
        assert len(stamps[topic]) >= summary['frames_processed'], topic


def test_cloud_is_the_organized_cloud_of_the_camera(short_demo):
    _, out, _ = short_demo
    vertex = PlyData.read(str(out / 'cloud.ply'))['vertex']
    points = np.stack([vertex[name] for name in ('x', 'y', 'z')], axis=-1)
    assert 0 < len(points) <= 128 * 96
    assert np.isfinite(points).all() and (points[:, 2] > 0).all()
    names = [prop.name for prop in vertex.properties]
    assert names == ['x', 'y', 'z', 'nx', 'ny', 'nz', 'red', 'green', 'blue']


def test_banner_says_predictions_are_not_meaningful(tmp_path, tiny_model_root, capsys):
    out = tmp_path / 'out'
    status = _run(['--short', '--frames', '2', '--output', str(out),
                   '--model-root', str(tiny_model_root)])
    assert status == 0
    assert 'PREDICTIONS ARE NOT MEANINGFUL' in capsys.readouterr().out
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['predictions_meaningful'] is False
    assert 'random weights' in summary['weights']['note']


def test_metric_reference_mode(tmp_path, tiny_model_root):
    out = tmp_path / 'out'
    status = _run(['--short', '--frames', '3', '--output', str(out), '--metric-reference',
                   '--model-root', str(tiny_model_root)])
    assert status == 0
    summary = json.loads((out / 'summary.json').read_text())
    by_topic = bag_messages(out / 'bag')
    assert len(by_topic['/demo_camera/reference/depth']) == 3
    newest = newest_complete(by_topic)
    # The reference on the bag is the rendered true depth: recompute the reported error.
    truth = image_values(by_topic['/demo_camera/reference/depth'][newest])
    depth = image_values(by_topic['/demo_camera/depth/image'][newest])
    ok = np.isfinite(depth) & np.isfinite(truth) & (truth > 0)
    metric = summary['metric_depth_vs_ground_truth']
    assert metric['scale_mode'] == 'reference'
    assert metric['valid_ratio'] == pytest.approx(ok.mean())
    assert metric['abs_rel'] == pytest.approx(
        np.mean(np.abs(depth[ok] - truth[ok]) / truth[ok]), rel=1e-6)
    # The reported scale is the one the published metric depth was made with.
    check_depth_made_with_scale(summary['scale'], by_topic, newest)
    assert 0.0 <= summary['scale']['inlier_ratio'] <= 1.0


def bag_messages(path):
    """Return {topic: {stamp ns: message}} of the stamped messages of a bag (rosbags only)."""
    store = get_typestore(Stores.LATEST)
    by_topic = {}
    with Reader(path) as reader:
        for connection, _, raw in reader.messages():
            msg = store.deserialize_cdr(raw, connection.msgtype)
            if hasattr(msg, 'header'):
                stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                by_topic.setdefault(connection.topic, {})[stamp] = msg
    return by_topic


def newest_complete(by_topic):
    """Return the newest stamp for which every output the demo saves files from was recorded."""
    stamps = set.intersection(*(set(by_topic[f'/demo_camera/{topic}'])
                                for topic in results.COMPLETE_TOPICS))
    return max(stamps)


def image_values(msg):
    """Decode an rgb8 or 32FC1 Image of the bag with numpy alone, honouring ``step``."""
    channels, dtype = {'rgb8': (3, np.uint8), '32FC1': (1, np.dtype('<f4'))}[msg.encoding]
    item = np.dtype(dtype).itemsize
    rows = np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.step // item)
    values = rows[:, :msg.width * channels].reshape(msg.height, msg.width, channels)
    return values[..., 0] if channels == 1 else values


def check_depth_made_with_scale(scale, by_topic, stamp):
    """Assert depth/image = scale * depth_relative + shift (the depth variant's affine map)."""
    relative = image_values(by_topic['/demo_camera/depth_relative/image'][stamp])
    depth = image_values(by_topic['/demo_camera/depth/image'][stamp])
    assert scale['scale'] > 0 and np.isfinite(scale['shift'])
    finite = np.isfinite(depth)
    assert finite.mean() > 0.5
    np.testing.assert_allclose(depth[finite], scale['scale'] * relative[finite] + scale['shift'],
                               rtol=1e-5, atol=1e-5)


def test_saved_files_hold_the_newest_frame(short_demo):
    """The PNG, YAML and PLY files are the newest frame's outputs, checked value by value."""
    _, out, _ = short_demo
    summary = json.loads((out / 'summary.json').read_text())
    by_topic = bag_messages(out / 'bag')
    newest = newest_complete(by_topic)
    camera = summary['camera']
    # The input picture is the camera frame of that stamp.
    rgb = image_values(by_topic['/demo_camera/image'][newest])
    assert rgb.shape == (camera['height'], camera['width'], 3)
    np.testing.assert_array_equal(cv2.imread(str(out / 'input.png'))[:, :, ::-1], rgb)
    # The depth picture is the depth/colored output, in matplotlib's Spectral colours.
    colored = cv2.imread(str(out / 'depth_colored.png'))[:, :, ::-1]
    np.testing.assert_array_equal(colored,
                                  image_values(by_topic['/demo_camera/depth/colored'][newest]))
    spectral = matplotlib.colormaps['Spectral'](np.linspace(0, 1, 256), bytes=True)[:, :3]
    allowed = {tuple(colour) for colour in spectral} | {(0, 0, 0)}
    assert {tuple(colour) for colour in colored.reshape(-1, 3)} <= allowed
    # The normals picture is (n + 1) / 2 of unit vectors (black = no normal).
    normals = cv2.imread(str(out / 'normals.png'))[:, :, ::-1]
    np.testing.assert_array_equal(
        normals, image_values(by_topic['/demo_camera/normals/colored'][newest]))
    valid = normals.any(axis=2)
    assert valid.mean() > 0.5
    lengths = np.linalg.norm(normals[valid] / 255.0 * 2.0 - 1.0, axis=1)
    assert np.abs(lengths - 1.0).max() < 0.02
    # The camera YAML is the calibration published on depth/camera_info.
    calibration = yaml.safe_load((out / 'camera_info.yaml').read_text())
    info = by_topic['/demo_camera/depth/camera_info'][newest]
    assert (calibration['image_width'], calibration['image_height']) == (
        info.width, info.height) == (camera['width'], camera['height'])
    np.testing.assert_allclose(calibration['camera_matrix']['data'], info.k)
    # The range mapping reported is the one the published metric depth was made with.
    check_depth_made_with_scale(summary['scale'], by_topic, newest)


def test_cloud_file_is_the_depth_back_projected(short_demo):
    """Each PLY point projects onto a pixel centre and has that pixel's depth as its z."""
    _, out, _ = short_demo
    summary = json.loads((out / 'summary.json').read_text())
    by_topic = bag_messages(out / 'bag')
    newest = newest_complete(by_topic)
    depth = image_values(by_topic['/demo_camera/depth/image'][newest])
    k = yaml.safe_load((out / 'camera_info.yaml').read_text())['camera_matrix']['data']
    fx, cx, fy, cy = k[0], k[2], k[4], k[5]
    vertex = PlyData.read(str(out / 'cloud.ply'))['vertex']   # an independent PLY reader
    points = np.stack([vertex['x'], vertex['y'], vertex['z']], axis=-1).astype(np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    assert len(points) == summary['files']['cloud_points'] == valid.sum()
    u = points[:, 0] / points[:, 2] * fx + cx
    v = points[:, 1] / points[:, 2] * fy + cy
    column, row = np.round(u).astype(int), np.round(v).astype(int)
    np.testing.assert_allclose(u, column, atol=1e-3)
    np.testing.assert_allclose(v, row, atol=1e-3)
    np.testing.assert_allclose(points[:, 2], depth[row, column], rtol=1e-6)
    assert len(set(zip(row.tolist(), column.tolist()))) == len(points)   # one point a pixel


def _fake_root(root, channels):
    for name in demo.DEMO_MODELS:
        spec = get_model_spec(name)
        folder = root / REPO_FOLDERS[spec.unet_repo] / spec.unet_subfolder
        folder.mkdir(parents=True)
        (folder / 'config.json').write_text(json.dumps({'block_out_channels': channels}))
    return root


def test_weight_choice(tmp_path, tiny_model_root):
    root, meaningful, note = demo.choose_weights(str(tmp_path / 'missing'))
    assert root is None and not meaningful and 'missing' in note
    root, meaningful, _ = demo.choose_weights(str(tiny_model_root))
    assert root == str(tiny_model_root) and not meaningful
    real = _fake_root(tmp_path / 'real', [320, 640, 1280, 1280])
    assert demo.choose_weights(str(real))[1] is True
    (real / demo.RANDOM_MARKER).write_text('random')
    assert demo.choose_weights(str(real))[1] is False


def test_every_random_model_root_is_marked(tiny_model_root):
    """make-tiny-weights (tiny or --full-size) marks its output: the demo never calls it real."""
    from genpercept_ros.model.tiny_weights import RANDOM_WEIGHTS_MARKER
    assert RANDOM_WEIGHTS_MARKER == demo.RANDOM_MARKER
    assert (tiny_model_root / RANDOM_WEIGHTS_MARKER).is_file()


def test_percentiles():
    stats = results.percentiles_ms([1_000_000 * v for v in range(1, 101)])
    assert stats['p50'] == pytest.approx(50.5) and stats['max'] == 100.0
    assert stats['count'] == 100
    assert results.percentiles_ms([]) is None


def test_bad_options(tmp_path, capsys):
    assert _run(['--frames', '0', '--output', str(tmp_path)]) == 2
    assert '--frames' in capsys.readouterr().err
    assert _run(['--rate', '-1', '--output', str(tmp_path)]) == 2


def _strict(text):
    def refuse(constant):
        raise ValueError(f'bare {constant} is not JSON')
    return json.loads(text, parse_constant=refuse)


def test_summary_is_strict_json(short_demo):
    _, out, _ = short_demo
    summary = _strict((out / 'summary.json').read_text())
    # The range mode fits nothing: the scale report's inlier ratio and residual are missing.
    assert summary['scale']['inlier_ratio'] is None and summary['scale']['residual'] is None
    assert summary['scale']['scale'] > 0


def test_strict_json_writes_null_for_missing_numbers():
    text = results.strict_json({'a': float('nan'), 'b': [np.float32('inf'), np.float64(2.5)],
                                'c': np.array([1.0, np.nan]), 'd': {'e': -float('inf')}})
    assert _strict(text) == {'a': None, 'b': [None, 2.5], 'c': [1.0, None], 'd': {'e': None}}


def test_depth_picture_shows_prediction_truth_and_metres(short_demo):
    import cv2
    from genpercept_ros.geometry.colorize import colorize_depth
    from genpercept_ros.offline.demo.nodes import render_frames
    _, out, _ = short_demo
    summary = _strict((out / 'summary.json').read_text())
    width, height = summary['camera']['width'], summary['camera']['height']
    assert summary['files']['depth'] == 'depth.png'
    picture = cv2.imread(str(out / 'depth.png'))[:, :, ::-1]
    k = -(-results.PICTURE_MIN_PANEL_WIDTH // width)       # panels enlarged k times
    assert k > 1 and picture.shape[1] == 2 * k * width + 4
    assert picture.shape[0] > k * height + 20
    near, far = 0.8, 6.5          # the demo's range mapping
    # Right panel: the rendered true depth of one of the published frames (below the title).
    _, scenes = render_frames(width, height, FRAMES)
    right = picture[k * 10:k * height:k, k * width + 4::k]
    assert any(np.array_equal(right, colorize_depth(s.depth, near, far)[10:]) for s in scenes)
    # Left panel: the published metric depth, same colours (it differs from the truth).
    assert not np.array_equal(picture[k * 10:k * height:k, :k * width:k], right)
    # Colour bar: near (left end) to far (right end) of the same map.
    bar = picture[k * height + 8, 30:2 * k * width + 4 - 30]
    np.testing.assert_array_equal(bar[0], colorize_depth(np.full((1, 1), near), near, far)[0, 0])
    np.testing.assert_array_equal(bar[-1], colorize_depth(np.full((1, 1), far), near, far)[0, 0])


def test_colour_bar_labels_near_and_far_in_metres(monkeypatch):
    import cv2
    drawn = []
    real = cv2.putText

    def record(image, text, *args, **kwargs):
        drawn.append(text)
        return real(image, text, *args, **kwargs)
    monkeypatch.setattr(cv2, 'putText', record)
    strip = results.colour_bar(300, 0.8, 6.5)
    assert strip.shape == (42, 300, 3)
    assert {'near 0.8 m', '3.65 m', 'far 6.5 m'} <= set(drawn)


def test_camera_records_no_more_pixels_than_the_model_sees():
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args([])
    assert demo.camera_size(args, 128) == (128, 96)        # tiny weights
    assert demo.camera_size(args, 192) == (192, 144)       # real weights on the CPU
    assert demo.camera_size(args, 768) == (320, 240)       # real weights on CUDA
    assert demo.camera_size(args, 0) == (320, 240)         # native resolution
    explicit = parser.parse_args(['--width', '400', '--height', '300'])
    assert demo.camera_size(explicit, 128) == (400, 300)
    assert demo.camera_size(parser.parse_args(['--short']), 768) == (128, 96)


def test_make_demo_passes_the_model_root(tmp_path):
    """`make demo ARGS="--model-root DIR"` and GENPERCEPT_MODEL_ROOT reach `genpercept demo`."""
    import os
    from pathlib import Path
    import shutil
    import subprocess
    if shutil.which('make') is None:
        pytest.skip('make is not installed')
    repo = Path(__file__).resolve().parents[1]
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    tool = venv / 'bin' / 'genpercept'
    tool.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path / "argv"}\n')
    tool.chmod(0o755)
    stamp = venv / '.genpercept-installed'
    stamp.touch()
    newest = max((repo / name).stat().st_mtime for name in
                 ('requirements.txt', 'setup.py', 'package.xml'))
    os.utime(stamp, (newest + 10, newest + 10))
    env = {**os.environ, 'PYTHON': 'false'}
    env.pop('GENPERCEPT_MODEL_ROOT', None)

    def make(*extra, environment=env):
        subprocess.run(['make', '-s', '-C', str(repo), 'demo', f'VENV={venv}', *extra],
                       check=True, env=environment, stdout=subprocess.DEVNULL)
        return (tmp_path / 'argv').read_text().split('\n')[:-1]
    assert make('ARGS=--model-root /weights --frames 3') == [
        'demo', '--output', 'demo_output', '--model-root', '/weights', '--frames', '3']
    assert make('ARGS=--model-root /weights') == [
        'demo', '--output', 'demo_output', '--model-root', '/weights']
    assert make(environment={**env, 'GENPERCEPT_MODEL_ROOT': '/my weights'}) == [
        'demo', '--output', 'demo_output', '--model-root', '/my weights']
    assert make() == ['demo', '--output', 'demo_output']


def test_ground_scale_mode(tmp_path, tiny_model_root):
    """--scale-mode ground runs the node on the floor; random weights say so in the summary."""
    out = tmp_path / 'out'
    status = _run(['--short', '--frames', '2', '--output', str(out), '--scale-mode', 'ground',
                   '--model-root', str(tiny_model_root)])
    assert status == 0
    summary = json.loads((out / 'summary.json').read_text())
    metric = summary['metric_depth_vs_ground_truth']
    assert metric['scale_mode'] == 'ground'
    assert metric['camera_height_m'] == 1.2 and metric['camera_pitch_deg'] == 12.0
    assert 'random weights, so meaningless' in metric['note']
    statuses = [item['values'].get('scale_mode') for item in summary['diagnostics'] or []]
    assert 'ground' in statuses
    assert _run(['--scale-mode', 'ground', '--metric-reference', '--output',
                 str(tmp_path / 'x')]) == 2


def test_ground_frames_are_seen_from_the_known_height_and_pitch():
    from genpercept_ros.geometry.ground import floor_depth
    from genpercept_ros.geometry.ground import up_from_pitch_roll
    from genpercept_ros.geometry.synthetic import FLOOR
    from genpercept_ros.offline.demo.nodes import GROUND_CAMERA_HEIGHT_M
    from genpercept_ros.offline.demo.nodes import GROUND_CAMERA_PITCH_DEG
    from genpercept_ros.offline.demo.nodes import render_frames
    intrinsics, scenes = render_frames(64, 48, 3, GROUND_CAMERA_PITCH_DEG)
    expected = floor_depth(intrinsics, up_from_pitch_roll(GROUND_CAMERA_PITCH_DEG, 0.0),
                           GROUND_CAMERA_HEIGHT_M)
    for scene in scenes:
        floor = scene.labels == FLOOR
        assert floor.mean() > 0.2
        np.testing.assert_allclose(scene.depth[floor], expected[floor], rtol=1e-4)
