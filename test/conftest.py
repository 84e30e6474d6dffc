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

"""Shared test set-up: an isolated ROS 2 domain and tiny real-layout weights."""

import os
import random
import tempfile

import pytest

# Every test process gets its own DDS domain on loopback so parallel runs never cross-talk.
os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TQDM_DISABLE', '1')
# The empty-prompt embedding cache of the user (~/.cache/genpercept_ros) must neither serve nor
# receive test embeddings: tests that count text-encoder runs would pass or fail by history.
os.environ['GENPERCEPT_CACHE_DIR'] = tempfile.mkdtemp(prefix='genpercept_test_cache_')


@pytest.fixture(scope='session')
def tiny_model_root(tmp_path_factory):
    """Tiny randomly initialised checkpoints of every component, in the real folder layout."""
    from genpercept_ros.model.tiny_weights import make_tiny_weights
    root = tmp_path_factory.mktemp('model_root')
    make_tiny_weights(root, full_size=False, seed=0)
    return root
