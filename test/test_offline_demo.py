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

from genpercept_ros.model.registry import get_model_spec
from genpercept_ros.model.registry import REPO_FOLDERS
from genpercept_ros.offline.demo import command as demo
from genpercept_ros.offline.demo import results
import numpy as np
import pytest
from rosbags.rosbag2 import Reader

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
    from rosbags.typesys import get_typestore
    from rosbags.typesys import Stores
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
    o3d = pytest.importorskip('open3d')
    _, out, _ = short_demo
    cloud = o3d.io.read_point_cloud(str(out / 'cloud.ply'))
    points = np.asarray(cloud.points)
    assert 0 < len(points) <= 128 * 96
    assert np.isfinite(points).all() and (points[:, 2] > 0).all()
    assert cloud.has_colors() and cloud.has_normals()


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
    metric = summary['metric_depth_vs_ground_truth']
    assert metric['scale_mode'] == 'reference'
    assert set(summary['scale']) == {'scale', 'shift', 'inlier_ratio', 'residual'}
    with Reader(out / 'bag') as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts['/demo_camera/reference/depth'] == 3


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
