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

"""sensor_msgs/Image and CompressedImage codecs against hand-built messages."""

import array
import zlib

import cv2
from genpercept_ros.messages import array_to_image
from genpercept_ros.messages import CodecError
from genpercept_ros.messages import compressed_to_rgb
from genpercept_ros.messages import depth_image_to_meters
from genpercept_ros.messages import image_to_array
from genpercept_ros.messages import image_to_rgb
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage
from sensor_msgs.msg import Image
from std_msgs.msg import Header

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


def make_image(pixels, encoding, bigendian=False, padding=0):
    """Hand-build an Image: rows of raw bytes plus ``padding`` junk bytes per row."""
    pixels = np.asarray(pixels)
    height, width = pixels.shape[:2]
    dtype = pixels.dtype.newbyteorder('>' if bigendian else '<')
    rows = np.ascontiguousarray(pixels, dtype=dtype).reshape(height, -1).view(np.uint8)
    junk = np.full((height, padding), 0xA5, dtype=np.uint8)
    raw = np.concatenate([rows, junk], axis=1)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=int(bigendian),
                step=raw.shape[1])
    msg.data = array.array('B', raw.tobytes())
    return msg


@pytest.mark.parametrize('padding', [0, 5])
@pytest.mark.parametrize('encoding,pixels', [
    ('rgb8', RGB),
    ('bgr8', RGB[..., ::-1]),
    ('rgba8', np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)])),
    ('bgra8', np.dstack([RGB[..., ::-1], np.full(RGB.shape[:2], 9, np.uint8)])),
    ('8UC3', RGB[..., ::-1]),
    ('8UC4', np.dstack([RGB[..., ::-1], np.zeros(RGB.shape[:2], np.uint8)])),
])
def test_colour_encodings_give_rgb(encoding, pixels, padding):
    rgb = image_to_rgb(make_image(pixels, encoding, padding=padding))
    assert rgb.dtype == np.uint8 and rgb.shape == RGB.shape
    np.testing.assert_array_equal(rgb, RGB)


@pytest.mark.parametrize('padding', [0, 3])
@pytest.mark.parametrize('encoding', ['mono8', '8UC1'])
def test_grey_8bit_is_replicated(encoding, padding):
    grey = RGB[..., 1]
    rgb = image_to_rgb(make_image(grey, encoding, padding=padding))
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], grey)


@pytest.mark.parametrize('bigendian', [False, True])
@pytest.mark.parametrize('padding', [0, 1, 4])
@pytest.mark.parametrize('encoding', ['mono16', '16UC1'])
def test_16bit_grey_keeps_high_byte(encoding, bigendian, padding):
    values = np.array([[0, 255, 256, 0x1234], [0xABCD, 0xFF00, 0xFFFF, 511]], dtype=np.uint16)
    msg = make_image(values, encoding, bigendian=bigendian, padding=padding)
    np.testing.assert_array_equal(image_to_array(msg), values)
    expected_high = np.array([[0, 0, 1, 0x12], [0xAB, 0xFF, 0xFF, 1]], dtype=np.uint8)
    rgb = image_to_rgb(msg)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], expected_high)


def test_big_endian_mono16_bytes_by_hand():
    msg = Image(height=1, width=2, encoding='mono16', is_bigendian=1, step=4)
    msg.data = array.array('B', [0x12, 0x34, 0xAB, 0xCD])
    np.testing.assert_array_equal(image_to_array(msg), [[0x1234, 0xABCD]])
    msg.is_bigendian = 0
    np.testing.assert_array_equal(image_to_array(msg), [[0x3412, 0xCDAB]])


@pytest.mark.parametrize('bigendian', [False, True])
@pytest.mark.parametrize('encoding,order', [('rgb16', [0, 1, 2]), ('bgr16', [2, 1, 0]),
                                            ('rgba16', [0, 1, 2]), ('bgra16', [2, 1, 0])])
