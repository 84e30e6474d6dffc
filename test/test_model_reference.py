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
Equality with the original aim-uofa/GenPercept code, when a checkout of it is available.

Set ``GENPERCEPT_REFERENCE_REPO`` to a checkout of https://github.com/aim-uofa/GenPercept and
make ``torchvision`` importable (``PYTHONPATH``); otherwise these tests skip. They run the
reference pipelines (v2 root code and ``GenPercept_v1``) on the tiny weights in a subprocess and
require the raw outputs to match this package's ``depth_raw``/``normal_raw`` to 1e-5.
"""

import os
from pathlib import Path
import subprocess
import sys

import pytest

REPO = os.environ.get('GENPERCEPT_REFERENCE_REPO', '')
HARNESS = Path(__file__).with_name('model_reference_harness.py')


@pytest.mark.slow
@pytest.mark.skipif(not REPO, reason='set GENPERCEPT_REFERENCE_REPO to a GenPercept checkout')
@pytest.mark.parametrize('group, variants', [
    ('v2', {'depth-v2', 'disparity-v2', 'normal-v2', 'disparity-dpt-v2'}),
    ('v1', {'depth-v1', 'normal-v1'}),
])
def test_matches_the_reference_pipeline(tiny_model_root, group, variants):
    pytest.importorskip('torchvision')
    result = subprocess.run(
        [sys.executable, str(HARNESS), group, REPO, str(tiny_model_root)],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    worst = {line.split()[1]: float(line.split()[2])
             for line in result.stdout.splitlines() if line.startswith('WORST ')}
    assert set(worst) == variants
    assert max(worst.values()) <= 1e-5, worst
