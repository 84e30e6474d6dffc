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

"""Fast paths (bf16, channels_last, CUDA graphs) against the fp32 eager path."""

import functools

from genpercept_ros.geometry.synthetic import box_room
from genpercept_ros.model.acceleration import apply_cuda_graphs
from genpercept_ros.model.acceleration import cuda_graphs_unavailable_reason
from genpercept_ros.model.predictor import GenPerceptPredictor
import numpy as np
import pytest
import torch


@functools.lru_cache(maxsize=None)
def _predictor(root, dtype='fp32', channels_last=False, device='cpu'):
    return GenPerceptPredictor.from_pretrained('depth-v2', 'normal-v2', model_root=root,
                                               device=device, dtype=dtype,
                                               channels_last=channels_last)


def _frames(count=2, width=80, height=60):
    rgb = box_room(width, height).rgb
    return [np.ascontiguousarray(np.roll(rgb, 9 * index, axis=1)) for index in range(count)]


def _cpu_bf16_unavailable_reason():
    try:
        weight = torch.ones(2, 3, 3, 3, dtype=torch.bfloat16)
        torch.nn.functional.conv2d(torch.ones(1, 3, 8, 8, dtype=torch.bfloat16), weight)
    except RuntimeError as error:
        return f'bf16 convolution does not run on this CPU/torch build: {error}'
    return None


def test_bf16_outputs_close_to_fp32(tiny_model_root):
    reason = _cpu_bf16_unavailable_reason()
    if reason:
        pytest.skip(reason)
    frames = _frames()
    exact = _predictor(tiny_model_root).predict(frames, processing_resolution=64)
    fast = _predictor(tiny_model_root, 'bf16').predict(frames, processing_resolution=64)
    for name in ('depth_raw', 'normal_raw'):
        for ours, baseline in zip(getattr(fast, name), getattr(exact, name)):
            assert ours.dtype == np.float32 and ours.shape == baseline.shape
            assert 0.0 <= ours.min() and ours.max() <= 1.0
            difference = np.abs(ours - baseline)
            # It really ran in bf16 (an fp32 fallback would agree to the last bit) ...
            assert difference.max() > 1e-4
            # ... and within bf16 rounding as amplified by random tiny weights: measured here
            # mean 2e-3 (depth) / 6e-3 (normals), max 2.1e-2 / 5.7e-2. Trained weights are
            # judged against the 2e-2 max bound by benchmarks/bench_model.py. A wrong cast or
            # channel order gives errors of order 0.1-0.5.
            assert difference.mean() < 1e-2
            assert difference.max() < 0.1


def test_channels_last_matches_contiguous(tiny_model_root):
    frames = _frames()
    plain = _predictor(tiny_model_root).predict(frames, processing_resolution=64)
    fast = _predictor(tiny_model_root, channels_last=True).predict(
        frames, processing_resolution=64)
    for name in ('depth_raw', 'normal_raw'):
        for ours, baseline in zip(getattr(fast, name), getattr(plain, name)):
            # Same maths, other convolution kernels for NHWC: only the last bits may move.
            np.testing.assert_allclose(ours, baseline, rtol=0, atol=1e-5)


def test_cuda_graphs_refuse_a_cpu_predictor(tiny_model_root):
    assert 'CUDA' in cuda_graphs_unavailable_reason('cpu')
    with pytest.raises(ValueError, match='CUDA graphs need a CUDA device'):
        apply_cuda_graphs(_predictor(tiny_model_root))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='CUDA graphs need a CUDA device')
def test_cuda_graphs_match_eager_on_gpu(tiny_model_root):
    frames = _frames()
    eager = GenPerceptPredictor.from_pretrained('depth-v2', 'normal-v2', device='cuda',
                                                model_root=tiny_model_root, dtype='fp32')
    graphed = apply_cuda_graphs(GenPerceptPredictor.from_pretrained(
        'depth-v2', 'normal-v2', device='cuda', model_root=tiny_model_root, dtype='fp32'))
    for shift in (0, 1):  # the second call replays the captured graphs with new inputs
        moved = [np.ascontiguousarray(np.roll(frame, shift, axis=0)) for frame in frames]
        expected = eager.predict(moved, processing_resolution=64)
        replayed = graphed.predict(moved, processing_resolution=64)
        for name in ('depth_raw', 'normal_raw'):
            for ours, baseline in zip(getattr(replayed, name), getattr(expected, name)):
                # Same kernels replayed; 1e-4 leaves room for cuDNN picking another algorithm.
                np.testing.assert_allclose(ours, baseline, rtol=0, atol=1e-4)
    # Input already on the device (no staging copy) goes through the same graphs.
    on_device = graphed.predict([torch.from_numpy(frame).cuda() for frame in frames],
                                processing_resolution=64)
    plain = eager.predict(frames, processing_resolution=64)
    np.testing.assert_allclose(on_device.depth_raw[0], plain.depth_raw[0], rtol=0, atol=1e-4)
    assert graphed._unets['depth'].captured_signatures == 1
