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

"""The shipped rviz2 config: displays, topics, QoS, and its rendering per namespace."""

import pathlib

from genpercept_ros.launch_plan.files import LaunchFileError
from genpercept_ros.launch_plan.files import render_rviz_config
from genpercept_ros.pipeline.parameters import PARAMETER_SPECS
import pytest
import yaml

RVIZ = pathlib.Path(__file__).resolve().parents[1] / 'rviz' / 'genpercept.rviz'


def displays(config):
    return config['Visualization Manager']['Displays']


def by_topic(config):
    return {display['Topic']['Value']: display for display in displays(config)
            if 'Topic' in display}


def subscription_matches(subscriber_reliability, publisher_reliability):
    """DDS request/offer rule: a Reliable reader needs a Reliable writer."""
    return subscriber_reliability == 'Best Effort' or publisher_reliability == 'reliable'


@pytest.fixture(scope='module')
def config():
    return yaml.safe_load(RVIZ.read_text())


def test_rviz_file_is_an_rviz2_config(config):
    assert {'Panels', 'Visualization Manager'} <= set(config)
    classes = [display['Class'] for display in displays(config)]
    assert all(name.startswith('rviz_default_plugins/') for name in classes)
    assert config['Visualization Manager']['Global Options']['Fixed Frame']


def test_point_cloud_display(config):
    cloud = by_topic(config)['/camera/points']
    assert cloud['Class'] == 'rviz_default_plugins/PointCloud2'
    assert cloud['Enabled'] is True
    assert cloud['Color Transformer'] == 'RGB8'
    assert cloud['Position Transformer'] == 'XYZ'
    assert cloud['Topic']['Reliability Policy'] == 'Reliable'
    assert cloud['Topic']['Durability Policy'] == 'Volatile'


def test_image_displays(config):
    topics = by_topic(config)
    for topic in ('/camera/depth/colored', '/camera/normals/colored'):
        assert topics[topic]['Class'] == 'rviz_default_plugins/Image'
        assert topics[topic]['Enabled'] is True


def test_every_display_matches_the_node_output_qos(config):
    publisher = PARAMETER_SPECS['output_reliability'].default
    for topic, display in by_topic(config).items():
        assert subscription_matches(display['Topic']['Reliability Policy'], publisher), topic


def test_render_moves_topics_and_sets_fixed_frame(config):
    rendered = yaml.safe_load(render_rviz_config(RVIZ.read_text(), ['robot/front'], 'odom'))
    assert rendered['Visualization Manager']['Global Options']['Fixed Frame'] == 'odom'
    assert set(by_topic(rendered)) == {
        '/robot/front/points', '/robot/front/depth/colored', '/robot/front/normals/colored'}
    # Everything else is kept as shipped.
    assert rendered['Panels'] == config['Panels']
    assert len(displays(rendered)) == len(displays(config))


def test_render_root_namespace():
    rendered = yaml.safe_load(render_rviz_config(RVIZ.read_text(), [''], 'camera_link'))
    assert '/points' in by_topic(rendered)


def test_render_repeats_camera_displays_per_namespace(config):
    rendered = yaml.safe_load(render_rviz_config(RVIZ.read_text(), ['front', 'left'], 'base'))
    topics = by_topic(rendered)
    for camera in ('front', 'left'):
        cloud = topics[f'/{camera}/points']
        assert cloud['Name'].endswith(f'({camera})')
        assert cloud['Topic']['Reliability Policy'] == 'Reliable'
    names = [display['Name'] for display in displays(rendered)]
    assert len(names) == len(set(names))
    assert len(displays(rendered)) == len(displays(config)) + len(by_topic(config))


@pytest.mark.parametrize('text', ['a: [', 'just text', 'Visualization Manager: {}'])
def test_render_rejects_non_rviz_text(text):
    with pytest.raises(LaunchFileError):
        render_rviz_config(text, ['camera'], 'camera_link')
