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
Copyright and licence headers, checked as ament_copyright does.

ament_copyright is not on the package registries the standalone install uses, so this test
applies its rule directly: every Python file we ship (package, launch files, tests, benchmarks,
setup.py) starts with a copyright line and the Apache-2.0 licence header.
"""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADER = (ROOT / 'docs' / 'license_header.txt').read_text().splitlines()[2:]
SCANNED = ['genpercept_ros', 'launch', 'test', 'benchmarks']


def _python_files():
    files = [ROOT / 'setup.py']
    for folder in SCANNED:
        files.extend(sorted((ROOT / folder).rglob('*.py')))
    return [f for f in files if '__pycache__' not in f.parts]


@pytest.mark.copyright
@pytest.mark.linter
def test_copyright_headers():
    missing = []
    for path in _python_files():
        head = path.read_text().splitlines()[:20]
        has_copyright = any(line.startswith('# Copyright ') for line in head)
        has_licence = all(line in head for line in HEADER if line.strip('# '))
        if not (has_copyright and has_licence):
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, 'files without copyright/Apache-2.0 header: ' + ', '.join(missing)


def test_copyright_check_sees_files():
    """Guard against a scan that silently finds nothing."""
    assert len(_python_files()) >= 5
