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
Every dependency key of package.xml resolves with rosdep on Humble, Jazzy and Kilted.

The keys are checked against the public ros/rosdistro repository, never copied into this tree:
set ``GENPERCEPT_ROSDISTRO_SRC`` to a checkout of it (or its bare git directory) and each key must
be either a package released in ``<distro>/distribution.yaml`` or a rosdep key of
``rosdep/base.yaml`` / ``rosdep/python.yaml`` with a rule for the distro's Ubuntu release (jammy
for Humble, noble for Jazzy and Kilted). Without the variable the tests skip and say so.

The test also holds package.xml to requirements.txt: each runtime requirement is installed by one
of its keys (the pip packages of a ``-pip`` rule, or the distribution package listed below), or
is named in the package.xml comment as having no key, and that claim is checked too.
"""

import os
import pathlib
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE = os.environ.get('GENPERCEPT_ROSDISTRO_SRC')
DISTROS = {'humble': 'jammy', 'jazzy': 'noble', 'kilted': 'noble'}
# requirement -> the apt-backed rosdep key that provides it on Ubuntu
APT_KEYS = {'numpy': 'python3-numpy', 'opencv-python-headless': 'python3-opencv',
            'pyyaml': 'python3-yaml', 'pillow': 'python3-pil', 'tqdm': 'python3-tqdm',
            'torch': 'python3-torch'}
NO_KEY = ('diffusers', 'safetensors')
INSTALLERS = ('apt', 'pip', 'source', 'packages')

pytestmark = pytest.mark.skipif(
    not SOURCE, reason='GENPERCEPT_ROSDISTRO_SRC is not set (a checkout or bare git directory of '
                       'github.com/ros/rosdistro): rosdep keys not checked')


def _read(relative):
    folder = pathlib.Path(SOURCE)
    if (folder / relative).is_file():
        return (folder / relative).read_text()
    return subprocess.run(['git', '--git-dir', str(folder), 'show', f'HEAD:{relative}'],
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope='module')
def rosdep_rules():
    rules = {}
    for name in ('rosdep/base.yaml', 'rosdep/python.yaml'):
        rules.update(yaml.safe_load(_read(name)))
    return rules


def _released_packages(distro):
    packages = set()
    for name, repo in yaml.safe_load(_read(f'{distro}/distribution.yaml'))['repositories'].items():
        release = repo.get('release')
        if release:
            packages.update(release.get('packages', [name]))
    return packages


def _ubuntu_rule(rule, codename):
    """Return the rule of ``rule`` for Ubuntu ``codename`` (None where it is unavailable)."""
    os_rule = rule.get('ubuntu', rule.get('*'))
    if isinstance(os_rule, dict) and not any(key in os_rule for key in INSTALLERS):
        os_rule = os_rule.get(codename, os_rule.get('*'))
    return os_rule


def _pip_packages(os_rule):
    if isinstance(os_rule, dict) and 'pip' in os_rule:
        pip = os_rule['pip']
        return [p.lower() for p in (pip['packages'] if isinstance(pip, dict) else pip)]
    return []


def _dependency_keys():
    root = ET.parse(ROOT / 'package.xml').getroot()
    tags = ('depend', 'build_depend', 'exec_depend', 'test_depend', 'buildtool_depend',
            'build_export_depend')
    return sorted({element.text.strip() for tag in tags for element in root.findall(tag)})


def _requirement_names():
    names = []
    for line in (ROOT / 'requirements.txt').read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            names.append(re.split(r'[<>=!~ ;\[]', line, maxsplit=1)[0].lower())
    return names


@pytest.mark.parametrize('distro', sorted(DISTROS))
def test_every_key_resolves_on_the_distro(rosdep_rules, distro):
    released = _released_packages(distro)
    missing = []
    for key in _dependency_keys():
        if key in released:
            continue
        if key in rosdep_rules and _ubuntu_rule(rosdep_rules[key], DISTROS[distro]) is not None:
            continue
        missing.append(key)
    assert not missing, f'keys rosdep cannot resolve on {distro} ({DISTROS[distro]}): {missing}'


def test_every_runtime_requirement_has_its_key_or_is_documented_without(rosdep_rules):
    keys = set(_dependency_keys())
    by_pip = {}
    for key in keys:
        for package in _pip_packages(_ubuntu_rule(rosdep_rules.get(key, {}), 'noble')):
            by_pip[package.replace('_', '-')] = key
    comment = ''.join(node.text or '' for node in ET.parse(
        ROOT / 'package.xml', parser=ET.XMLParser(target=ET.TreeBuilder(
            insert_comments=True))).getroot().iter(ET.Comment))
    for name in _requirement_names():
        if name in NO_KEY:
            assert name in comment, f'package.xml does not say how {name} is installed'
        elif name in APT_KEYS:
            assert APT_KEYS[name] in keys, f'{name}: {APT_KEYS[name]} missing from package.xml'
        else:
            assert name.replace('_', '-') in by_pip, f'{name} has no key in package.xml'


@pytest.mark.parametrize('name', NO_KEY)
def test_packages_said_to_have_no_key_have_none(rosdep_rules, name):
    providing = [key for key, rule in rosdep_rules.items()
                 if isinstance(rule, dict)
                 and name in _pip_packages(_ubuntu_rule(rule, 'noble'))]
    assert not providing, f'{name} does have a rosdep key now: {providing}; declare it'
