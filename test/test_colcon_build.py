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

"""`colcon build` of the package installs the executables and the share/ files ROS users need."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLCON = pathlib.Path(sys.executable).with_name('colcon')


@pytest.mark.slow
@pytest.mark.skipif(not COLCON.exists(), reason='colcon-common-extensions not installed')
def test_colcon_build_installs_package(tmp_path):
    src = tmp_path / 'src' / 'genpercept_ros'
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        '.venv', '.git', 'build', 'install', 'log', '__pycache__', '*.egg-info', 'demo_output',
        '.pytest_cache', '.hypothesis'))
    env = dict(os.environ)
    env.pop('COLCON_PREFIX_PATH', None)
    result = subprocess.run(
        [str(COLCON), 'build', '--base-paths', str(tmp_path / 'src'),
         '--build-base', str(tmp_path / 'build'), '--install-base', str(tmp_path / 'install')],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = tmp_path / 'install' / 'genpercept_ros'
    for exe in ('genpercept_node', 'genpercept'):
        assert (prefix / 'lib' / 'genpercept_ros' / exe).is_file(), exe
    share = prefix / 'share' / 'genpercept_ros'
    assert (share / 'package.xml').is_file()
    assert (share / 'launch' / 'genpercept.launch.py').is_file()
    assert (share / 'config' / 'genpercept.yaml').is_file()
    assert (share / 'rviz' / 'genpercept.rviz').is_file()
    marker = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'genpercept_ros'
    assert marker.is_file()
