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
sensor_msgs/Image and CompressedImage <-> numpy, vectorised, without cv_bridge.

Hand-written on purpose: ROS 2's cv_bridge is not on PyPI (the PyPI ``cv-bridge`` is the ROS 1
package), and the node must run from the PyPI wheels as well as from a ROS install.
"""

import io
import re
import sys
import warnings

import cv2
import numpy as np
from PIL import JpegImagePlugin
from PIL import PngImagePlugin
from sensor_msgs.msg import Image

from ._bytes import bytes_array
from ._bytes import message_with_fast_data
from .errors import CodecError

# Named encodings of sensor_msgs/image_encodings.hpp: (numpy base type, channels).
_NAMED_ENCODINGS = {
    'rgb8': ('u1', 3), 'bgr8': ('u1', 3), 'rgba8': ('u1', 4), 'bgra8': ('u1', 4),
    'mono8': ('u1', 1), 'mono16': ('u2', 1),
    'rgb16': ('u2', 3), 'bgr16': ('u2', 3), 'rgba16': ('u2', 4), 'bgra16': ('u2', 4),
    'bayer_rggb8': ('u1', 1), 'bayer_bggr8': ('u1', 1),
    'bayer_gbrg8': ('u1', 1), 'bayer_grbg8': ('u1', 1),
    'yuv422': ('u1', 2), 'yuv422_yuy2': ('u1', 2),
}
_HEADER_READERS = {'jpeg': JpegImagePlugin.JpegImageFile, 'png': PngImagePlugin.PngImageFile}
_GENERIC_ENCODING = re.compile(r'^(8U|8S|16U|16S|32S|32F|64F)C([1-4])$')
_GENERIC_TYPES = {'8U': 'u1', '8S': 'i1', '16U': 'u2', '16S': 'i2',
                  '32S': 'i4', '32F': 'f4', '64F': 'f8'}

# Conversions to RGB of 8-bit (after any 16 -> 8 bit reduction) pixels. Generic 3/4-channel
# encodings follow OpenCV's channel order (BGR / BGRA), as cv_bridge users produce them.
_TO_RGB = {
    'rgb8': None, 'rgb16': None, 'bgr8': cv2.COLOR_BGR2RGB, 'bgr16': cv2.COLOR_BGR2RGB,
    'rgba8': cv2.COLOR_RGBA2RGB, 'rgba16': cv2.COLOR_RGBA2RGB,
    'bgra8': cv2.COLOR_BGRA2RGB, 'bgra16': cv2.COLOR_BGRA2RGB,
    'mono8': cv2.COLOR_GRAY2RGB, 'mono16': cv2.COLOR_GRAY2RGB,
    '8UC1': cv2.COLOR_GRAY2RGB, '16UC1': cv2.COLOR_GRAY2RGB,
    '8UC3': cv2.COLOR_BGR2RGB, '16UC3': cv2.COLOR_BGR2RGB,
    '8UC4': cv2.COLOR_BGRA2RGB, '16UC4': cv2.COLOR_BGRA2RGB,
    # ROS names Bayer patterns by the top-left 2x2 block, OpenCV by the second row's
    # pixels, hence the apparent mismatch (the mapping cv_bridge uses).
    'bayer_rggb8': cv2.COLOR_BayerBG2RGB, 'bayer_bggr8': cv2.COLOR_BayerRG2RGB,
    'bayer_gbrg8': cv2.COLOR_BayerGR2RGB, 'bayer_grbg8': cv2.COLOR_BayerGB2RGB,
    'yuv422': cv2.COLOR_YUV2RGB_UYVY, 'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUY2,
}
RGB_ENCODINGS = tuple(sorted(_TO_RGB))

# OpenCV >= 4.10 decodes straight to RGB; older versions decode BGR and we convert.
_IMREAD_RGB = getattr(cv2, 'IMREAD_COLOR_RGB', None)
# imdecode applies an EXIF orientation tag (JPEG APP1, PNG eXIf) unless told not to; the
# stored pixel grid is what camera_info describes, as image_transport's compressed subscriber
# decodes it, so orientation is always ignored. 16-bit PNGs are reduced by dropping the low
# byte (libpng's strip_16), the same ``v >> 8`` as 16-bit Image encodings.
_IMREAD_FLAGS = ((_IMREAD_RGB if _IMREAD_RGB is not None else cv2.IMREAD_COLOR)
                 | cv2.IMREAD_IGNORE_ORIENTATION)
_JPEG_MAGIC = b'\xff\xd8\xff'
_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
# Compressed images declaring more pixels than this (~67 Mpx, 8192 x 8192) are refused
# before decoding.
DEFAULT_MAX_PIXELS = 1 << 26
_IS_BIGENDIAN = 1 if sys.byteorder == 'big' else 0


def encoding_layout(encoding):
    """
    Return ``(dtype, channels)`` of an image encoding (native byte order).

    Raises CodecError for encodings this package does not handle.
    """
    if not isinstance(encoding, str):
        raise CodecError(f'image encoding must be a string, got {type(encoding).__name__}')
    if encoding in _NAMED_ENCODINGS:
        base, channels = _NAMED_ENCODINGS[encoding]
        return np.dtype(base), channels
    match = _GENERIC_ENCODING.match(encoding)
    if match:
        return np.dtype(_GENERIC_TYPES[match.group(1)]), int(match.group(2))
    raise CodecError(
        f'unsupported image encoding {encoding!r}; supported: {", ".join(RGB_ENCODINGS)} '
        'and the generic (8U|8S|16U|16S|32S|32F|64F)C<1-4> forms')


def image_to_array(msg):
    """
    Return the pixels of a sensor_msgs/Image as an (H, W) or (H, W, C) native-endian array.

    Honours ``step`` (row padding) and ``is_bigendian``; the channels are those of the
    encoding, unconverted (e.g. bgr8 stays BGR). The result is a new C-contiguous array that
    does not share memory with the message.
    """
    pixels = _pixel_view(msg)
    return np.array(pixels, dtype=pixels.dtype.newbyteorder('='), order='C', copy=True)


def _pixel_view(msg):
    """Return a (possibly strided, non-native-endian) view of the pixels of ``msg``."""
    dtype, channels = encoding_layout(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise CodecError(f'zero-sized image ({width}x{height}, encoding {msg.encoding!r})')
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise CodecError(
            f'image step {step} is smaller than one row of {width} px x {channels} ch x '
            f'{dtype.itemsize} B = {row_bytes} bytes (encoding {msg.encoding!r})')
    data = msg.data
    if len(data) < height * step:
        raise CodecError(
            f'image data has {len(data)} bytes, fewer than height {height} x step {step} = '
            f'{height * step} (encoding {msg.encoding!r}, {width}x{height})')
    try:
        rows = np.frombuffer(data, dtype=np.uint8, count=height * step)
    except (TypeError, ValueError) as error:
        raise CodecError(f'image data is not a byte buffer: {error}') from None
    rows = rows.reshape(height, step)[:, :row_bytes]
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder('>' if msg.is_bigendian else '<')
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rows.view(dtype).reshape(shape)


def image_to_rgb(msg):
    """
    Convert a sensor_msgs/Image to an (H, W, 3) uint8 RGB array.

    Supported encodings: rgb8, bgr8, rgba8, bgra8, mono8, mono16, rgb16, bgr16, rgba16, bgra16,
    8UC1/3/4, 16UC1/3/4 (3/4 channels in OpenCV's BGR/BGRA order), Bayer 8-bit patterns and
    yuv422 (UYVY) / yuv422_yuy2. 16-bit values are reduced to 8 bits by dropping the low byte
    (``v >> 8``, 65535 -> 255); alpha is discarded. ``step`` and ``is_bigendian`` are
    honoured. Raises CodecError naming the problem for any other input.
    """
    encoding = msg.encoding
    if not isinstance(encoding, str) or encoding not in _TO_RGB:
        raise CodecError(
            f'cannot convert image encoding {encoding!r} to RGB; supported: '
            f'{", ".join(RGB_ENCODINGS)}')
    pixels = _pixel_view(msg)
    if pixels.dtype.itemsize == 2:
        pixels = (pixels >> 8).astype(np.uint8)
    if encoding.startswith('yuv422') and pixels.shape[1] % 2:
        raise CodecError(f'{encoding} images need an even width, got {pixels.shape[1]}')
    code = _TO_RGB[encoding]
    if code is None:
        return np.array(pixels, order='C', copy=True)
    try:
        return cv2.cvtColor(np.ascontiguousarray(pixels), code)
    except cv2.error as error:
        raise CodecError(f'cannot convert {encoding} image of shape {pixels.shape} to RGB: '
                         f'{error}') from None


def compressed_to_rgb(msg, max_pixels=DEFAULT_MAX_PIXELS):
    """
    Decode a sensor_msgs/CompressedImage (jpeg or png) to an (H, W, 3) uint8 RGB array.

    ``format`` must name jpeg/jpg or png (e.g. ``'jpeg'`` or ``'bgr8; jpeg compressed bgr8'``);
    an empty format is accepted when the data starts with a JPEG or PNG signature.
    The stored pixel grid is returned: an EXIF orientation tag is ignored (as
    image_transport's compressed subscriber decodes), so pixels keep matching camera_info.
    16-bit PNGs are reduced to 8 bits by ``v >> 8``, as :func:`image_to_rgb` does.
    ``compressedDepth`` payloads, other formats, data that does not match the format,
    corrupt or truncated streams and images whose header declares more than ``max_pixels``
    pixels (checked before decoding, so a tiny message cannot make us allocate gigabytes)
    raise CodecError.
    """
    fmt = msg.format if isinstance(msg.format, str) else ''
    lowered = fmt.lower()
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size == 0:
        raise CodecError(f'compressed image ({fmt!r}) has no data')
    head = data[:8].tobytes()
    if 'compresseddepth' in lowered:
        raise CodecError(
            f'compressed image format {fmt!r} is a compressedDepth payload (a depth transport); '
            'subscribe to the colour image\'s "compressed" transport instead')
    if 'jpeg' in lowered or 'jpg' in lowered:
        kind = 'jpeg'
    elif 'png' in lowered:
        kind = 'png'
    elif fmt.strip() == '' and head.startswith(_JPEG_MAGIC):
        kind = 'jpeg'
    elif fmt.strip() == '' and head.startswith(_PNG_MAGIC):
        kind = 'png'
    else:
        raise CodecError(f'unsupported compressed image format {fmt!r}; expected jpeg or png')
    magic = _JPEG_MAGIC if kind == 'jpeg' else _PNG_MAGIC
    if not head.startswith(magic):
        raise CodecError(f'compressed image format {fmt!r} says {kind} but the data does not '
                         f'start with a {kind} signature (first bytes {head[:4].hex()})')
    # Drivers may pad a frame to a fixed buffer size with zero bytes after the image (MJPEG
    # capture buffers); a JPEG ends in FF D9 and a PNG in IEND's constant CRC AE 42 60 82, so the
    # stream's own end is found before the zero padding.
    padding = data.size - (int(np.flatnonzero(data)[-1]) + 1 if data.any() else 0)
    tail = data[max(0, data.size - padding - 64):data.size - padding].tobytes()
    # A stream cut short still decodes to a partly grey image, so require its end marker.
    end_marker = b'\xff\xd9' if kind == 'jpeg' else b'IEND'
    if end_marker not in tail:
        raise CodecError(f'truncated {kind} data ({data.size} bytes): no end-of-image marker')
    width, height = _declared_size(kind, data)
    if width <= 0 or height <= 0 or width * height > max_pixels:
        raise CodecError(f'{kind} header declares a {width}x{height} image (limit '
                         f'{max_pixels} pixels)')
    try:
        decoded = cv2.imdecode(data, _IMREAD_FLAGS)
    except cv2.error as error:
        raise CodecError(f'corrupt {kind} data ({data.size} bytes): {error}') from None
    if decoded is None or decoded.ndim != 3 or decoded.shape[2] != 3 or decoded.size == 0:
        raise CodecError(f'corrupt {kind} data ({data.size} bytes): decoding failed')
    if decoded.shape[:2] != (height, width):
        raise CodecError(f'corrupt {kind} data: header says {width}x{height}, decoded '
                         f'{decoded.shape[1]}x{decoded.shape[0]}')
    return decoded if _IMREAD_RGB is not None else cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def _declared_size(kind, data):
    """
    Return (width, height) from a JPEG or PNG header, without decoding the pixels.

    Pillow's format plugins parse the header when constructed; ``PIL.Image.open`` is not used
    because its decompression-bomb check would refuse large declarations before this module can
    name the declared size against its own ``max_pixels`` limit.
    """
    try:
        # Pillow warns about corrupt EXIF while reading the header; EXIF is ignored here anyway.
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            with _HEADER_READERS[kind](io.BytesIO(data.tobytes())) as image:
                return image.size
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise CodecError(f'corrupt {kind} data: unreadable header ({error})') from None


def array_to_image(array, encoding, header=None):
    """
    Build a sensor_msgs/Image from an (H, W) or (H, W, C) array without per-byte copies.

    ``encoding`` must agree with the array's dtype and channel count (e.g. 32FC1 float32
    (H, W), rgb8 uint8 (H, W, 3), 16UC1 uint16, 32FC3 float32 (H, W, 3)); the data is written
    once into an ``array.array('B')`` (assigning ``bytes`` goes through rosidl's slow
    per-element validation). ``header`` is used as given (not copied).
    """
    pixels = np.asarray(array)
    dtype, channels = encoding_layout(encoding)
    if pixels.ndim == 3 and pixels.shape[2] == 1 and channels == 1:
        pixels = pixels[..., 0]
    expected_ndim = 2 if channels == 1 else 3
    if (pixels.ndim != expected_ndim
            or (expected_ndim == 3 and pixels.shape[2] != channels)):
        raise CodecError(f'encoding {encoding!r} needs an array of shape (H, W'
                         f'{"" if channels == 1 else f", {channels}"}), got {pixels.shape}')
    if pixels.dtype.kind != dtype.kind or pixels.dtype.itemsize != dtype.itemsize:
        raise CodecError(f'encoding {encoding!r} needs dtype {dtype}, got {pixels.dtype}')
    height, width = pixels.shape[:2]
    if height == 0 or width == 0:
        raise CodecError(f'cannot publish a zero-sized {width}x{height} image')
    pixels = np.ascontiguousarray(pixels, dtype=dtype.newbyteorder('='))
    msg = message_with_fast_data(Image)
    if header is not None:
        msg.header = header
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = _IS_BIGENDIAN
    msg.step = width * channels * dtype.itemsize
    msg.data = bytes_array(pixels)
    return msg


def depth_image_to_meters(msg):
    """
    Convert a metric depth image to (H, W) float32 metres.

    32FC1 is taken as metres (NaN and +-Inf kept as REP 117 defines them); 16UC1 and mono16
    are millimetres (REP 118) with 0 -> NaN. Any other encoding raises CodecError.
    """
    if msg.encoding == '32FC1':
        return image_to_array(msg)
    if msg.encoding in ('16UC1', 'mono16'):
        millimetres = image_to_array(msg)
        metres = millimetres.astype(np.float32) * np.float32(0.001)
        metres[millimetres == 0] = np.nan
        return metres
    raise CodecError(f'depth image encoding {msg.encoding!r} is not metric depth; expected '
                     '32FC1 (metres) or 16UC1 (millimetres)')
