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

"""benchmarks/bench_ground.py end to end at a tiny size (no timing assertions)."""

import os
import sys

try:
    import bench_ground
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), 'benchmarks'))
    import bench_ground


def test_bench_ground_prints_every_row(capsys):
    assert bench_ground.main(['--width', '96', '--height', '72', '--repeat', '1']) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith('| ') and not line.startswith('| step')]
    assert len(rows) == 8
    for row in rows:
        low, median = row.rsplit('|', 2)[1].split()
        assert float(low) > 0 and float(median.strip('()')) >= float(low)
