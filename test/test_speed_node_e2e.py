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

"""benchmarks/bench_node_e2e.py end to end: the real node process, a short synthetic camera run."""

import json
import os
import sys

try:
    import bench_node_e2e
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), 'benchmarks'))
    import bench_node_e2e
import pytest

pytestmark = pytest.mark.ros


def test_summarise_counts_only_frames_of_the_window():
    published = [10.0, 10.1, 10.2, 10.3]
    arrivals = {'depth/image': [(9.9, 10.0), (10.1, 10.15), (10.3, 10.4)]}
    sent, stats = bench_node_e2e.summarise(published, arrivals, 10.05, 10.35)
    assert sent == 3  # 10.1, 10.2, 10.3
    topic = stats['depth/image']
    assert topic['outputs'] == 2 and topic['share_processed'] == pytest.approx(2 / 3)
    assert topic['latency_ms']['p50'] == pytest.approx(75.0)
    assert topic['latency_ms']['max'] == pytest.approx(100.0)


def test_node_e2e_smoke_writes_valid_json(tiny_model_root, tmp_path):
    out = tmp_path / 'e2e.json'
    # One intra-op thread: on a small shared CPU two spinning OpenMP threads stall the node.
    code = bench_node_e2e.main([
        '--model-root', str(tiny_model_root), '--seconds', '1.5', '--warmup-seconds', '0.5',
        '--topics', 'depth/image,points', '--node-env', 'OMP_NUM_THREADS=1',
        '--startup-timeout', '120', '--json', str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    # 30 Hz for 1.5 s, give or take one tick of the schedule.
    assert 40 <= report['published'] <= 50
    assert set(report['topics']) == {'depth/image', 'points'}
    for stats in report['topics'].values():
        assert 0.0 <= stats['share_processed'] <= 1.0
        if stats['outputs']:
            assert 0.0 < stats['latency_ms']['p50'] <= stats['latency_ms']['max']
    assert report['startup_s'] > 0
