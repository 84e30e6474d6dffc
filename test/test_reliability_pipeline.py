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
Frame size limits and bad references in FramePipeline, without ROS transport.

The size rule must agree with the model's own ``processing_size`` (the pipeline refuses exactly
the frames the model would fail on, before running it); oversized messages are refused from
their header, before any pixel is converted.
"""

from builtin_interfaces.msg import Time
from genpercept_ros.messages.errors import CodecError
from genpercept_ros.model.predictor import PredictionOutput
from genpercept_ros.model.registry import MODELS
from genpercept_ros.model.sizes import processing_size
from genpercept_ros.pipeline import check_frame_size
from genpercept_ros.pipeline import decode_image
from genpercept_ros.pipeline import Frame
from genpercept_ros.pipeline import FramePipeline
from genpercept_ros.pipeline import FrameSizeError
from genpercept_ros.pipeline import PipelineSettings
from genpercept_ros.pipeline.parameters import DEFAULTS
from hypothesis import given
from hypothesis import strategies as st
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import CompressedImage
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from test_messages_fuzz import compressed_images
from test_messages_fuzz import FUZZ
from test_messages_fuzz import images
from test_reliability_bad_input import png_declaring


class RecordingPredictor:
    """A depth-only stand-in returning a ramp; records the image sizes it was given."""

    depth_spec = MODELS['depth-v2']
    normal_spec = None

    def __init__(self):
        self.calls = []

    def predict(self, images, processing_resolution, output_resolution, tasks):
        self.calls.append([image.shape[:2] for image in images])
        out = PredictionOutput()
        out.depth = [np.tile(np.linspace(0, 1, image.shape[1], dtype=np.float32),
                             (image.shape[0], 1)) for image in images]
        out.depth_kind = 'relative_depth'
        return out


def header(seconds, frame_id='cam_optical'):
    """Return a Header stamped at ``seconds``."""
    return Header(stamp=Time(sec=int(seconds)), frame_id=frame_id)


def model_accepts(width, height, resolution):
    """Return whether the model's own size rule takes a width x height frame."""
    try:
        processing_size(height, width, resolution)
    except ValueError:
        return False
    return True


SIZES = [(1, 1), (2, 2), (7, 7), (8, 8), (64, 48), (4000, 2), (2, 4000), (2048, 2),
         (2048, 8), (768, 7), (100, 1), (9, 1000), (1000, 9), (30000, 20), (33, 4000),
         (4096, 4096), (640, 1), (1920, 1080)]


@pytest.mark.parametrize('resolution', [0, 8, 64, 768])
def test_size_rule_matches_the_model(resolution):
    """Refused exactly when the model's processing_size would fail (fewer than 8 px a side)."""
    settings = PipelineSettings(processing_resolution=resolution, max_input_pixels=1 << 30)
    for width, height in SIZES:
        try:
            check_frame_size(width, height, settings)
            refused = False
        except FrameSizeError as error:
            refused = True
            assert f'{width}x{height}' in str(error)
            assert f'processing_resolution {resolution}' in str(error)
        assert refused == (not model_accepts(width, height, resolution)), (width, height)


def test_extreme_aspect_frame_does_not_spoil_the_batch():
    """A 4000x2 frame next to a good one: only the good one reaches the predictor."""
    predictor = RecordingPredictor()
    pipeline = FramePipeline(predictor, PipelineSettings(processing_resolution=64))
    wanted = frozenset({'depth/image'})
    thin = Frame(np.zeros((2, 4000, 3), np.uint8), header(1.0), camera='a', wanted=wanted)
    good = Frame(np.zeros((48, 64, 3), np.uint8), header(2.0), camera='b', wanted=wanted)
    thin_result, good_result = pipeline.process([thin, good])
    assert predictor.calls == [[(48, 64)]]
    assert thin_result.outputs == {}
    [(kind, message)] = thin_result.problems
    assert kind == 'input_size'
    assert '4000x2' in message and 'aspect ratio 2000:1' in message and '64x0' in message
    assert set(good_result.outputs) == {'depth/image'}
    assert good_result.outputs['depth/image'].header.stamp.sec == 2


def test_one_pixel_image_is_upscaled_or_refused_at_native_resolution():
    """1x1 becomes 64x64 at processing_resolution 64 (served) but stays 1x1 at 0 (refused)."""
    check_frame_size(1, 1, PipelineSettings(processing_resolution=64))
    with pytest.raises(FrameSizeError, match='1x1.*becomes 1x1 at processing_resolution 0'):
        check_frame_size(1, 1, PipelineSettings(processing_resolution=0))


