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

"""E2E-FT and Lotus-D models through the node (real rclpy), ``infer`` and ``demo``."""

import argparse
import json

from genpercept_ros.model.registry import MODELS
import numpy as np
from PIL import Image
import pytest
from test_node_ros import camera_info
from test_node_ros import check_cloud_matches_depth
from test_node_ros import diagnostic_values
from test_node_ros import harness  # noqa: F401 - fixture
from test_node_ros import HEIGHT
from test_node_ros import image_array
from test_node_ros import image_msg
from test_node_ros import make_node  # noqa: F401 - fixture
from test_node_ros import publish_until
from test_node_ros import rgb_array
from test_node_ros import stamp_of
from test_node_ros import wait_for
from test_node_ros import WIDTH

pytestmark = pytest.mark.ros


@pytest.mark.parametrize('depth_model, normal_model', [
    ('disparity-lotus-d', 'normal-e2e-ft'),
    ('depth-e2e-ft', 'normal-lotus-d'),
])
def test_node_mixes_families(harness, make_node, depth_model, normal_model):  # noqa: F811
    """Depth from one family, normals from another: every output, geometry and the licences."""
    node, namespace = make_node(depth_model=depth_model, normal_model=normal_model)
    # A disparity model publishes its relative output under the name of what it is.
    relative_topic = ('disparity_relative/image' if depth_model.startswith('disparity')
                      else 'depth_relative/image')
    topics = [relative_topic, 'depth/image', 'depth/camera_info', 'normals/image', 'points']
    harness.subscribe(namespace, topics)
    rgb = rgb_array(seed=4)
    stamp = stamp_of(300.0)
    out = publish_until(harness, namespace, topics, rgb, stamp)
    for topic in topics:
        assert out[topic].header.stamp == stamp and out[topic].header.frame_id == 'camera_optical'
    relative = image_array(out[relative_topic])
    assert relative.shape == (HEIGHT, WIDTH)
    assert np.nanmin(relative) >= 0.0 and np.nanmax(relative) <= 1.0
    depth = image_array(out['depth/image'])
    # 'range' mode (near 0.5 m, far 10 m): depth models map r linearly in depth, disparity
    # models linearly in inverse depth (1 = near).
    if depth_model.startswith('disparity'):
        expected = 1.0 / (1.0 / 10.0 + relative * (1.0 / 0.5 - 1.0 / 10.0))
    else:
        expected = 0.5 + relative * 9.5
    np.testing.assert_allclose(depth, expected, rtol=1e-4)
    check_cloud_matches_depth(out['points'], depth, out['depth/camera_info'], rgb)
    normals = image_array(out['normals/image'])
    finite = np.isfinite(normals).all(axis=-1)
    assert finite.mean() > 0.9
    np.testing.assert_allclose(np.linalg.norm(normals[finite], axis=-1), 1.0, atol=1e-4)
    model = f'{namespace}/genpercept_node: model'
    assert wait_for(lambda: diagnostic_values(harness, model), 5.0)
    values = diagnostic_values(harness, model)
    assert values['depth_model'] == depth_model and values['normal_model'] == normal_model
    # The licence of each loaded model, as the registry states it (random weights make the
    # status message the warning, so the licences are a value of their own).
    assert values['licences'] == (f'{depth_model}: {MODELS[depth_model].licence}; '
                                  f'{normal_model}: {MODELS[normal_model].licence}')
    assert 'Apache-2.0' in values['licences']


def test_node_batches_two_cameras_with_lotus(harness, make_node):  # noqa: F811
    """Two cameras, one Lotus-D batch; each output keeps its own header and size."""
    node, namespace = make_node(cameras=['front', 'left'], batch_window_ms=400.0,
                                depth_model='disparity-lotus-d', normal_model='')
    topics = ['depth/image', 'points']
    cams = {'front': (WIDTH, HEIGHT, 'front_optical', stamp_of(320.0)),
            'left': (48, 36, 'left_optical', stamp_of(320.5))}
    for name in cams:
        harness.subscribe(f'{namespace}/{name}', topics)
    publishers = {name: harness.camera(f'{namespace}/{name}') for name in cams}
    messages = {name: (image_msg(rgb_array(w, h, seed=3), stamp, frame),
                       camera_info(w, h, frame, stamp))
                for name, (w, h, frame, stamp) in cams.items()}

    def send():
        for name, (image, info) in messages.items():
            publishers[name][1].publish(info)
            publishers[name][0].publish(image)

    keys = [f'{namespace}/{name}/{topic}' for name in cams for topic in topics]
    assert wait_for(lambda: all(harness.received[key] for key in keys), 30.0, send)
    for name, (w, h, frame, stamp) in cams.items():
        msg = harness.received[f'{namespace}/{name}/depth/image'][-1]
        assert msg.header.frame_id == frame and msg.header.stamp == stamp
        assert (msg.width, msg.height) == (w, h)
    assert node.core._worker.max_batch_size == 2


