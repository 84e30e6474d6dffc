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

"""The launch files import, declare every argument with its description, and build actions."""

import importlib.util
import pathlib
import shutil

from genpercept_ros.launch_plan import plan as launch_args
import pytest

launch = pytest.importorskip('launch', reason='ROS 2 `launch` is not installed')
launch_ros_actions = pytest.importorskip('launch_ros.actions',
                                         reason='ROS 2 `launch_ros` is not installed')
EmitEvent = launch.actions.EmitEvent
RegisterEventHandler = launch.actions.RegisterEventHandler
LifecycleNode = launch_ros_actions.LifecycleNode
Node = launch_ros_actions.Node

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAUNCH_FILES = {
    'genpercept.launch.py': launch_args.SINGLE_CAMERA_ARGUMENTS,
    'genpercept_multi_camera.launch.py': launch_args.MULTI_CAMERA_ARGUMENTS,
}


def load_launch_file(name):
    spec = importlib.util.spec_from_file_location(name.replace('.', '_'), ROOT / 'launch' / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def share_dir(tmp_path):
    share = tmp_path / 'share'
    shutil.copytree(ROOT / 'config', share / 'config')
    shutil.copytree(ROOT / 'rviz', share / 'rviz')
    return str(share)


@pytest.mark.parametrize('name', sorted(LAUNCH_FILES))
def test_launch_file_declares_every_argument(name):
    description = load_launch_file(name).generate_launch_description()
    declared = description.get_launch_arguments()
    table = LAUNCH_FILES[name]
    assert [argument.name for argument in declared] == [argument.name for argument in table]
    context = launch.LaunchContext()
    for argument, expected in zip(declared, table):
        assert argument.description.startswith(expected.description)
        default = launch.utilities.perform_substitutions(context, argument.default_value)
        assert default == expected.default
        assert list(argument.choices or []) == list(expected.choices)


def setup_actions(name, share_dir, monkeypatch, **values):
    from genpercept_ros.launch_plan import actions as launch_actions
    monkeypatch.setattr(launch_actions, 'get_package_share_directory',
                        lambda package: share_dir)
    description = load_launch_file(name).generate_launch_description()
    context = launch.LaunchContext()
    context.launch_configurations.update(values)
    launch_setup = description.entities[-1]
    assert isinstance(launch_setup, launch.actions.OpaqueFunction)
    return launch_setup.execute(context)


def test_single_camera_actions(share_dir, monkeypatch):
    actions = setup_actions('genpercept.launch.py', share_dir, monkeypatch,
                            publish_optical_tf='true')
    assert [type(action) for action in actions] == [Node, Node]
    assert [(action.node_package, action.node_executable) for action in actions] == [
        ('genpercept_ros', 'genpercept_node'), ('tf2_ros', 'static_transform_publisher')]


def test_lifecycle_autostart_actions(share_dir, monkeypatch):
    actions = setup_actions('genpercept.launch.py', share_dir, monkeypatch, lifecycle='true')
    assert [type(action) for action in actions] == [LifecycleNode, RegisterEventHandler,
                                                    EmitEvent]
    manual = setup_actions('genpercept.launch.py', share_dir, monkeypatch, lifecycle='true',
                           autostart='false')
    assert [type(action) for action in manual] == [LifecycleNode]


def test_multi_camera_actions(share_dir, monkeypatch):
    name = 'genpercept_multi_camera.launch.py'
    per_camera = setup_actions(name, share_dir, monkeypatch, cameras='a,b,c')
    assert [type(action) for action in per_camera] == [Node, Node, Node]
    batched = setup_actions(name, share_dir, monkeypatch, cameras='a,b,c',
                            single_process='true')
    assert [type(action) for action in batched] == [Node]


def test_invalid_argument_stops_the_launch(share_dir, monkeypatch):
    with pytest.raises(launch_args.LaunchArgumentError, match='processing_resolution'):
        setup_actions('genpercept.launch.py', share_dir, monkeypatch,
                      processing_resolution='big')