def test_large_valid_image_refused_from_its_header():
    """A real 4097x4096 mono8 frame is over the default limit: refused, pixels untouched."""
    width, height = 4097, 4096
    assert width * height > DEFAULTS['max_input_pixels']
    msg = Image(width=width, height=height, encoding='mono8', step=width)
    msg.data = bytes(width * height)
    with pytest.raises(FrameSizeError) as error:
        decode_image(msg, max_pixels=DEFAULTS['max_input_pixels'])
    assert '4097x4096' in str(error.value) and 'max_input_pixels' in str(error.value)
    # Within the limit a mono8 message decodes (the limit is what refused it): grey -> RGB.
    gray = (np.arange(64 * 48) % 251).astype(np.uint8).reshape(48, 64)
    rgb = decode_image(Image(width=64, height=48, encoding='mono8', step=64,
                             data=gray.tobytes()), max_pixels=3072)
    np.testing.assert_array_equal(rgb, np.repeat(gray[:, :, None], 3, axis=2))


def test_declared_sizes_refused_before_reading_data():
    """30000x20000 with 100 bytes (raw) or a 30000x20000 PNG header: refused by size."""
    raw = Image(width=30000, height=20000, encoding='rgb8', step=90000, data=bytes(100))
    with pytest.raises(FrameSizeError, match='30000x20000 = 600 Mpx'):
        decode_image(raw, max_pixels=DEFAULTS['max_input_pixels'])
    packed = CompressedImage(format='png', data=png_declaring(30000, 20000))
    with pytest.raises(CodecError, match='30000x20000.*limit 16777216'):
        decode_image(packed, max_pixels=DEFAULTS['max_input_pixels'])


def test_zero_sized_frames_are_refused():
    """0-pixel sides are refused by the size rule and by the decoder, naming the size."""
    with pytest.raises(FrameSizeError, match='zero-sized image \\(0x48\\)'):
        check_frame_size(0, 48, PipelineSettings())
    with pytest.raises(CodecError, match='zero-sized'):
        decode_image(Image(width=64, height=0, encoding='rgb8', step=192), max_pixels=100)


def test_max_input_pixels_is_validated():
    """The limit is a validated parameter with a documented range."""
    assert PipelineSettings.from_parameters({'max_input_pixels': 64}).max_input_pixels == 64
    with pytest.raises(ValueError, match='max_input_pixels'):
        PipelineSettings.from_parameters({'max_input_pixels': 10})
    with pytest.raises(ValueError, match='max_input_pixels'):
        PipelineSettings.from_parameters({'max_input_pixels': 1.5})


def reference_image(depth_m, seconds, frame_id='cam_optical'):
    """Return a 32FC1 metre reference Image."""
    msg = Image(height=depth_m.shape[0], width=depth_m.shape[1], encoding='32FC1',
                step=depth_m.shape[1] * 4, data=depth_m.astype('<f4').tobytes())
    msg.header = header(seconds, frame_id)
    return msg


def calibrated_info():
    """Return a 64x48 CameraInfo."""
    info = CameraInfo(width=64, height=48)
    info.k = [50.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0]
    info.p = [50.0, 0.0, 31.5, 0.0, 0.0, 50.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


@pytest.mark.parametrize('name, reference, fragment', [
    ('another frame_id', reference_image(np.full((48, 64), 3.0), 5.0, 'base_link'),
     "'base_link' differs"),
    ('all NaN', reference_image(np.full((48, 64), np.nan), 5.0), 'rejected: too few'),
    ('all +Inf', reference_image(np.full((48, 64), np.inf), 5.0), 'rejected: too few'),
    ('all non-positive', reference_image(np.full((48, 64), -2.0), 5.0), 'rejected: too few'),
])
def test_unusable_depth_reference_is_reported_and_not_used(name, reference, fragment):
    """A depth reference that cannot be used: range fallback and a 'reference' problem."""
    predictor = RecordingPredictor()
    settings = PipelineSettings(processing_resolution=64, scale_mode='reference',
                                fit_min_points=20)
    pipeline = FramePipeline(predictor, settings)
    pipeline.add_reference(reference)
    [result] = pipeline.process([Frame(np.zeros((48, 64, 3), np.uint8), header(5.0),
                                       calibrated_info(), wanted=frozenset({'depth/image'}))])
    assert result.scale.source == 'fallback', name
    assert (result.scale.scale, result.scale.shift) == pytest.approx((9.5, 0.5))
    messages = [message for kind, message in result.problems if kind == 'reference']
    assert len(messages) == 1 and fragment in messages[0], result.problems


def node_decode_path(msg, resolution, max_pixels):
    """Do what the node's worker does with a message before the predictor."""
    settings = PipelineSettings(processing_resolution=resolution, max_input_pixels=max_pixels)
    rgb = decode_image(msg, max_pixels=max_pixels)
    check_frame_size(rgb.shape[1], rgb.shape[0], settings)
    return rgb


@FUZZ
@given(st.one_of(images(), compressed_images()), st.sampled_from([0, 8, 64, 768, 4096]),
       st.sampled_from([64, 100, 4096, DEFAULTS['max_input_pixels']]))
def test_fuzz_node_decode_path(msg, resolution, max_pixels):
    """Any Image/CompressedImage: a CodecError naming the problem, or a frame the model takes."""
    try:
        rgb = node_decode_path(msg, resolution, max_pixels)
    except CodecError as error:
        assert str(error)
        return
    height, width = rgb.shape[:2]
    assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
    assert width * height <= max_pixels
    assert model_accepts(width, height, resolution)
