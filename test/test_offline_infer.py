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

"""`genpercept infer` on generated images and a generated video, with tiny weights."""

import argparse

import cv2
from genpercept_ros.messages import array_to_image
from genpercept_ros.messages import image_to_rgb
from genpercept_ros.offline import infer
import numpy as np
from PIL import Image
from plyfile import PlyData
import pytest

RES = 64
SIZE = (36, 56)  # (h, w) of the generated images


def _run(argv):
    parser = argparse.ArgumentParser()
    infer.add_arguments(parser)
    return infer.run(parser.parse_args(argv))


def _common(model_root):
    return ['--model-root', str(model_root), '--device', 'cpu', '--dtype', 'fp32',
            '--processing-resolution', str(RES)]


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """Images of several modes, a 3-frame video; returns (folder, {name: rgb as PIL sees it})."""
    folder = tmp_path_factory.mktemp('inputs')
    rng = np.random.default_rng(3)
    h, w = SIZE
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / 'colour.png')
    gray = rng.integers(0, 256, (h, w), dtype=np.uint8)
    Image.fromarray(gray).save(folder / 'gray.png')
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    Image.fromarray(rgba, 'RGBA').save(folder / 'alpha.png')
    deep = rng.integers(0, 65536, (h, w), dtype=np.uint16)
    assert cv2.imwrite(str(folder / 'deep.png'), deep)
    writer = cv2.VideoWriter(str(folder / 'clip.avi'), cv2.VideoWriter_fourcc(*'MJPG'), 5.0,
                             (w, h))
    assert writer.isOpened()
    for index in range(3):
        writer.write(np.full((h, w, 3), 60 * index + 20, dtype=np.uint8))
    writer.release()
    expected_rgb = {
        'colour': rgb,
        'gray': np.repeat(gray[..., None], 3, axis=2),
        'alpha': rgba[..., :3],  # alpha dropped, not composited
        # 16-bit grey: the same input as the same pixels in a mono16 message (v >> 8).
        'deep': image_to_rgb(array_to_image(deep, 'mono16')),
    }
    np.testing.assert_array_equal(expected_rgb['deep'][..., 1], deep >> 8)
    return folder, expected_rgb


@pytest.fixture(scope='module')
def result(inputs, tiny_model_root, tmp_path_factory):
    folder, _ = inputs
    out = tmp_path_factory.mktemp('out')
    status = _run([str(folder), '-o', str(out), '--save-raw']
                  + _common(tiny_model_root))
    return status, out


@pytest.fixture(scope='module')
def predictor(tiny_model_root):
    from genpercept_ros.model.predictor import GenPerceptPredictor
    return GenPerceptPredictor.from_pretrained(
        depth_model='depth-v2', normal_model='normal-v2', model_root=str(tiny_model_root),
        device='cpu', dtype='fp32')


STEMS = ('colour', 'gray', 'alpha', 'deep', 'clip_000000', 'clip_000001', 'clip_000002')


def test_every_stem_gets_every_file(result):
    status, out = result
    assert status == 0
    for stem in STEMS:
        for suffix in ('_depth.png', '_depth_colored.png', '_depth.npy', '_depth_raw.npy',
                       '_normals.png', '_normals.npy', '_normal_raw.npy'):
            assert (out / f'{stem}{suffix}').is_file(), f'{stem}{suffix}'
    assert not list(out.glob('clip_000003*'))
    assert not list(out.glob('*.ply')), 'no intrinsics given, so no cloud'
    assert not list(out.glob('.*partial*'))


