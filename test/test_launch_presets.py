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

"""The parameter presets next to config/genpercept.yaml only use real parameters, typed right."""

import pathlib

from genpercept_ros.launch_plan.arguments import PRESETS
from genpercept_ros.launch_plan.files import load_parameter_file
from genpercept_ros.pipeline.parameters import PARAMETER_SPECS
from genpercept_ros.pipeline.parameters import validate_parameters
import pytest

CONFIG = pathlib.Path(__file__).resolve().parents[1] / 'config'


def load(name):
    return load_parameter_file(str(CONFIG / f'{name}.yaml'), 'genpercept_node')


def same_type(value, default):
    if isinstance(default, list):
        return isinstance(value, list)
    return type(value) is type(default)


def test_every_preset_has_a_file():
    assert set(PRESETS) <= {path.stem for path in CONFIG.glob('*.yaml')}


@pytest.mark.parametrize('preset', PRESETS)
def test_preset_sets_known_parameters_with_their_types(preset):
    base = load('genpercept')
    values = load(preset)
    assert values, preset
    for name, value in values.items():
        assert name in base, f'{preset}.yaml sets {name}, which genpercept.yaml does not list'
        assert name in PARAMETER_SPECS, name
        assert same_type(value, PARAMETER_SPECS[name].default), (name, value)


@pytest.mark.parametrize('preset', PRESETS)
def test_preset_over_defaults_is_a_valid_configuration(preset):
    merged = dict(load('genpercept'))
    merged.update(load(preset))
    validate_parameters({name: value for name, value in merged.items()
                         if name in PARAMETER_SPECS})


def test_presets_differ_from_the_defaults():
    base = load('genpercept')
    for preset in PRESETS:
        assert any(base[name] != value for name, value in load(preset).items()), preset
