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
`genpercept bag` with the inputs of issue 14: EXIF-tagged compressed frames, a distorted camera.

The bag holds 64x48 JPEG and PNG frames carrying EXIF orientations 3, 6 and 8, with the
issue's plumb_bob camera_info (calibrated at 160x120). Expected values are independent: the
stored grid as PIL decodes it, the calibration rescaled by the pixel-centre rule, and rays
inverted by the Newton iteration of test_geometry_camera_model.
"""

import io

import numpy as np
from PIL import Image
import pytest
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer
from test_geometry_camera_model import ISSUE_D
from test_geometry_camera_model import ISSUE_K
from test_geometry_camera_model import ISSUE_P
from test_geometry_camera_model import true_rays
from test_offline_bag import _header
from test_offline_bag import _model
from test_offline_bag import _run
from test_offline_bag import _types
from test_offline_bag import read_bag
from test_offline_bag import T0
from test_offline_bag import TS

W, H = 64, 48
FRAMES = [('JPEG', 3), ('JPEG', 6), ('JPEG', 8), ('PNG', 3), ('PNG', 6), ('PNG', 8)]
STEP_NS = 100_000_000


def picture(index):
    rng = np.random.default_rng(index)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    rgb[:12, :16] = (255, 0, 0)
    return rgb


def encode(rgb, kind, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=kind, exif=exif.tobytes(), quality=95)
    return buffer.getvalue()


def write_exif_bag(path, d=ISSUE_D, model='plumb_bob'):
    """Compressed EXIF frames + the issue's camera (160x120 calibration); returns stored grids."""
    compressed = _types('sensor_msgs/msg/CompressedImage')
    info_cls = _types('sensor_msgs/msg/CameraInfo')
    roi = _types('sensor_msgs/msg/RegionOfInterest')
    stored = []
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        image_conn = writer.add_connection('/cam/image_raw/compressed',
                                           compressed.__msgtype__, typestore=TS)
        info_conn = writer.add_connection('/cam/camera_info', info_cls.__msgtype__,
                                          typestore=TS)
        for index, (kind, orientation) in enumerate(FRAMES):
            t = T0 + index * STEP_NS
            header = _header(t)
            data = encode(picture(index), kind, orientation)
            stored.append(np.array(Image.open(io.BytesIO(data)).convert('RGB')))
            fmt = f'rgb8; {kind.lower()} compressed bgr8'
            msg = compressed(header=header, format=fmt, data=np.frombuffer(data, np.uint8))
            info = info_cls(
                header=header, height=120, width=160, distortion_model=model,
                d=np.array(d, dtype=np.float64), k=np.array(ISSUE_K), r=np.eye(3).ravel(),
                p=np.array(ISSUE_P), binning_x=0, binning_y=0,
                roi=roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            writer.write(info_conn, t + 1000, TS.serialize_cdr(info, info_cls.__msgtype__))
            writer.write(image_conn, t, TS.serialize_cdr(msg, compressed.__msgtype__))
    return stored


def scaled_k(k, sx, sy):
    return [k[0] * sx, 0.0, (k[2] + 0.5) * sx - 0.5, 0.0, k[4] * sy, (k[5] + 0.5) * sy - 0.5,
            0.0, 0.0, 1.0]


def cloud_xyz(msg):
    offsets = {field.name: field.offset for field in msg.fields}
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.width, -1)
    return np.stack([raw[..., offsets[a]:offsets[a] + 4].copy().view('<f4')[..., 0]
                     for a in 'xyz'], axis=-1)


@pytest.fixture(scope='module')
def exif_bag(tmp_path_factory, tiny_model_root):
    folder = tmp_path_factory.mktemp('exif_bag')
    source, output = folder / 'in', folder / 'out'
    stored = write_exif_bag(source)
    status = _run([str(source), '-o', str(output), '--image-topic',
                   '/cam/image_raw/compressed'] + _model(tiny_model_root)
                  + ['--normal-model', ''])
    return status, stored, read_bag(output)[0]