@pytest.mark.parametrize('stem', STEMS)
def test_shapes_dtypes_and_save_conventions(result, stem):
    _, out = result
    h, w = SIZE
    depth = np.load(out / f'{stem}_depth.npy')
    assert depth.shape == (h, w) and depth.dtype == np.float32
    assert np.all((depth >= 0) & (depth <= 1))
    png16 = cv2.imread(str(out / f'{stem}_depth.png'), cv2.IMREAD_UNCHANGED)
    assert png16.dtype == np.uint16 and png16.shape == (h, w)
    # Truncation, not rounding: png <= depth * 65535 < png + 1.
    scaled = depth.astype(np.float32) * np.float32(65535)
    assert np.all(png16 <= scaled) and np.all(scaled < png16.astype(np.float64) + 1)
    colored = cv2.imread(str(out / f'{stem}_depth_colored.png'), cv2.IMREAD_UNCHANGED)
    assert colored.dtype == np.uint8 and colored.shape == (h, w, 3)
    normals = np.load(out / f'{stem}_normals.npy')
    assert normals.shape == (h, w, 3) and normals.dtype == np.float32
    valid = np.isfinite(normals).all(axis=2)
    np.testing.assert_allclose(np.linalg.norm(normals[valid], axis=1), 1.0, atol=1e-5)
    normals_png = cv2.imread(str(out / f'{stem}_normals.png'))[:, :, ::-1].astype(float)
    expected = (normals[valid] + 1.0) / 2.0 * 255.0
    assert np.abs(normals_png[valid] - expected).max() <= 1.0


@pytest.mark.parametrize('stem', STEMS)
def test_raw_arrays_have_the_reference_meaning(result, stem):
    _, out = result
    h, w = SIZE
    depth_raw = np.load(out / f'{stem}_depth_raw.npy')
    assert depth_raw.shape == (h, w) and depth_raw.dtype == np.float32
    # depth-v2: the reference _pred.npy is the relative depth itself.
    np.testing.assert_array_equal(depth_raw, np.load(out / f'{stem}_depth.npy'))
    normal_raw = np.load(out / f'{stem}_normal_raw.npy')
    assert normal_raw.shape == (h, w, 3) and normal_raw.dtype == np.float32
    assert np.all((normal_raw >= 0) & (normal_raw <= 1))
    # Reference frame (x right, y up, z to camera), (n + 1) / 2 -> optical (x, -y, -z), unit.
    n = (normal_raw.astype(np.float64) * 2 - 1) * np.array([1.0, -1.0, -1.0])
    norm = np.linalg.norm(n, axis=2, keepdims=True)
    ok = norm[..., 0] > 1e-3
    normals = np.load(out / f'{stem}_normals.npy')
    np.testing.assert_allclose(normals[ok], (n / norm)[ok], atol=1e-4)


def test_v1_raw_arrays(inputs, tiny_model_root, tmp_path):
    folder, _ = inputs
    h, w = SIZE
    argv = [str(folder / 'colour.png'), '-o', str(tmp_path), '--save-raw', '--depth-model',
            'depth-v1', '--normal-model', 'normal-v1'] + _common(tiny_model_root)
    assert _run(argv) == 0
    depth_raw = np.load(tmp_path / 'colour_depth_raw.npy')
    # v1 depth is min-max stretched per image.
    assert depth_raw.shape == (h, w)
    assert depth_raw.min() == pytest.approx(0.0, abs=1e-6)
    assert depth_raw.max() == pytest.approx(1.0, abs=1e-6)
    normal_raw = np.load(tmp_path / 'colour_normal_raw.npy')
    # v1 normals: channels first, in [-1, 1], reference camera frame.
    assert normal_raw.shape == (3, h, w)
    assert normal_raw.min() >= -1 and normal_raw.max() <= 1
    n = np.moveaxis(normal_raw.astype(np.float64), 0, -1) * np.array([1.0, -1.0, -1.0])
    norm = np.linalg.norm(n, axis=2, keepdims=True)
    ok = norm[..., 0] > 1e-3
    normals = np.load(tmp_path / 'colour_normals.npy')
    np.testing.assert_allclose(normals[ok], (n / norm)[ok], atol=1e-4)


