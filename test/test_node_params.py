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

"""The parameter table, its ROS descriptors and config/genpercept.yaml agree."""

from pathlib import Path

from genpercept_ros.node.parameters import parameter_descriptor
from genpercept_ros.pipeline.parameters import DEFAULTS
from genpercept_ros.pipeline.parameters import PARAMETER_SPECS
from genpercept_ros.pipeline.parameters import validate_parameters
import pytest
from rcl_interfaces.msg import ParameterType
import yaml

CONFIG = Path(__file__).resolve().parents[1] / 'config' / 'genpercept.yaml'

# The names the node promises (README, launch files, issue texts); a rename must be deliberate.
PROMISED = {
    'model_root', 'depth_model', 'normal_model', 'device', 'dtype', 'acceleration', 'decoder',
    'processing_resolution',
    'output_resolution', 'image_transport', 'frame_id', 'scale_mode', 'near_m', 'far_m',
    'depth_scale', 'depth_shift', 'cloud_decimation', 'cloud_color', 'cloud_normals',
    'allow_pickle', 'min_range_m', 'max_range_m', 'flying_pixel_threshold',
    'far_saturation_nan', 'voxel_size', 'reference_type', 'reference_time_tolerance_s',
    'fit_min_points', 'fit_min_inlier_ratio', 'scale_smoothing', 'hold_last_fit_s',
    'depth_normals_check', 'cameras', 'batch_window_ms', 'input_reliability', 'input_qos_depth',
    'max_input_pixels', 'input_rectified',
    'output_reliability', 'output_qos_depth', 'diagnostics_period_s',
    'camera_height_m', 'base_frame', 'camera_pitch_deg', 'camera_roll_deg',
    'ground_normal_tolerance_deg', 'min_confidence', 'ground_orientation',
}


def test_every_promised_parameter_exists():
    """The node declares exactly the documented parameter names."""
    assert set(PARAMETER_SPECS) == PROMISED


def test_config_file_lists_every_parameter_with_its_default():
    """config/genpercept.yaml documents each parameter with the node's default."""
    document = yaml.safe_load(CONFIG.read_text())
    values = document['genpercept_node']['ros__parameters']
    assert values == DEFAULTS
    text = CONFIG.read_text()
    for name in DEFAULTS:
        line = text.index(f'    {name}:')
        assert text[:line].rstrip().splitlines()[-1].strip().startswith('#'), \
            f'{name} has no comment above it'


def test_descriptors_carry_types_ranges_and_read_only():
    """ROS descriptors: the right type, numeric ranges, read-only model/QoS settings."""
    descriptor = parameter_descriptor(PARAMETER_SPECS['processing_resolution'])
    assert descriptor.type == ParameterType.PARAMETER_INTEGER
    assert (descriptor.integer_range[0].from_value, descriptor.integer_range[0].to_value) == \
        (0, 4096)
    descriptor = parameter_descriptor(PARAMETER_SPECS['near_m'])
    assert descriptor.type == ParameterType.PARAMETER_DOUBLE
    assert descriptor.floating_point_range[0].from_value == 0.0
    for name in ('model_root', 'depth_model', 'device', 'dtype', 'image_transport', 'cameras',
                 'input_reliability', 'output_qos_depth'):
        assert parameter_descriptor(PARAMETER_SPECS[name]).read_only, name
    for name in ('scale_mode', 'near_m', 'processing_resolution', 'cloud_decimation'):
        assert not parameter_descriptor(PARAMETER_SPECS[name]).read_only, name
    assert "'reference'" in parameter_descriptor(PARAMETER_SPECS['scale_mode']) \
        .additional_constraints
    for spec in PARAMETER_SPECS.values():
        assert parameter_descriptor(spec).description


