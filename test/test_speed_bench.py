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

"""benchmarks/bench_model.py end to end on the CPU in its smoke mode (no timing assertions)."""

import json
import os
import sys

try:
    import bench_model
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), 'benchmarks'))
    import bench_model
import pytest
import torch


def test_bench_model_smoke_writes_valid_json(tiny_model_root, tmp_path, capsys):
    out = tmp_path / 'bench.json'
    code = bench_model.main([
        '--smoke', '--model-root', str(tiny_model_root), '--device', 'cpu',
        '--tasks', 'depth+normal', '--dtypes', 'fp32,bf16', '--modes', 'eager,cudagraph',
        '--json', str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report['machine']['device'] == 'cpu'
    rows = {(row['dtype'], row['mode']): row for row in report['rows']}
    assert set(rows) == {('fp32', 'eager'), ('bf16', 'eager')}
    for row in rows.values():
        assert (row['width'], row['height'], row['batch']) == (64, 48, 1)
        assert row['iters'] == 1 and row['median_ms'] > 0 and row['peak_memory_bytes'] > 0
        assert set(row['max_abs_diff_vs_fp32_eager']) == {'depth', 'normal'}
        assert row['speedup_vs_reference'] > 0
    # The baseline compared with itself, and our fp32 against the reference-style pipeline.
    assert rows['fp32', 'eager']['max_abs_diff_vs_fp32_eager'] == {'depth': 0.0, 'normal': 0.0}
    (reference,) = report['reference_rows']
    assert reference['mode'] == 'reference-style' and reference['dtype'] == 'fp32'
    assert max(reference['max_abs_diff_vs_fp32_eager'].values()) <= 1e-5
    assert 'bf16_within_tolerance' in rows['bf16', 'eager']
    # CUDA graphs cannot run on the CPU: reported as skipped, with the reason.
    skipped = {(entry['dtype'], entry['mode']): entry['reason'] for entry in report['skipped']}
    if not torch.cuda.is_available():
        assert 'CUDA' in skipped['fp32', 'cudagraph'] and 'CUDA' in skipped['bf16', 'cudagraph']
    assert 'side by side' in capsys.readouterr().out


def test_bench_model_rejects_unknown_modes(tiny_model_root):
    with pytest.raises(SystemExit, match='unknown mode/task'):
        bench_model.main(['--smoke', '--model-root', str(tiny_model_root), '--modes', 'turbo'])
