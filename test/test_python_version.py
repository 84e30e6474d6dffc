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
No syntax or standard-library use newer than Python 3.10 (ROS 2 Humble, JetPack 6).

vermin (github.com/netromdk/vermin) reports the minimum Python version of every construct,
module, function and keyword argument it knows; ``-t=3.10-`` with ``--violations`` lists what
needs more than 3.10 and exits non-zero.
"""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
VERMIN = pathlib.Path(sys.executable).with_name('vermin')
CHECKED = ['genpercept_ros', 'launch', 'test', 'benchmarks', 'setup.py']


def _vermin(*paths):
    return subprocess.run(
        [str(VERMIN), '-t=3.10-', '--violations', '--no-tips', '--eval-annotations', *paths],
        cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.linter
@pytest.mark.skipif(not VERMIN.exists(), reason='vermin is not installed (requirements-test.txt)')
def test_code_runs_on_python_3_10():
    result = _vermin(*CHECKED)
    assert result.returncode == 0, f'code newer than Python 3.10:\n{result.stdout}{result.stderr}'


@pytest.mark.linter
@pytest.mark.skipif(not VERMIN.exists(), reason='vermin is not installed (requirements-test.txt)')
def test_the_check_catches_3_11_only_code(tmp_path):
    probe = tmp_path / 'probe.py'
    probe.write_text('import tomllib\nfrom datetime import UTC\n')
    result = _vermin(str(probe))
    assert result.returncode != 0
    assert "'tomllib' module requires" in result.stdout
    assert "'datetime.UTC' member requires" in result.stdout
