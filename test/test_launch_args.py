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

"""Launch arguments -> node parameters, remappings and helper processes (no launch needed)."""

import pathlib
import shutil

from genpercept_ros.launch_plan import plan as launch_args
from genpercept_ros.launch_plan.files import LaunchFileError
from genpercept_ros.launch_plan.plan import LaunchArgumentError
from genpercept_ros.launch_plan.plan import plan_multi_camera
from genpercept_ros.launch_plan.plan import plan_single_camera
from genpercept_ros.pipeline.parameters import PARAMETER_SPECS
from genpercept_ros.pipeline.parameters import validate_parameters
import numpy as np
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def share_dir(tmp_path):
    """Install-space-like share/genpercept_ros with the project's config and rviz files."""
    share = tmp_path / 'share'
    shutil.copytree(ROOT / 'config', share / 'config')
    shutil.copytree(ROOT / 'rviz', share / 'rviz')
    return str(share)


def write_params(path, parameters, key='genpercept_node'):
    path.write_text(yaml.safe_dump({key: {'ros__parameters': parameters}}))
    return str(path)


def only_node(plan):
    assert len(plan.nodes) == 1
    return plan.nodes[0]


# One representative launch string per parameter argument and the typed value the node must get.
PARAMETER_CASES = {
    'model_root': ('/data/genpercept', '/data/genpercept'),
    'depth_model': ('disparity-v2', 'disparity-v2'),
    'normal_model': ('normal-v1', 'normal-v1'),
    'device': ('cuda:1', 'cuda:1'),
    'dtype': ('bf16', 'bf16'),
    'acceleration': ('compile+cuda_graphs', 'compile+cuda_graphs'),
    'decoder': ('taesd', 'taesd'),
    'processing_resolution': ('512', 512),
    'output_resolution': ('processing', 'processing'),
    'image_transport': ('compressed', 'compressed'),
    # Deprecated launch name of image_transport (one release).
    'input_transport': ('compressed', 'compressed'),
    'frame_id': ('cam_optical', 'cam_optical'),
    'input_rectified': ('false', 'false'),
    'scale_mode': ('fixed', 'fixed'),
    'near_m': ('1', 1.0),
    'far_m': ('25.5', 25.5),
    'depth_scale': ('2', 2.0),
    'depth_shift': ('-0.25', -0.25),
    'reference_type': ('points', 'points'),
    'cloud_decimation': ('4', 4),
    'camera_height_m': ('0.35', 0.35),
    'ground_orientation': ('parameters', 'parameters'),
    'camera_pitch_deg': ('-12.5', -12.5),
    'camera_roll_deg': ('3', 3.0),
}


def test_every_parameter_argument_has_a_case_and_a_node_parameter():
    mapped = {argument.name: argument.parameter
              for argument in launch_args.SINGLE_CAMERA_ARGUMENTS if argument.parameter}
    assert set(mapped) == set(PARAMETER_CASES)
    for name, parameter in mapped.items():
        assert parameter in PARAMETER_SPECS, name


@pytest.mark.parametrize('name', sorted(PARAMETER_CASES))
def test_argument_sets_parameter_with_declared_type(name, share_dir):
    text, expected = PARAMETER_CASES[name]
    parameter = {argument.name: argument.parameter
                 for argument in launch_args.SINGLE_CAMERA_ARGUMENTS}[name]
    node = only_node(plan_single_camera({name: text}, share_dir))
    value = node.parameters[parameter]
    assert value == expected
    assert type(value) is type(PARAMETER_SPECS[parameter].default)


def test_deprecated_input_transport_argument_yields_to_image_transport(share_dir):
    """The old launch name still sets image_transport; given both, the new name wins."""
    node = only_node(plan_single_camera({'input_transport': 'compressed'}, share_dir))
    assert node.parameters['image_transport'] == 'compressed'
    assert 'input_transport' not in node.parameters
    node = only_node(plan_single_camera({'input_transport': 'compressed',
                                         'image_transport': 'raw'}, share_dir))
    assert node.parameters['image_transport'] == 'raw'


