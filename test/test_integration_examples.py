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

"""The Nav2 costmap example and the README's robot commands name real topics and arguments."""

from pathlib import Path
import re
import shlex
import shutil

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NAV2 = ROOT / 'config' / 'nav2_costmap.yaml'
README = ROOT / 'README.md'
# Observation-source parameters of Nav2's obstacle and voxel layers (nav2_costmap_2d
# ObstacleLayer::onInitialize); a misspelt key would silently keep its default there.
SOURCE_KEYS = {'topic', 'sensor_frame', 'observation_persistence', 'expected_update_rate',
               'data_type', 'min_obstacle_height', 'max_obstacle_height', 'inf_is_valid',
               'marking', 'clearing', 'obstacle_max_range', 'obstacle_min_range',
               'raytrace_max_range', 'raytrace_min_range'}
LAYER_PLUGINS = ('nav2_costmap_2d::VoxelLayer', 'nav2_costmap_2d::ObstacleLayer')


def _robot_section():
    text = README.read_text()
    start = text.index('#### A robot with only a camera: Nav2 and rtabmap')
    return text[start:text.index('\n#### ', start + 1)]


def _commands(section):
    """Return each fenced bash block of ``section`` as a list of shell words."""
    blocks = re.findall(r'```bash\n(.*?)```', section, flags=re.S)
    return [shlex.split(block.replace('\\\n', ' ')) for block in blocks]


def _launch_arguments(words):
    return dict(word.split(':=', 1) for word in words if ':=' in word)


def _genpercept_command():
    [command] = [words for words in _commands(_robot_section())
                 if words[:3] == ['ros2', 'launch', 'genpercept_ros']]
    return _launch_arguments(command)


def _observation_sources():
    document = yaml.safe_load(NAV2.read_text())
    params = document['local_costmap']['local_costmap']['ros__parameters']
    layers = {name: params[name] for name in params['plugins']}
    [(layer_name, layer)] = [(name, layer) for name, layer in layers.items()
                             if layer['plugin'] in LAYER_PLUGINS]
    names = layer['observation_sources'].split()
    return layer, {name: layer[name] for name in names}


def _preset_max_range(preset):
    document = yaml.safe_load((ROOT / 'config' / f'{preset}.yaml').read_text())
    return document['genpercept_node']['ros__parameters']['max_range_m']


def test_nav2_marks_only_from_the_obstacle_cloud_and_clears_with_the_full_cloud():
    layer, sources = _observation_sources()
    arguments = _genpercept_command()
    namespace = arguments['namespace']
    marking = [source for source in sources.values() if source['marking']]
    clearing = [source for source in sources.values() if source['clearing']]
    assert [source['topic'] for source in marking] == [f'/{namespace}/points_obstacles']
    assert [source['topic'] for source in clearing] == [f'/{namespace}/points']
    for source in sources.values():
        assert set(source) <= SOURCE_KEYS, set(source) - SOURCE_KEYS
        assert source['data_type'] == 'PointCloud2'
        assert source['inf_is_valid'] is False  # the node marks invalid points with NaN
    # The floor is not an obstacle: the marking source never sees it, and nothing at floor
    # height is marked by the layer either.
    assert marking[0]['min_obstacle_height'] > 0.0
    assert layer['min_obstacle_height'] > 0.0


def test_nav2_ranges_match_the_preset_max_range():
    _, sources = _observation_sources()
    max_range = _preset_max_range(_genpercept_command()['preset'])
    assert max_range > 0
    for source in sources.values():
        if source['marking']:
            assert source['obstacle_max_range'] == pytest.approx(max_range)
        if source['clearing']:
            assert source['raytrace_max_range'] == pytest.approx(max_range)


def test_readme_genpercept_command_uses_real_launch_arguments_and_ground_mode():
    from genpercept_ros.launch_plan.arguments import SINGLE_CAMERA_ARGUMENTS
    arguments = _genpercept_command()
    known = {argument.name: argument for argument in SINGLE_CAMERA_ARGUMENTS}
    assert set(arguments) <= set(known), set(arguments) - set(known)
    assert arguments['scale_mode'] == 'ground'
    assert float(arguments['camera_height_m']) > 0
    assert known['camera_height_m'].parameter == 'camera_height_m'


def test_readme_genpercept_command_plans_a_valid_ground_node(tmp_path):
    """The command passes the launch validation and gives the node a ground configuration."""
    from genpercept_ros.launch_plan.plan import plan_single_camera
    from genpercept_ros.pipeline import PARAMETER_SPECS
    from genpercept_ros.pipeline import PipelineSettings
    share = tmp_path / 'share'
    shutil.copytree(ROOT / 'config', share / 'config')
    shutil.copytree(ROOT / 'rviz', share / 'rviz')
    plan = plan_single_camera(_genpercept_command(), str(share))
    [node] = plan.nodes
    settings = PipelineSettings.from_parameters(
        {name: value for name, value in node.parameters.items() if name in PARAMETER_SPECS})
    assert settings.scale_mode == 'ground' and settings.camera_height_m > 0
    assert settings.max_range_m == _preset_max_range('indoor')


def test_readme_rtabmap_example_reads_the_node_outputs():
    [rtabmap] = [words for words in _commands(_robot_section())
                 if words[:3] == ['ros2', 'launch', 'rtabmap_launch']]
    arguments = _launch_arguments(rtabmap)
    genpercept = _genpercept_command()
    namespace = genpercept['namespace']
    assert arguments['rgb_topic'] == genpercept['image_topic']
    assert arguments['depth_topic'] == f'/{namespace}/depth/image'
    assert arguments['camera_info_topic'] == f'/{namespace}/depth/camera_info'
    # Outputs keep the input header, so depth and image stamps are equal: exact sync.
    assert arguments['approx_sync'] == 'false'