def test_every_exif_frame_is_decoded_to_its_stored_grid(exif_bag, tiny_model_root):
    from genpercept_ros.model.predictor import GenPerceptPredictor
    status, stored, result = exif_bag
    assert status == 0
    relative = result['/cam/depth_relative/image'][1]
    assert len(relative) == len(FRAMES)   # none refused for its EXIF tag
    predictor = GenPerceptPredictor.from_pretrained(
        depth_model='depth-v2', normal_model='', model_root=str(tiny_model_root),
        device='cpu', dtype='fp32')
    for index, (_, _, msg) in enumerate(relative):
        assert (msg.width, msg.height) == (W, H)
        got = np.frombuffer(bytes(msg.data), dtype=np.float32).reshape(H, W)
        expected = predictor.predict([stored[index]], processing_resolution=64).depth[0]
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_distorted_camera_info_and_cloud(exif_bag):
    """The issue's camera: depth/camera_info keeps K with D (rescaled), the cloud follows D."""
    _, _, result = exif_bag
    sx, sy = W / 160, H / 120
    k = scaled_k(ISSUE_K, sx, sy)
    x, y = true_rays(k, 'plumb_bob', ISSUE_D, W, H)
    for (_, _, info), (_, _, depth_msg), (_, _, cloud) in zip(
            result['/cam/depth/camera_info'][1], result['/cam/depth/image'][1],
            result['/cam/points'][1]):
        assert (info.width, info.height) == (W, H)
        assert info.distortion_model == 'plumb_bob'
        np.testing.assert_allclose(info.d, ISSUE_D)
        np.testing.assert_allclose(info.k, k, rtol=1e-12)
        p = ISSUE_P
        np.testing.assert_allclose(info.p, [p[0] * sx, 0, (p[2] + 0.5) * sx - 0.5, 0, 0,
                                            p[5] * sy, (p[6] + 0.5) * sy - 0.5, 0, 0, 0, 1, 0],
                                   rtol=1e-12)
        depth = np.frombuffer(bytes(depth_msg.data), dtype=np.float32).reshape(H, W)
        xyz = cloud_xyz(cloud)
        valid = np.isfinite(depth)
        assert valid.mean() > 0.9
        np.testing.assert_allclose(xyz[..., 2][valid], depth[valid], rtol=1e-6)
        np.testing.assert_allclose(xyz[..., 0][valid], (x * depth)[valid], rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(xyz[..., 1][valid], (y * depth)[valid], rtol=1e-5,
                                   atol=1e-6)


def test_input_rectified_true_uses_p(tmp_path, tiny_model_root):
    source, output = tmp_path / 'in', tmp_path / 'out'
    write_exif_bag(source)
    assert _run([str(source), '-o', str(output), '--image-topic', '/cam/image_raw/compressed',
                 '-p', 'input_rectified=true'] + _model(tiny_model_root)
                + ['--normal-model', '']) == 0
    result, _ = read_bag(output)
    sx, sy = W / 160, H / 120
    fx, fy = ISSUE_P[0] * sx, ISSUE_P[5] * sy
    cx, cy = (ISSUE_P[2] + 0.5) * sx - 0.5, (ISSUE_P[6] + 0.5) * sy - 0.5
    depth_msg, cloud = result['/cam/depth/image'][1][0][2], result['/cam/points'][1][0][2]
    depth = np.frombuffer(bytes(depth_msg.data), dtype=np.float32).reshape(H, W)
    xyz = cloud_xyz(cloud)
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    valid = np.isfinite(depth)
    np.testing.assert_allclose(xyz[..., 0][valid], ((u - cx) * depth / fx)[valid], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(xyz[..., 1][valid], ((v - cy) * depth / fy)[valid], rtol=1e-5,
                               atol=1e-6)


def test_unknown_distortion_model_gives_depth_without_cloud(tmp_path, tiny_model_root, capsys):
    source, output = tmp_path / 'in', tmp_path / 'out'
    write_exif_bag(source, d=[0.1, 0.01, 0.0, 0.0], model='kannala_brandt')
    assert _run([str(source), '-o', str(output), '--image-topic', '/cam/image_raw/compressed']
                + _model(tiny_model_root) + ['--normal-model', '']) == 0
    result, _ = read_bag(output)
    assert len(result['/cam/depth/image'][1]) == len(FRAMES)
    assert len(result['/cam/depth/camera_info'][1]) == len(FRAMES)
    assert result['/cam/depth/camera_info'][1][0][2].distortion_model == 'kannala_brandt'
    assert '/cam/points' not in result
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("unknown distortion model 'kannala_brandt'") == 1