def test_16bit_colour(encoding, order, bigendian):
    wide = RGB.astype(np.uint16) * 256 + 0x7F
    pixels = wide[..., order]
    if encoding.endswith('a16'):
        pixels = np.dstack([pixels, np.full(RGB.shape[:2], 0xFFFF, np.uint16)])
    rgb = image_to_rgb(make_image(pixels, encoding, bigendian=bigendian, padding=2))
    np.testing.assert_array_equal(rgb, RGB)


@pytest.mark.parametrize('encoding,top_left', [
    ('bayer_rggb8', 'RG/GB'), ('bayer_bggr8', 'BG/GR'),
    ('bayer_gbrg8', 'GB/RG'), ('bayer_grbg8', 'GR/BG')])
def test_bayer_constant_colour(encoding, top_left):
    colour = {'R': 200, 'G': 100, 'B': 30}
    first, second = top_left.split('/')
    mosaic = np.zeros((8, 10), np.uint8)
    for row, pattern in enumerate((first, second)):
        for column, name in enumerate(pattern):
            mosaic[row::2, column::2] = colour[name]
    rgb = image_to_rgb(make_image(mosaic, encoding))
    interior = rgb[2:-2, 2:-2].reshape(-1, 3)
    np.testing.assert_array_equal(interior, np.tile([200, 100, 30], (len(interior), 1)))


@pytest.mark.parametrize('encoding,layout', [('yuv422', 'UYVY'), ('yuv422_yuy2', 'YUYV')])
def test_yuv422_grey_levels(encoding, layout):
    # Neutral chroma: BT.601 studio range maps Y = 16 to black and Y = 235 to white.
    luma = np.array([[16, 235, 126, 16]], dtype=np.uint8)
    packed = np.zeros((1, 4, 2), np.uint8)
    y_index = layout.index('Y') % 2
    packed[..., y_index] = luma
    packed[..., 1 - y_index] = 128
    rgb = image_to_rgb(make_image(packed, encoding))
    expected = np.clip(np.round((luma.astype(float) - 16) * 255 / 219), 0, 255)
    for channel in range(3):
        np.testing.assert_allclose(rgb[..., channel], expected, atol=1)


@pytest.mark.parametrize('encoding,pixels', [
    ('32FC1', RNG.standard_normal((4, 6)).astype(np.float32)),
    ('32FC3', RNG.standard_normal((4, 6, 3)).astype(np.float32)),
    ('64FC1', RNG.standard_normal((4, 6))),
    ('16UC1', RNG.integers(0, 65536, (4, 6)).astype(np.uint16)),
    ('16SC1', RNG.integers(-30000, 30000, (4, 6)).astype(np.int16)),
    ('mono8', RNG.integers(0, 256, (4, 6)).astype(np.uint8)),
    ('rgb8', RNG.integers(0, 256, (4, 6, 3)).astype(np.uint8)),
    ('bgra8', RNG.integers(0, 256, (4, 6, 4)).astype(np.uint8)),
])
def test_array_to_image_round_trip(encoding, pixels):
    header = Header(frame_id='camera_optical')
    msg = array_to_image(pixels, encoding, header)
    assert isinstance(msg.data, array.array)
    assert (msg.height, msg.width, msg.encoding) == (4, 6, encoding)
    assert msg.step == pixels[0].nbytes and msg.is_bigendian == 0
    assert msg.header.frame_id == 'camera_optical'
    assert bytes(msg.data) == np.ascontiguousarray(pixels).astype(
        pixels.dtype.newbyteorder('<')).tobytes()
    np.testing.assert_array_equal(image_to_array(msg), pixels)
    np.testing.assert_array_equal(image_to_array(make_image(pixels, encoding, padding=4)),
                                  pixels)


def test_array_to_image_accepts_strided_and_single_channel_arrays():
    pixels = RNG.standard_normal((6, 8)).astype(np.float32)
    msg = array_to_image(pixels[::2, ::2], '32FC1')
    np.testing.assert_array_equal(image_to_array(msg), pixels[::2, ::2])
    msg = array_to_image(pixels[..., None], '32FC1')
    assert (msg.height, msg.width) == (6, 8)