@pytest.mark.parametrize('name', ['colour', 'gray', 'alpha', 'deep'])
def test_inputs_are_converted_to_rgb_like_the_reference(result, inputs, predictor, name):
    _, out = result
    _, expected_rgb = inputs
    direct = predictor.predict([expected_rgb[name]], processing_resolution=RES)
    np.testing.assert_allclose(np.load(out / f'{name}_depth.npy'), direct.depth[0], atol=1e-6)
    np.testing.assert_allclose(np.load(out / f'{name}_normals.npy'), direct.normals[0],
                               atol=1e-6)


def test_video_frames_match_decoded_frames(result, inputs, predictor):
    _, out = result
    folder, _ = inputs
    capture = cv2.VideoCapture(str(folder / 'clip.avi'))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    direct = predictor.predict([bgr[:, :, ::-1].copy()], processing_resolution=RES)
    np.testing.assert_allclose(np.load(out / 'clip_000000_depth.npy'), direct.depth[0],
                               atol=1e-6)


def test_batches_give_the_same_outputs(result, inputs, tiny_model_root, tmp_path):
    _, single = result
    folder, _ = inputs
    names = [str(folder / f'{stem}.png') for stem in ('colour', 'gray', 'alpha')]
    assert _run(names + ['-o', str(tmp_path), '--batch-size', '3', '--normal-model', '']
                + _common(tiny_model_root)) == 0
    for stem in ('colour', 'gray', 'alpha'):
        # Batched convolutions differ in the last bits; the uint8 re-quantisation of the resized
        # input can then move a pixel by one level, hence the loose bound.
        np.testing.assert_allclose(np.load(tmp_path / f'{stem}_depth.npy'),
                                   np.load(single / f'{stem}_depth.npy'), atol=5e-3)


def test_resume_skips_finished_stems(inputs, tiny_model_root, tmp_path, capsys):
    folder, _ = inputs
    argv = [str(folder / 'colour.png'), str(folder / 'gray.png'), '-o', str(tmp_path),
            '--normal-model', ''] + _common(tiny_model_root)
    assert _run(argv) == 0
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    (tmp_path / 'gray_depth.npy').unlink()
    capsys.readouterr()
    assert _run(argv) == 0
    assert '1 written, 1 already done' in capsys.readouterr().out
    after = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert set(after) == set(before)
    for name, stamp in before.items():
        if name.startswith('colour_'):
            assert after[name] == stamp, f'{name} was rewritten'
        else:
            assert name == 'gray_depth.npy' or after[name] != stamp, f'{name} not redone'
    assert _run(argv + ['--overwrite']) == 0
    assert '2 written, 0 already done' in capsys.readouterr().out


def test_outputs_written_next_to_the_inputs_are_not_inputs(
        inputs, tiny_model_root, tmp_path, capsys):
    folder, _ = inputs
    Image.open(folder / 'colour.png').save(tmp_path / 'colour.png')
    argv = [str(tmp_path), '-o', str(tmp_path), '--normal-model', '']
    argv += _common(tiny_model_root)
    assert _run(argv) == 0
    assert (tmp_path / 'colour_depth.png').is_file()
    capsys.readouterr()
    assert _run(argv) == 0
    captured = capsys.readouterr()
    assert '0 written, 1 already done' in captured.out
    assert '2 earlier outputs' in captured.err
    assert not list(tmp_path.glob('colour_depth_depth*'))


