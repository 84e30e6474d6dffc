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
The predictor at fp32 against an independent reference-style pipeline on the same weights.

``benchmarks/reference_style_pipeline.py`` loads the components with the stock diffusers /
transformers ``from_pretrained`` and runs the reference ``run.py`` recipe one image and one task
at a time, so agreement checks the predictor's loaders, conditioning, resize rules, one-step
latent maths and post-processing end to end.
"""

import functools
import os
import sys

from genpercept_ros.geometry.synthetic import box_room
from genpercept_ros.model.predictor import GenPerceptPredictor
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), 'benchmarks'))
from reference_style_pipeline import ReferenceStylePipeline  # noqa: E402

TOLERANCE = 1e-5


@functools.lru_cache(maxsize=None)
def _reference(root, depth='depth-v2', normal='normal-v2'):
    return ReferenceStylePipeline(root, depth_model=depth, normal_model=normal, device='cpu')


@functools.lru_cache(maxsize=None)
def _predictor(root, depth='depth-v2', normal='normal-v2'):
    return GenPerceptPredictor.from_pretrained(depth, normal, model_root=root, device='cpu',
                                               dtype='fp32')


def _frames():
    scene = box_room(80, 60)
    return [scene.rgb, np.ascontiguousarray(np.roll(scene.rgb, 11, axis=1))]


@pytest.mark.parametrize('resolution', [64, 96, 0])
def test_depth_and_normals_match_reference_style(tiny_model_root, resolution):
    # 64: down-scaled input, up-scaled output; 96: up-scaled input; 0: native size.
    frames = _frames()
    ours = _predictor(tiny_model_root).predict(frames, processing_resolution=resolution)
    theirs = _reference(tiny_model_root).predict(frames, processing_resolution=resolution)
    for index in range(len(frames)):
        assert ours.depth_raw[index].shape == (60, 80)
        assert ours.normal_raw[index].shape == (60, 80, 3)
        np.testing.assert_allclose(ours.depth_raw[index], theirs['depth'][index],
                                   rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(ours.normal_raw[index], theirs['normal'][index],
                                   rtol=0, atol=TOLERANCE)
    # The outputs carry signal: a constant prediction would match trivially.
    assert ours.depth_raw[0].std() > 1e-3 and ours.normal_raw[0].std() > 1e-3


def test_size_not_multiple_of_eight_matches_reference_style(tiny_model_root):
    # 70x50 at native resolution: the latent is floor(H/8) x floor(W/8) and the decoded map is
    # stretched back, as in the reference.
    frame = np.ascontiguousarray(box_room(70, 50).rgb)
    ours = _predictor(tiny_model_root).predict([frame], processing_resolution=0)
    theirs = _reference(tiny_model_root).predict([frame], processing_resolution=0)
    np.testing.assert_allclose(ours.depth_raw[0], theirs['depth'][0], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(ours.normal_raw[0], theirs['normal'][0], rtol=0, atol=TOLERANCE)


def test_disparity_variant_matches_reference_style(tiny_model_root):
    frames = _frames()[:1]
    ours = _predictor(tiny_model_root, 'disparity-v2', None).predict(
        frames, processing_resolution=64)
    theirs = _reference(tiny_model_root, 'disparity-v2', None).predict(
        frames, processing_resolution=64)
    assert ours.depth_kind == 'relative_disparity'
    np.testing.assert_allclose(ours.depth_raw[0], theirs['depth'][0], rtol=0, atol=TOLERANCE)


def test_reference_style_refuses_variants_it_does_not_implement(tiny_model_root):
    with pytest.raises(ValueError, match='disparity-dpt-v2'):
        ReferenceStylePipeline(tiny_model_root, depth_model='disparity-dpt-v2', normal_model='')
    with pytest.raises(ValueError, match='enable at least one'):
        ReferenceStylePipeline(tiny_model_root, depth_model='', normal_model='')