def test_infer_with_mixed_families(tiny_model_root, tmp_path):
    """``genpercept infer`` writes the predictor's raw outputs for E2E-FT + Lotus-D."""
    from genpercept_ros.model.predictor import GenPerceptPredictor
    from genpercept_ros.offline import infer
    rgb = np.random.default_rng(8).integers(0, 256, (36, 52, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / 'frame.png')
    parser = argparse.ArgumentParser()
    infer.add_arguments(parser)
    args = parser.parse_args([str(tmp_path / 'frame.png'), '-o', str(tmp_path / 'out'),
                              '--save-raw', '--depth-model', 'depth-e2e-ft',
                              '--normal-model', 'normal-lotus-d', '--model-root',
                              str(tiny_model_root), '--device', 'cpu', '--dtype', 'fp32',
                              '--processing-resolution', '48'])
    assert infer.run(args) == 0
    predictor = GenPerceptPredictor.from_pretrained(
        'depth-e2e-ft', 'normal-lotus-d', model_root=tiny_model_root, device='cpu',
        dtype='fp32')
    want = predictor.predict([rgb], processing_resolution=48)
    np.testing.assert_allclose(np.load(tmp_path / 'out' / 'frame_depth_raw.npy'),
                               want.depth_raw[0], atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / 'out' / 'frame_normal_raw.npy'),
                               want.normal_raw[0], atol=1e-6)
    assert np.load(tmp_path / 'out' / 'frame_normal_raw.npy').shape == (36, 52, 3)


def test_demo_runs_chosen_models(tmp_path):
    """``genpercept demo --depth-model ... --normal-model ...`` runs those models (tiny)."""
    from genpercept_ros.offline.demo import command as demo
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    out = tmp_path / 'demo_output'
    args = parser.parse_args(['--short', '--frames', '3', '--rate', '5', '--output', str(out),
                              '--model-root', str(tmp_path / 'no_weights_here'),
                              '--tiny-weights-dir', str(tmp_path / 'tiny'),
                              '--depth-model', 'disparity-lotus-d',
                              '--normal-model', 'normal-e2e-ft'])
    assert demo.run(args) == 0
    summary = json.loads((out / 'summary.json').read_text())
    assert 'disparity-lotus-d' in json.dumps(summary) and 'normal-e2e-ft' in json.dumps(summary)
    assert (tmp_path / 'tiny' / 'lotus-depth-d-v2-0-disparity' / 'unet' / 'config.json').is_file()
    assert (out / 'depth_colored.png').is_file() and (out / 'normals.png').is_file()


def test_bag_reference_scale_with_lotus_disparity(tmp_path, tiny_model_root):
    """``genpercept bag`` with a disparity model: the metric fit works in inverse depth."""
    from test_offline_bag import _image_array
    from test_offline_bag import _run as run_bag
    from test_offline_bag import read_bag
    from test_offline_bag import write_bag
    model = ['--model-root', str(tiny_model_root), '--device', 'cpu', '--dtype', 'fp32',
             '--processing-resolution', '48', '--depth-model', 'disparity-lotus-d',
             '--normal-model', '']
    first, first_out = tmp_path / 'first', tmp_path / 'first_out'
    image_topic = write_bag(first, 'sqlite3', frames=2)
    assert run_bag([str(first), '-o', str(first_out), '--image-topic', image_topic] + model) == 0
    result, _ = read_bag(first_out)
    assert '/cam/depth_relative/image' not in result
    relatives = [_image_array(m) for _, _, m in result['/cam/disparity_relative/image'][1]]
    scale, shift = 0.8, 0.2      # 1 / depth = 0.8 r + 0.2: depth between 1 and 5 m
    references = [1.0 / (scale * r + shift) for r in relatives]
    source, output = tmp_path / 'in', tmp_path / 'out'
    write_bag(source, 'mcap', frames=2, references=references)
    assert run_bag([str(source), '-o', str(output), '--image-topic', image_topic,
                    '-p', 'scale_mode=reference', '-p', 'fit_min_points=20'] + model) == 0
    result, _ = read_bag(output)
    for (_, _, depth), expected in zip(result['/cam/depth/image'][1], references):
        np.testing.assert_allclose(_image_array(depth), expected, rtol=1e-3)
    fitted = np.asarray(result['/cam/scale'][1][-1][2].data)
    np.testing.assert_allclose(fitted[:2], [scale, shift], rtol=1e-3, atol=1e-3)
