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
requirements.txt resolves, binary wheels only, on the Pythons and machines robots run.

Each target is resolved by pip against the package index (``pip install --dry-run --report``) for
a foreign interpreter and platform: CPython 3.10 on glibc 2.35 (Ubuntu 22.04: ROS 2 Humble, and
JetPack 6 on a Jetson) and CPython 3.12 on glibc 2.39 (Ubuntu 24.04: Jazzy, Kilted), each on
x86_64 and aarch64. On all of them the distribution's numpy is 1.x (cv_bridge and python3-opencv
are built against it), so every target also asks for ``numpy<2``, as the README's robot install
does. The four resolutions run concurrently (they wait on the network, not the CPU). When the
index cannot be reached the tests skip with pip's message; any other resolution failure fails.
"""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (python version, glibc of the Ubuntu release, architecture)
TARGETS = [
    ('3.10', 35, 'x86_64'),
    ('3.10', 35, 'aarch64'),
    ('3.12', 39, 'x86_64'),
    ('3.12', 39, 'aarch64'),
]
OFFLINE_MARKERS = ('NewConnectionError', 'Temporary failure in name resolution',
                   'Network is unreachable', 'Max retries exceeded')


def _platforms(glibc_minor, arch):
    """Return pip's ``--platform`` flags for every manylinux tag a glibc 2.x system accepts."""
    tags = [f'manylinux_2_{minor}_{arch}' for minor in range(glibc_minor, 16, -1)]
    tags += [f'manylinux2014_{arch}']
    if arch == 'x86_64':
        tags += ['manylinux2010_x86_64', 'manylinux1_x86_64']
    flags = []
    for tag in tags:
        flags += ['--platform', tag]
    return flags


@pytest.fixture(scope='module')
def resolutions(tmp_path_factory):
    """Start every target's resolution at once; return ``{target: (returncode, output, pins)}``."""
    work = tmp_path_factory.mktemp('resolve')
    running = {}
    for python, glibc, arch in TARGETS:
        name = f'cp{python.replace(".", "")}-{arch}'
        report = work / f'{name}.json'
        command = [sys.executable, '-m', 'pip', 'install', '--dry-run', '--ignore-installed',
                   '--quiet', '--only-binary=:all:', '--python-version', python,
                   *_platforms(glibc, arch), '--target', str(work / name),
                   '--report', str(report), '-r', str(ROOT / 'requirements.txt'), 'numpy<2']
        running[(python, glibc, arch)] = (subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), report)
    results = {}
    for target, (process, report) in running.items():
        output, _ = process.communicate(timeout=900)
        installed = {}
        if process.returncode == 0:
            for item in json.loads(report.read_text())['install']:
                installed[item['metadata']['name'].lower()] = item['metadata']['version']
        results[target] = (process.returncode, output, installed)
    return results


def _requirement_names():
    names = []
    for line in (ROOT / 'requirements.txt').read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            names.append(line.split('>')[0].split('<')[0].split('=')[0].strip().lower())
    return names


@pytest.mark.slow
@pytest.mark.network
@pytest.mark.parametrize('python, glibc, arch', TARGETS)
def test_runtime_requirements_resolve(resolutions, python, glibc, arch):
    returncode, output, installed = resolutions[(python, glibc, arch)]
    if returncode != 0 and any(marker in output for marker in OFFLINE_MARKERS):
        pytest.skip(f'the package index is not reachable: {output.strip()[-300:]}')
    assert returncode == 0, f'requirements.txt does not resolve for CPython {python} on ' \
                            f'manylinux_2_{glibc}_{arch}:\n{output[-3000:]}'
    for name in _requirement_names():
        assert name in installed, f'{name} missing from the resolution: {sorted(installed)}'
    assert installed['numpy'].startswith('1.'), installed['numpy']
    assert not any(name.startswith('ros-') or name == 'pytest' for name in installed), \
        'the runtime requirements pull ROS client wheels or test tools'