def test_point_cloud_from_focal_lengths(inputs, tiny_model_root, tmp_path):
    folder, _ = inputs
    h, w = SIZE
    fx, fy, cx, cy = 40.0, 42.0, 27.5, 17.5
    near, far = 0.5, 4.0
    argv = [str(folder / 'colour.png'), '-o', str(tmp_path), '--fx', str(fx), '--fy', str(fy),
            '--cx', str(cx), '--cy', str(cy), '--near-m', str(near), '--far-m', str(far),
            '--depth-model', 'depth-v2', '--normal-model', 'normal-v2'] + _common(tiny_model_root)
    assert _run(argv) == 0
    vertices = PlyData.read(str(tmp_path / 'colour_cloud.ply'))['vertex'].data
    relative = np.load(tmp_path / 'colour_depth.npy').astype(np.float64)
    z = near + relative * (far - near)
    v, u = np.mgrid[0:h, 0:w]
    expected = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=-1).reshape(-1, 3)
    points = np.stack([vertices[name] for name in ('x', 'y', 'z')], axis=-1)
    assert points.shape == (h * w, 3)
    np.testing.assert_allclose(points, expected, rtol=1e-5, atol=1e-5)
    rgb = np.asarray(Image.open(folder / 'colour.png').convert('RGB')).reshape(-1, 3)
    colours = np.stack([vertices[name] for name in ('red', 'green', 'blue')], axis=-1)
    np.testing.assert_array_equal(colours, rgb)
    normals = np.load(tmp_path / 'colour_normals.npy').reshape(-1, 3)
    np.testing.assert_allclose(np.stack([vertices[n] for n in ('nx', 'ny', 'nz')], axis=-1),
                               normals, atol=1e-6)


def test_point_cloud_from_camera_yaml_at_twice_the_size(
        inputs, tiny_model_root, tmp_path, capsys):
    folder, _ = inputs
    h, w = SIZE
    # Calibrated at 2x the image size: intrinsics scale with the pixel-centre convention.
    fx2, cx2, cy2 = 80.0, 55.5, 35.5
    yaml_path = tmp_path / 'cam.yaml'
    yaml_path.write_text(
        f'image_width: {2 * w}\nimage_height: {2 * h}\ncamera_name: test\n'
        f'camera_matrix: {{rows: 3, cols: 3, data: [{fx2}, 0, {cx2}, 0, {fx2}, {cy2}, 0, 0, 1]}}\n'
        'distortion_model: plumb_bob\n'
        'distortion_coefficients: {rows: 1, cols: 5, data: [0, 0, 0, 0, 0]}\n')
    out = tmp_path / 'out'
    argv = [str(folder / 'colour.png'), '-o', str(out), '--camera-info', str(yaml_path),
            '--depth-scale-mode', 'fixed', '--depth-scale', '2.0', '--depth-shift', '0.25',
            '--normal-model', '']
    assert _run(argv + _common(tiny_model_root)) == 0
    vertices = PlyData.read(str(out / 'colour_cloud.ply'))['vertex'].data
    points = np.stack([vertices[name] for name in ('x', 'y', 'z')], axis=-1)
    fx, cx, cy = fx2 / 2, (cx2 + 0.5) / 2 - 0.5, (cy2 + 0.5) / 2 - 0.5
    z = 2.0 * np.load(out / 'colour_depth.npy').astype(np.float64) + 0.25
    v, u = np.mgrid[0:h, 0:w]
    expected = np.stack([(u - cx) * z / fx, (v - cy) * z / fx, z], axis=-1).reshape(-1, 3)
    np.testing.assert_allclose(points, expected, rtol=1e-5, atol=1e-5)
    err = capsys.readouterr().err
    assert f'describes {2 * w}x{2 * h} images' in err and 'aspect' not in err


def test_processing_resolution_outputs(inputs, tiny_model_root, tmp_path):
    folder, _ = inputs
    argv = [str(folder / 'colour.png'), '-o', str(tmp_path), '--output-resolution',
            'processing', '--normal-model', ''] + _common(tiny_model_root)
    assert _run(argv) == 0
    # Longest edge 56 -> 64: factor 64/56, int truncation of 36 * 64 / 56 = 41.14 -> 64 x 41.
    assert np.load(tmp_path / 'colour_depth.npy').shape == (41, 64)
    assert not list(tmp_path.glob('*normal*'))