def test_decoded_arrays_do_not_alias_the_message():
    msg = make_image(RGB, 'rgb8')
    rgb = image_to_rgb(msg)
    rgb[:] = 0
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


@pytest.mark.parametrize('pixels,encoding,problem', [
    (np.zeros((4, 4), np.uint8), '32FC1', 'dtype'),
    (np.zeros((4, 4, 3), np.float32), '32FC1', 'shape'),
    (np.zeros((4, 4), np.uint8), 'rgb8', 'shape'),
    (np.zeros((4, 4, 3), np.uint16), 'rgb8', 'dtype'),
    (np.zeros((0, 4), np.float32), '32FC1', 'zero-sized'),
    (np.zeros((4, 4), np.float32), 'depth_float', 'unsupported'),
])
def test_array_to_image_rejects_mismatches(pixels, encoding, problem):
    with pytest.raises(CodecError, match=problem):
        array_to_image(pixels, encoding, Header())


def _broken(**changes):
    msg = make_image(RGB, 'rgb8')
    for name, value in changes.items():
        setattr(msg, name, value)
    return msg


@pytest.mark.parametrize('msg,problem', [
    (_broken(encoding='yuv420'), "'yuv420'"),
    (_broken(encoding=''), "''"),
    (_broken(encoding='32FC1'), "'32FC1'"),
    (_broken(step=7 * 3 - 1), 'step 20 is smaller than one row'),
    (_broken(height=6), 'fewer than height 6 x step 21'),
    (_broken(height=0), 'zero-sized'),
    (_broken(width=0), 'zero-sized'),
    (_broken(data=array.array('B')), 'has 0 bytes'),
])
def test_image_to_rgb_errors_name_the_problem(msg, problem):
    with pytest.raises(CodecError, match=problem.replace('(', r'\(')):
        image_to_rgb(msg)


def test_odd_width_yuv422_is_refused():
    with pytest.raises(CodecError, match='even width'):
        image_to_rgb(make_image(np.zeros((2, 3, 2), np.uint8), 'yuv422'))


def test_one_pixel_and_extreme_aspect_images():
    np.testing.assert_array_equal(image_to_rgb(make_image(RGB[:1, :1], 'rgb8')), RGB[:1, :1])
    strip = RNG.integers(0, 256, (1, 4000, 3)).astype(np.uint8)
    np.testing.assert_array_equal(image_to_rgb(make_image(strip, 'bgr8')), strip[..., ::-1])


def compressed(rgb, extension, fmt):
    ok, encoded = cv2.imencode(extension, np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    msg = CompressedImage(format=fmt)
    msg.data = array.array('B', encoded.tobytes())
    return msg


ROWS, COLUMNS = np.mgrid[0:48, 0:64]
SMOOTH = np.dstack([ROWS * 5, COLUMNS * 3, np.full((48, 64), 27)]).astype(np.uint8)


@pytest.mark.parametrize('fmt', ['png', 'bgr8; png compressed bgr8', 'PNG', ''])
def test_png_is_lossless(fmt):
    np.testing.assert_array_equal(compressed_to_rgb(compressed(SMOOTH, '.png', fmt)), SMOOTH)


@pytest.mark.parametrize('fmt', ['jpeg', 'jpg', 'rgb8; jpeg compressed bgr8', ''])
def test_jpeg_decodes_to_rgb(fmt):
    rgb = compressed_to_rgb(compressed(SMOOTH, '.jpg', fmt))
    assert rgb.shape == SMOOTH.shape and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - SMOOTH).mean() < 3


def test_grey_png_becomes_three_channels():
    ok, encoded = cv2.imencode('.png', SMOOTH[..., 0])
    msg = CompressedImage(format='png')
    msg.data = array.array('B', encoded.tobytes())
    rgb = compressed_to_rgb(msg)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], SMOOTH[..., 0])


def _with_data(msg, data):
    msg.data = array.array('B', bytes(data))
    return msg


JPEG = bytes(compressed(SMOOTH, '.jpg', 'jpeg').data)
PNG = bytes(compressed(SMOOTH, '.png', 'png').data)