def test_device_argument_offers_only_what_the_node_accepts(share_dir):
    """No 'mps' (the node refuses it): the description and the launch check agree."""
    device = {argument.name: argument
              for argument in launch_args.SINGLE_CAMERA_ARGUMENTS}['device']
    assert 'mps' not in device.description
    with pytest.raises(LaunchArgumentError, match="`device` must be 'auto', 'cpu', 'cuda'"):
        plan_single_camera({'device': 'mps'}, share_dir)
    with pytest.raises(ValueError, match='device'):
        validate_parameters({'device': 'mps'})


def test_unset_arguments_keep_params_file_values(share_dir, tmp_path):
    params = write_params(tmp_path / 'p.yaml', {
        'processing_resolution': 320, 'near_m': 0.25, 'far_m': 4.0, 'dtype': 'fp16',
        'qos_overrides': {'/camera/points': {'publisher': {'depth': 3}}}})
    node = only_node(plan_single_camera({'params_file': params}, share_dir))
    assert node.parameters['processing_resolution'] == 320
    assert node.parameters['near_m'] == 0.25
    assert node.parameters['dtype'] == 'fp16'
    # Nested groups reach the node with ROS's dotted names.
    assert node.parameters['qos_overrides./camera/points.publisher.depth'] == 3


def test_params_file_then_preset_then_launch_arguments(share_dir, tmp_path):
    params = write_params(tmp_path / 'p.yaml', {'near_m': 0.25, 'far_m': 4.0,
                                                'processing_resolution': 320})
    merged = only_node(plan_single_camera(
        {'params_file': params, 'preset': 'indoor', 'far_m': '6'}, share_dir)).parameters
    indoor = yaml.safe_load((ROOT / 'config' / 'indoor.yaml').read_text())
    assert merged['near_m'] == indoor['genpercept_node']['ros__parameters']['near_m']
    assert merged['far_m'] == 6.0
    assert merged['processing_resolution'] == 320


def test_integer_yaml_values_become_floats_for_float_parameters(share_dir, tmp_path):
    params = write_params(tmp_path / 'p.yaml', {'near_m': 1, 'far_m': 8})
    merged = only_node(plan_single_camera({'params_file': params}, share_dir)).parameters
    assert type(merged['near_m']) is float and merged['far_m'] == 8.0


def test_paths_expand_the_home_folder(share_dir, monkeypatch):
    monkeypatch.setenv('HOME', '/home/robot')
    node = only_node(plan_single_camera({'model_root': '~/genpercept_models'}, share_dir))
    assert node.parameters['model_root'] == '/home/robot/genpercept_models'


def test_none_disables_a_task(share_dir):
    node = only_node(plan_single_camera({'normal_model': 'none'}, share_dir))
    assert node.parameters['normal_model'] == ''


@pytest.mark.parametrize('text, expected', [
    ('true', True), ('True', True), ('1', True), ('yes', True),
    ('false', False), ('FALSE', False), ('0', False), ('no', False)])
def test_bool_arguments(text, expected, share_dir):
    plan = plan_single_camera({'use_sim_time': text, 'lifecycle': text}, share_dir)
    node = only_node(plan)
    assert node.parameters['use_sim_time'] is expected
    assert node.lifecycle is expected


@pytest.mark.parametrize('values, message', [
    ({'processing_resolution': 'high'}, 'processing_resolution` must be an integer'),
    ({'processing_resolution': '-1'}, 'processing_resolution` must be >= 0'),
    ({'near_m': 'close'}, 'near_m` must be a number'),
    ({'far_m': 'inf'}, 'far_m` must be finite'),
    ({'near_m': '5', 'far_m': '2'}, '`near_m` (5.0) must be smaller than `far_m` (2.0)'),
    ({'use_sim_time': 'maybe'}, 'use_sim_time` must be true or false'),
    ({'depth_model': 'depth-v3'}, "depth_model` must be one of '', 'depth-v2'"),
    ({'depth_model': 'none', 'normal_model': 'none'}, 'both empty'),
    ({'device': 'gpu'}, "`device` must be 'auto'"),
    ({'log_level': 'verbose'}, 'log_level` must be one of'),
    ({'namespace': '2cam'}, "'2cam' is not a valid ROS name"),
    ({'image_topic': 'bad topic'}, "'bad topic' is not a valid ROS name"),
    ({'image_topic': '/cam/image_raw/compressed'}, 'set image_transport:=compressed'),
    ({'preset': 'foggy'}, 'preset` must be one of'),
])
def test_invalid_values_are_rejected_with_the_reason(values, message, share_dir):
    with pytest.raises(LaunchArgumentError) as error:
        plan_single_camera(values, share_dir)
    assert message in str(error.value)