@pytest.mark.parametrize('values, fragment', [
    ({'device': 'gpu'}, 'device'),
    ({'dtype': 'int8'}, 'dtype'),
    ({'depth_model': 'depth-v3'}, 'depth_model'),
    ({'depth_model': '', 'normal_model': ''}, 'nothing to run'),
    ({'min_range_m': 5.0, 'max_range_m': 2.0}, 'min_range_m'),
    ({'cameras': ['front', 'front']}, 'twice'),
    ({'cameras': ['/abs']}, 'cameras'),
    ({'fit_min_inlier_ratio': 1.5}, 'fit_min_inlier_ratio'),
    ({'near_m': 0.0}, 'near_m'),
    ({'cloud_color': 1}, 'cloud_color'),
    ({'processing_resolution': 64.5}, 'processing_resolution'),
    ({'input_rectified': 'yes'}, 'input_rectified'),
    ({'input_rectified': 1}, 'input_rectified'),
])
def test_invalid_values_are_named(values, fragment):
    """Each invalid value is rejected with a message naming the problem."""
    with pytest.raises(ValueError, match=fragment):
        validate_parameters(values)


def test_deprecated_names_map_to_their_replacements_with_a_warning():
    """input_transport/input_depth/output_depth still work for one release, named as old."""
    from genpercept_ros.pipeline.parameters import rename_deprecated
    values, warnings = rename_deprecated({'input_transport': 'compressed', 'input_depth': 3,
                                          'output_depth': 2, 'far_m': 8.0})
    assert values == {'image_transport': 'compressed', 'input_qos_depth': 3,
                      'output_qos_depth': 2, 'far_m': 8.0}
    assert len(warnings) == 3 and all('deprecated' in text for text in warnings)
    assert validate_parameters(values)['input_qos_depth'] == 3
    # Both names given: the new one wins and the warning says the old one is ignored.
    values, warnings = rename_deprecated({'input_transport': 'compressed',
                                          'image_transport': 'raw'})
    assert values == {'image_transport': 'raw'}
    assert 'ignored' in warnings[0]


@pytest.mark.parametrize('typed, closest', [
    ('far', 'far_m'), ('nearm', 'near_m'), ('processing_res', 'processing_resolution'),
    ('input_transport', 'image_transport'), ('output_depth', 'output_qos_depth'),
])
def test_unknown_names_are_named_with_the_closest_known_one(typed, closest):
    """Typos point to the parameter meant; old names to their replacement."""
    from genpercept_ros.pipeline.parameters import closest_parameter
    assert closest_parameter(typed) == closest
    with pytest.raises(ValueError, match=f'closest known parameter: `{closest}`'):
        validate_parameters({typed: 1})


def test_help_text_lists_every_parameter_with_type_default_and_limits():
    """The --help summary comes from the table: type, default, limits, startup-only flag."""
    from genpercept_ros.pipeline.parameters import describe_parameters
    text = describe_parameters()
    assert '  far_m (float, default 10.0; > 0, <= 10000.0)' in text
    assert "  image_transport (str, default 'raw'; one of 'raw', 'compressed', startup only)" \
        in text
    assert '  processing_resolution (int, default 768; >= 0, <= 4096)' in text
    for name in PARAMETER_SPECS:
        assert f'\n  {name} (' in '\n' + text, name


@pytest.mark.parametrize('device, accepted', [
    ('auto', True), ('cpu', True), ('cuda', True), ('cuda:1', True), ('mps', False),
    ('cuda:', False), ('gpu', False),
])
def test_device_values_follow_one_rule(device, accepted):
    """The node, the launch check and --help share the rule: auto, cpu, cuda, cuda:N."""
    spec = PARAMETER_SPECS['device']
    if accepted:
        assert spec.check(device) == device
    else:
        with pytest.raises(ValueError, match="'auto', 'cpu', 'cuda' or 'cuda:N'"):
            spec.check(device)


@pytest.mark.parametrize('value, expected', [
    ('auto', 'auto'), ('true', 'true'), ('false', 'false'), (True, 'true'), (False, 'false')])
def test_input_rectified_takes_the_words_and_the_booleans(value, expected):
    """`-p input_rectified:=true` and YAML `true` arrive as booleans: same as the words."""
    assert validate_parameters({'input_rectified': value})['input_rectified'] == expected
    descriptor = parameter_descriptor(PARAMETER_SPECS['input_rectified'])
    assert descriptor.dynamic_typing and "'auto'" in descriptor.additional_constraints