def test_unreadable_input_is_reported_and_the_rest_processed(
        inputs, tiny_model_root, tmp_path, capsys):
    folder, _ = inputs
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'\x89PNG\r\n\x1a\nthis is not a png')
    out = tmp_path / 'out'
    argv = [str(broken), str(folder / 'colour.png'), str(tmp_path / 'missing*.jpg'),
            '-o', str(out), '--normal-model', ''] + _common(tiny_model_root)
    assert _run(argv) == 1
    err = capsys.readouterr().err
    assert 'broken.png' in err and 'cannot read' in err
    assert 'missing*.jpg' in err
    assert (out / 'colour_depth.png').is_file()
    assert not list(out.glob('broken*'))


def test_bad_options_are_refused(inputs, tiny_model_root, tmp_path, capsys):
    folder, _ = inputs
    image = str(folder / 'colour.png')
    base = [image, '-o', str(tmp_path)] + _common(tiny_model_root)
    assert _run(base + ['--fx', '10']) == 2
    assert 'together' in capsys.readouterr().err
    assert _run(base + ['--depth-model', '', '--normal-model', '']) == 2
    assert 'nothing to compute' in capsys.readouterr().err
    assert _run(base + ['--batch-size', '0']) == 2
    assert _run(base + ['--depth-model', 'depth-v9']) == 2
    assert 'depth-v9' in capsys.readouterr().err
    a_file = tmp_path / 'a_file'
    a_file.write_text('')
    assert _run([image, '-o', str(a_file)] + _common(tiny_model_root)) == 2
    assert 'output folder' in capsys.readouterr().err


def test_through_the_genpercept_command(inputs, tiny_model_root, tmp_path):
    from genpercept_ros.cli import main
    folder, _ = inputs
    argv = ['infer', str(folder / 'gray.png'), '-o', str(tmp_path), '--normal-model', '']
    assert main(argv + _common(tiny_model_root)) == 0
    assert (tmp_path / 'gray_depth.png').is_file()


def test_acceleration_option_warns_once_and_keeps_eager_outputs(
        inputs, tiny_model_root, tmp_path, capsys):
    folder, _ = inputs
    images = [str(folder / 'colour.png'), str(folder / 'gray.png')]
    eager, fast = tmp_path / 'eager', tmp_path / 'fast'
    common = ['--normal-model', ''] + _common(tiny_model_root)
    assert _run(images + ['-o', str(eager), '--acceleration', 'eager'] + common) == 0
    capsys.readouterr()
    assert _run(images + ['-o', str(fast), '--acceleration', 'cuda_graphs'] + common) == 0
    err = capsys.readouterr().err
    assert err.count('warning:') == 1 and "'cuda_graphs'" in err and 'serving eager' in err
    for stem in ('colour', 'gray'):
        np.testing.assert_array_equal(np.load(fast / f'{stem}_depth.npy'),
                                      np.load(eager / f'{stem}_depth.npy'))
    with pytest.raises(SystemExit):
        _run(images + ['-o', str(fast), '--acceleration', 'turbo'] + common)


def test_decoder_option_decodes_with_taesd(inputs, tiny_model_root, tmp_path, capsys):
    folder, _ = inputs
    image = [str(folder / 'colour.png')]
    common = ['--normal-model', ''] + _common(tiny_model_root)
    vae, fast, param = tmp_path / 'vae', tmp_path / 'taesd', tmp_path / 'param'
    assert _run(image + ['-o', str(vae)] + common) == 0
    assert _run(image + ['-o', str(fast), '--decoder', 'taesd'] + common) == 0
    assert 'decoder taesd' in capsys.readouterr().out
    # Like the other model options, the node parameter has its own flag, not -p.
    assert _run(image + ['-o', str(param), '-p', 'decoder=taesd'] + common) == 2
    assert 'set decoder with --decoder' in capsys.readouterr().err
    # Random tiny weights: the two decoders give different depth (nothing else changed).
    assert np.abs(np.load(fast / 'colour_depth.npy') - np.load(vae / 'colour_depth.npy')).max() \
        > 1e-3
    with pytest.raises(SystemExit):
        _run(image + ['-o', str(fast), '--decoder', 'tiny'] + common)


