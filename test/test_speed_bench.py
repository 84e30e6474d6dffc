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
        assert row['processing_resolution'] == 64 and row['processing_size'] == [48, 64]
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


try:
    import bench_gpu
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), 'benchmarks'))
    import bench_gpu


def test_bench_gpu_smoke_answers_every_section(tmp_path):
    out = tmp_path / 'gpu.json'
    # A generous budget: the guards must not fire on a loaded CI machine (measured here: 2 min
    # wall for 35 s of CPU time at load average 19).
    assert bench_gpu.main(['--smoke', '--device', 'cpu', '--budget-s', '3000',
                           '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    sections = report['sections']
    assert list(sections) == [name for name, _ in bench_gpu.SECTIONS]
    statuses = {name: section['status'] for name, section in sections.items()}
    assert statuses == {name: 'ok' for name in statuses if name != 'compile'} | {
        'compile': 'skipped'}, {name: sections[name].get('error') for name in sections}
    assert sections['ceilings']['matmul_bf16']['tflops'] > 0
    assert sections['ceilings']['copy']['gb_per_s'] > 0
    # The frames are camera-sized and resized by the pipeline: 64x48 at 64 stays 48x64 here.
    e2e = {(row['tasks'], row['path'], row['batch']): row
           for row in sections['end_to_end']['rows']}
    assert set(e2e) == {(tasks, path, batch) for tasks in ('depth', 'depth+normal')
                        for path in ('eager', 'channels_last') for batch in (1, 2)}
    assert all(row['per_frame_ms'] > 0 and row['processing_size'] == [48, 64]
               for row in e2e.values())
    skipped = {entry['path']: entry['reason'] for entry in sections['end_to_end']['skipped']}
    if not torch.cuda.is_available():
        assert 'CUDA' in skipped['cuda_graphs']
    errors = sections['bf16_vs_fp32']
    assert 0 < errors['depth_raw']['max_abs'] < 0.5 and 0 < errors['normal_raw']['max_abs'] < 0.5
    # The SDPA probe saw the VAE's single-head attention (head dim = the tiny VAE's 32
    # channels) and the UNet's multi-head attention, and named an aten implementation.
    calls = sections['sdpa_kernels']['calls']
    vae = [call for call in calls if call['module'] == 'vae_decoder']
    unet = [call for call in calls if call['module'] == 'unet']
    assert vae and all(call['query_shape'][1] == 1 and call['head_dim'] == 32 for call in vae)
    assert unet and all(call['ops'] for call in calls)
    assert all('scaled_dot_product' in op for call in calls for op in call['ops'])
    references = {row['tasks']: row for row in sections['reference']['rows']}
    assert set(references) == {'depth', 'depth+normal'}
    assert all(row['speedup'] > 0 for row in references.values())
    modules = {(row['module'], row['variant']): row for row in sections['modules']['rows']}
    assert {module for module, _ in modules} == {'encoder', 'unet', 'decoder'}
    assert all(row['gflop'] > 0 and row['share_of_floor'] > 0 for row in modules.values())
    # The fast decoder: both decoders timed alone and in predict(); accuracy not claimed.
    fast = sections['fast_decoder']
    assert {(row['what'], row['decoder']) for row in fast['rows']} == {
        (what, decoder) for what in ('decoder', 'predict') for decoder in ('vae', 'taesd')}
    assert all(row['median_ms'] > 0 for row in fast['rows'])
    assert 'not measured' in fast['accuracy']


def test_bench_gpu_guard_records_a_timeout_and_carries_on(tmp_path, monkeypatch):
    def stuck(self, section):
        section['partial'] = 'measured before the guard fired'
        while True:
            bench_gpu.time.sleep(0.05)

    monkeypatch.setattr(bench_gpu.Run, 'section_end_to_end', stuck)
    out = tmp_path / 'gpu.json'
    assert bench_gpu.main(['--smoke', '--device', 'cpu', '--budget-s', '8',
                           '--sections', 'end_to_end,ceilings', '--json', str(out)]) == 0
    sections = json.loads(out.read_text())['sections']
    assert sections['end_to_end']['status'] == 'timeout'
    assert sections['end_to_end']['partial'] == 'measured before the guard fired'
    assert sections['end_to_end']['seconds'] < 4.0
    assert sections['ceilings']['status'] == 'ok'