def test_missing_and_foreign_params_files_are_named(share_dir, tmp_path):
    with pytest.raises(LaunchFileError, match='does not exist'):
        plan_single_camera({'params_file': str(tmp_path / 'missing.yaml')}, share_dir)
    other = write_params(tmp_path / 'other.yaml', {'near_m': 1.0}, key='depth_node')
    with pytest.raises(LaunchFileError, match="no section for node 'genpercept_node'"):
        plan_single_camera({'params_file': other}, share_dir)


@pytest.mark.parametrize('key, applies', [
    ('genpercept_node', True), ('/**', True), ('/**/genpercept_node', True),
    ('/robot/camera/genpercept_node', True), ('/robot/*/genpercept_node', True),
    ('/other/genpercept_node', False), ('/genpercept_node', False)])
def test_params_file_sections_follow_ros_name_rules(key, applies, share_dir, tmp_path):
    params = tmp_path / 'p.yaml'
    params.write_text(yaml.safe_dump({
        'genpercept_node' if key != 'genpercept_node' else '/**': {
            'ros__parameters': {'processing_resolution': 111}},
        key: {'ros__parameters': {'processing_resolution': 222}}}, sort_keys=False))
    node = only_node(plan_single_camera(
        {'params_file': str(params), 'namespace': 'robot/camera'}, share_dir))
    assert node.namespace == 'robot/camera'
    assert node.parameters['processing_resolution'] == (222 if applies else 111)


def test_default_topics_need_no_remapping(share_dir):
    node = only_node(plan_single_camera({}, share_dir))
    assert node.namespace == 'camera'
    assert node.remappings == ()


def test_realsense_topics(share_dir):
    node = only_node(plan_single_camera(
        {'image_topic': '/camera/camera/color/image_raw'}, share_dir))
    assert dict(node.remappings) == {
        'image': '/camera/camera/color/image_raw',
        'image/compressed': '/camera/camera/color/image_raw/compressed',
        'camera_info': '/camera/camera/color/camera_info',
    }


def test_usb_cam_topics_in_the_root_namespace(share_dir):
    node = only_node(plan_single_camera(
        {'image_topic': '/image_raw', 'namespace': ''}, share_dir))
    assert node.namespace == ''
    assert dict(node.remappings)['camera_info'] == '/camera_info'


def test_explicit_camera_info_and_reference_topics(share_dir):
    node = only_node(plan_single_camera({
        'image_topic': 'color/image_raw', 'camera_info_topic': '/calib/info',
        'reference_topic': '/lidar/points', 'reference_type': 'points',
        'scale_mode': 'reference'}, share_dir))
    rules = dict(node.remappings)
    assert rules['image'] == 'color/image_raw'
    assert rules['camera_info'] == '/calib/info'
    assert rules['reference/points'] == '/lidar/points'
    assert node.parameters['reference_type'] == 'points'


def test_realsense_aligned_depth_reference(share_dir):
    node = only_node(plan_single_camera({
        'scale_mode': 'reference',
        'reference_topic': '/camera/camera/aligned_depth_to_color/image_raw'}, share_dir))
    rules = dict(node.remappings)
    assert rules['reference/depth'] == '/camera/camera/aligned_depth_to_color/image_raw'
    assert rules['reference/camera_info'] == '/camera/camera/aligned_depth_to_color/camera_info'


