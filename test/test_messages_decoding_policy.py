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
One decoding policy: files (`infer`), Image and CompressedImage give the same RGB.

EXIF orientation tags are written with PIL (an independent encoder); the expected pixels are
the array that was encoded (PNG) or PIL's own decoding of the stored grid (JPEG, lossy).
"""

import io

from genpercept_ros.messages import array_to_image
from genpercept_ros.messages import compressed_to_rgb
from genpercept_ros.messages import image_to_rgb
from genpercept_ros.offline.sources import read_image_rgb
import numpy as np
from PIL import Image
import pytest
from sensor_msgs.msg import CompressedImage

# A 64x48 picture whose top-left corner is marked, so any rotation or flip shows.
RNG = np.random.default_rng(14)
PICTURE = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
PICTURE[:12, :16] = (255, 0, 0)


def encoded(kind, orientation, pixels=PICTURE):
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=kind, exif=exif.tobytes(), quality=95)
    data = buffer.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == orientation
    return data


def compressed(data, fmt):
    msg = CompressedImage()
    msg.format = fmt
    msg.data = data
    return msg


@pytest.mark.parametrize('orientation', range(1, 9))
@pytest.mark.parametrize('kind', ['JPEG', 'PNG'])
def test_exif_orientation_is_ignored_everywhere(kind, orientation, tmp_path):
    data = encoded(kind, orientation)
    stored = np.array(Image.open(io.BytesIO(data)).convert('RGB'))   # PIL: stored grid
    if kind == 'PNG':
        np.testing.assert_array_equal(stored, PICTURE)
    fmt = 'rgb8; jpeg compressed bgr8' if kind == 'JPEG' else 'rgb8; png compressed bgr8'
    from_message = compressed_to_rgb(compressed(data, fmt))
    assert from_message.shape == (48, 64, 3)
    np.testing.assert_array_equal(from_message, stored)
    path = tmp_path / f'photo.{kind.lower()}'
    path.write_bytes(data)
    from_file, note = read_image_rgb(path)
    np.testing.assert_array_equal(from_file, stored)
    if orientation == 1:
        assert note is None
    else:
        assert f'EXIF orientation {orientation} ignored' in note


def test_sixteen_bit_grey_is_reduced_the_same_way_on_every_path(tmp_path):
    grey = RNG.integers(0, 65536, (48, 64), dtype=np.uint16)
    grey[0, :4] = (0, 255, 256, 65535)
    expected = np.repeat((grey >> 8).astype(np.uint8)[..., None], 3, axis=2)
    path = tmp_path / 'deep.png'
    Image.fromarray(grey).save(path)   # PIL writes a 16-bit grey PNG (mode I;16)
    with Image.open(path) as image:
        assert image.mode == 'I;16'
    from_file, note = read_image_rgb(path)
    np.testing.assert_array_equal(from_file, expected)
    assert note is None
    for encoding in ('mono16', '16UC1'):
        np.testing.assert_array_equal(image_to_rgb(array_to_image(grey, encoding)), expected)
    from_png_message = compressed_to_rgb(compressed(path.read_bytes(), 'mono16; png compressed'))
    np.testing.assert_array_equal(from_png_message, expected)


def test_sixteen_bit_colour_is_reduced_the_same_way_on_every_path(tmp_path):
    import cv2
    rgb16 = RNG.integers(0, 65536, (48, 64, 3), dtype=np.uint16)
    expected = (rgb16 >> 8).astype(np.uint8)
    path = tmp_path / 'deep_colour.png'
    assert cv2.imwrite(str(path), rgb16[..., ::-1])
    np.testing.assert_array_equal(read_image_rgb(path)[0], expected)
    np.testing.assert_array_equal(image_to_rgb(array_to_image(rgb16, 'rgb16')), expected)
    np.testing.assert_array_equal(
        compressed_to_rgb(compressed(path.read_bytes(), 'rgb16; png compressed')), expected)


@pytest.mark.parametrize('kind', ['JPEG', 'PNG'])
def test_eight_bit_files_and_messages_agree(kind, tmp_path):
    data = encoded(kind, 1)
    path = tmp_path / f'photo.{kind.lower()}'
    path.write_bytes(data)
    np.testing.assert_array_equal(read_image_rgb(path)[0],
                                  compressed_to_rgb(compressed(data, kind.lower())))