@pytest.mark.parametrize('msg,problem', [
    (_with_data(CompressedImage(format='jpeg'), JPEG[:len(JPEG) // 2]), 'truncated jpeg'),
    (_with_data(CompressedImage(format='png'), PNG[:len(PNG) - 20]), 'truncated png'),
    # Zero padding after a stream cut short does not make it whole.
    (_with_data(CompressedImage(format='jpeg'), JPEG[:len(JPEG) // 2] + b'\0' * 300),
     'truncated jpeg'),
    (_with_data(CompressedImage(format='png'), PNG[:len(PNG) - 20] + b'\0' * 300),
     'truncated png'),
    (_with_data(CompressedImage(format='png'), PNG[:8] + b'\0' * 200 + PNG[-12:]), 'corrupt png'),
    (_with_data(CompressedImage(format='jpeg'), JPEG[:2] + b'\xff\xda' + b'\0' * 100 + JPEG[-2:]),
     'corrupt jpeg'),
    (_with_data(CompressedImage(format='jpeg'), PNG), 'says jpeg'),
    (_with_data(CompressedImage(format='png'), JPEG), 'says png'),
    (_with_data(CompressedImage(format='jpeg'), b''), 'no data'),
    (_with_data(CompressedImage(format='32FC1; compressedDepth png'), PNG), 'compressedDepth'),
    (_with_data(CompressedImage(format='tiff'), PNG), "'tiff'"),
    (_with_data(CompressedImage(format='webp'), JPEG), "'webp'"),
    (_with_data(CompressedImage(format=''), b'GIF89a' + b'\0' * 40), "''"),
])
def test_compressed_errors_name_the_problem(msg, problem):
    with pytest.raises(CodecError, match=problem):
        compressed_to_rgb(msg)


@pytest.mark.parametrize('data,fmt', [(JPEG, 'jpeg'), (PNG, 'png')])
def test_zero_padding_after_the_stream_is_ignored(data, fmt):
    """A frame padded to a fixed buffer size (MJPEG capture) decodes like the bare stream."""
    bare = compressed_to_rgb(_with_data(CompressedImage(format=fmt), data))
    for padding in (1, 63, 64, 4096):
        padded = compressed_to_rgb(_with_data(CompressedImage(format=fmt), data + b'\0' * padding))
        np.testing.assert_array_equal(padded, bare)


def test_compressed_pixel_limit_is_checked_before_decoding():
    # A PNG header claiming 100000 x 100000 pixels (valid checksum, valid tail): refused, not
    # allocated.
    header = bytearray(PNG[:33])
    header[16:24] = (100000).to_bytes(4, 'big') * 2
    header[29:33] = (zlib.crc32(bytes(header[12:29])) & 0xffffffff).to_bytes(4, 'big')
    msg = _with_data(CompressedImage(format='png'), bytes(header) + PNG[33:])
    with pytest.raises(CodecError, match='100000x100000'):
        compressed_to_rgb(msg)
    with pytest.raises(CodecError, match='64x48'):
        compressed_to_rgb(compressed(SMOOTH, '.jpg', 'jpeg'), max_pixels=100)


def test_depth_image_to_meters():
    metres = np.array([[0.5, np.nan, 2.0], [np.inf, 0.0, 10.25]], dtype=np.float32)
    np.testing.assert_array_equal(depth_image_to_meters(make_image(metres, '32FC1', padding=4)),
                                  metres)
    millimetres = np.array([[500, 0, 2000], [65535, 1, 10250]], dtype=np.uint16)
    for encoding in ('16UC1', 'mono16'):
        for bigendian in (False, True):
            result = depth_image_to_meters(make_image(millimetres, encoding, bigendian))
            assert result.dtype == np.float32
            np.testing.assert_allclose(
                result, [[0.5, np.nan, 2.0], [65.535, 0.001, 10.25]], rtol=1e-6)
    with pytest.raises(CodecError, match='rgb8'):
        depth_image_to_meters(make_image(RGB, 'rgb8'))