def _distorted_yaml(path, model, k, d, width, height):
    path.write_text(
        f'image_width: {width}\nimage_height: {height}\ncamera_name: raw\n'
        f'camera_matrix: {{rows: 3, cols: 3, data: {list(k)}}}\n'
        f'distortion_model: {model}\n'
        f'distortion_coefficients: {{rows: 1, cols: {len(d)}, data: {list(d)}}}\n'
        'rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}\n'
        f'projection_matrix: {{rows: 3, cols: 4, data: [30, 0, 27, 0, 0, 30, 17, 0, 0, 0, 1, '
        '0]}\n')
    return path


def _ply_points(path):
    """(N, 3) float32 points of a PLY file, read with plyfile."""
    vertices = PlyData.read(str(path))['vertex'].data
    return np.stack([vertices[name] for name in ('x', 'y', 'z')], axis=-1)


@pytest.mark.parametrize('model, d', [
    ('plumb_bob', [-0.31, 0.11, 0.001, -0.002, 0.0]),
    ('equidistant', [0.05, -0.01, 0.003, -0.001])])
def test_point_cloud_from_distorted_camera_yaml(inputs, tiny_model_root, tmp_path, model, d):
    """--camera-info with distortion: every point is depth times its true undistorted ray."""
    from test_geometry_camera_model import true_rays
    folder, _ = inputs
    h, w = SIZE
    k = [52.0, 0.0, 27.3, 0.0, 53.0, 17.6, 0.0, 0.0, 1.0]
    yaml_path = _distorted_yaml(tmp_path / 'raw.yaml', model, k, d, w, h)
    out = tmp_path / 'out'
    argv = [str(folder / 'colour.png'), '-o', str(out), '--camera-info', str(yaml_path),
            '--depth-scale-mode', 'fixed', '--depth-scale', '2.0', '--depth-shift', '0.25',
            '--normal-model', '']
    assert _run(argv + _common(tiny_model_root)) == 0
    points = _ply_points(out / 'colour_cloud.ply')
    z = 2.0 * np.load(out / 'colour_depth.npy').astype(np.float64) + 0.25
    x, y = true_rays(k, model, d, w, h)
    expected = np.stack([x * z, y * z, z], axis=-1).reshape(-1, 3)
    np.testing.assert_allclose(points, expected, rtol=1e-5, atol=1e-5)
    # --input-rectified true: the same images taken as rectified follow P instead.
    out_rect = tmp_path / 'rect'
    argv[2] = str(out_rect)
    assert _run(argv + ['--input-rectified', 'true'] + _common(tiny_model_root)) == 0
    points = _ply_points(out_rect / 'colour_cloud.ply')
    v, u = np.mgrid[0:h, 0:w]
    expected = np.stack([(u - 27) * z / 30, (v - 17) * z / 30, z], axis=-1).reshape(-1, 3)
    np.testing.assert_allclose(points, expected, rtol=1e-5, atol=1e-5)


def test_unknown_distortion_model_is_refused_up_front(inputs, tiny_model_root, tmp_path, capsys):
    folder, _ = inputs
    h, w = SIZE
    k = [50, 0, 27, 0, 50, 17, 0, 0, 1]
    yaml_path = _distorted_yaml(tmp_path / 'odd.yaml', 'kannala_brandt', k, [0.1, 0.01, 0, 0],
                                w, h)
    argv = [str(folder / 'colour.png'), '-o', str(tmp_path / 'out'), '--camera-info',
            str(yaml_path)] + _common(tiny_model_root)
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert 'odd.yaml' in err and "unknown distortion model 'kannala_brandt'" in err
    # Declared rectified, the distortion model does not matter.
    assert _run(argv + ['--input-rectified', 'true', '--normal-model', '']) == 0