def test_node_arguments_lifecycle_and_log_level(share_dir):
    plain = only_node(plan_single_camera({'log_level': 'debug'}, share_dir))
    assert plain.arguments == () and not plain.lifecycle
    assert plain.ros_arguments == ('--log-level', 'debug')
    managed = only_node(plan_single_camera({'lifecycle': 'true', 'autostart': 'false'},
                                           share_dir))
    assert managed.arguments == ('--lifecycle',)
    assert managed.lifecycle and not managed.autostart
    assert only_node(plan_single_camera({'lifecycle': 'true'}, share_dir)).autostart


def test_node_kwargs_leave_out_empty_arrays(share_dir):
    node = only_node(plan_single_camera({}, share_dir))
    kwargs = node.node_kwargs()
    assert kwargs['package'] == 'genpercept_ros'
    assert kwargs['executable'] == 'genpercept_node'
    assert kwargs['name'] == 'genpercept_node'
    assert all(value != [] for value in kwargs['parameters'][0].values())


def rotation_from_rpy(roll, pitch, yaw):
    """Fixed-axis roll/pitch/yaw rotation, as tf2's setRPY: Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr, cp, sp, cy, sy = (np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch),
                              np.cos(yaw), np.sin(yaw))
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_optical_tf_follows_rep_103(share_dir):
    plan = plan_single_camera({'publish_optical_tf': 'true', 'base_frame': 'cam_link',
                               'optical_frame': 'cam_optical'}, share_dir)
    assert only_node(plan).parameters['frame_id'] == 'cam_optical'
    (tf,) = [helper for helper in plan.helpers if helper.package == 'tf2_ros']
    args = dict(zip(tf.arguments[::2], tf.arguments[1::2]))
    assert args['--frame-id'] == 'cam_link' and args['--child-frame-id'] == 'cam_optical'
    assert all(float(args[axis]) == 0.0 for axis in ('--x', '--y', '--z'))
    rotation = rotation_from_rpy(float(args['--roll']), float(args['--pitch']),
                                 float(args['--yaw']))
    # REP 103: optical z (forward) = body x, optical x (right) = body -y, optical y (down) = -z.
    np.testing.assert_allclose(rotation @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(rotation @ [1, 0, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(rotation @ [0, 1, 0], [0, 0, -1], atol=1e-12)


def test_explicit_frame_id_is_the_optical_tf_child(share_dir):
    plan = plan_single_camera({'publish_optical_tf': 'true', 'frame_id': 'x_optical'},
                              share_dir)
    assert plan.helpers[0].arguments[-1] == 'x_optical'


def test_rviz_helper_gets_namespaced_config(share_dir):
    plan = plan_single_camera({'rviz': 'true', 'namespace': 'robot/cam', 'fixed_frame': 'odom',
                               'use_sim_time': 'true'}, share_dir)
    (rviz,) = plan.helpers
    assert (rviz.package, rviz.executable) == ('rviz2', 'rviz2')
    assert rviz.parameters == {'use_sim_time': True}
    assert rviz.arguments[0] == '-d'
    config = yaml.safe_load(pathlib.Path(rviz.arguments[1]).read_text())
    manager = config['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == 'odom'
    topics = {display['Topic']['Value'] for display in manager['Displays'] if 'Topic' in display}
    assert topics == {'/robot/cam/points', '/robot/cam/depth/colored',
                      '/robot/cam/normals/colored'}


def test_no_helpers_by_default(share_dir):
    assert plan_single_camera({}, share_dir).helpers == ()


def test_multi_camera_one_node_per_namespace(share_dir):
    plan = plan_multi_camera({'cameras': 'front, left,rear',
                              'image_topic': '/{camera}/color/image_raw'}, share_dir)
    assert [node.namespace for node in plan.nodes] == ['front', 'left', 'rear']
    for node in plan.nodes:
        rules = dict(node.remappings)
        assert rules['image'] == f'/{node.namespace}/color/image_raw'
        assert rules['camera_info'] == f'/{node.namespace}/color/camera_info'
        assert 'cameras' not in node.node_kwargs()['parameters'][0]


def test_multi_camera_single_process_node(share_dir):
    plan = plan_multi_camera({'cameras': 'front,left', 'single_process': 'true',
                              'batch_window_ms': '25', 'image_topic': 'color/image_raw'},
                             share_dir)
    node = only_node(plan)
    assert node.namespace == ''
    assert node.parameters['cameras'] == ['front', 'left']
    assert node.parameters['batch_window_ms'] == 25.0
    # Relative topics mean "inside each camera's namespace", wherever the node lives.
    assert dict(node.remappings) == {
        'front/image': 'front/color/image_raw',
        'front/image/compressed': 'front/color/image_raw/compressed',
        'front/camera_info': 'front/color/camera_info',
        'left/image': 'left/color/image_raw',
        'left/image/compressed': 'left/color/image_raw/compressed',
        'left/camera_info': 'left/color/camera_info',
    }


def test_multi_camera_default_topics_need_no_remapping(share_dir):
    for single_process in ('true', 'false'):
        plan = plan_multi_camera({'single_process': single_process}, share_dir)
        assert all(node.remappings == () for node in plan.nodes)


def test_multi_camera_optical_frames_and_rviz(share_dir):
    plan = plan_multi_camera({'cameras': 'front,left', 'publish_optical_tf': 'true',
                              'rviz': 'true'}, share_dir)
    assert [node.parameters['frame_id'] for node in plan.nodes] == [
        'front_optical_frame', 'left_optical_frame']
    tfs = [helper for helper in plan.helpers if helper.package == 'tf2_ros']
    assert [tf.arguments[-3::2] for tf in tfs] == [
        ('front_link', 'front_optical_frame'), ('left_link', 'left_optical_frame')]
    assert len({tf.name for tf in tfs}) == 2
    (rviz,) = [helper for helper in plan.helpers if helper.package == 'rviz2']
    config = yaml.safe_load(pathlib.Path(rviz.arguments[1]).read_text())
    clouds = [display['Topic']['Value'] for display in config['Visualization Manager']['Displays']
              if display['Class'] == 'rviz_default_plugins/PointCloud2']
    assert clouds == ['/front/points', '/left/points']


@pytest.mark.parametrize('values, message', [
    ({'cameras': 'front,front'}, 'lists a camera twice'),
    ({'cameras': ' , '}, 'lists no camera'),
    ({'cameras': 'front,9'}, "'9' is not a valid namespace"),
    ({'image_topic': '/{camera}/bad name'}, 'is not a valid ROS name'),
    ({'single_process': 'true', 'publish_optical_tf': 'true'}, 'single_process:=false'),
])
def test_multi_camera_invalid_values(values, message, share_dir):
    with pytest.raises(LaunchArgumentError) as error:
        plan_multi_camera(values, share_dir)
    assert message in str(error.value)


def test_every_argument_is_described():
    for table in (launch_args.SINGLE_CAMERA_ARGUMENTS, launch_args.MULTI_CAMERA_ARGUMENTS):
        names = [argument.name for argument in table]
        assert len(names) == len(set(names))
        for argument in table:
            assert argument.description.strip().endswith(('.', ')')), argument.name
            assert not argument.choices or argument.default in argument.choices, argument.name


def test_arguments_required_by_the_issue_exist():
    required = {'namespace', 'image_topic', 'camera_info_topic', 'image_transport', 'depth_model',
                'normal_model', 'model_root', 'processing_resolution', 'output_resolution',
                'device', 'dtype', 'scale_mode', 'near_m', 'far_m', 'depth_scale', 'depth_shift',
                'reference_topic', 'params_file', 'rviz', 'rviz_config', 'fixed_frame',
                'use_sim_time', 'log_level', 'lifecycle', 'publish_optical_tf'}
    single = {argument.name for argument in launch_args.SINGLE_CAMERA_ARGUMENTS}
    multi = {argument.name for argument in launch_args.MULTI_CAMERA_ARGUMENTS}
    assert required <= single
    assert (required - {'namespace'}) | {'cameras', 'single_process'} <= multi
