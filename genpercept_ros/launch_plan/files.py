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
Files the launch files read or write: node parameter YAML and the rviz2 config.

No ``launch`` imports; used by :mod:`genpercept_ros.launch_plan.plan`.
"""

import copy
import os
import re
import tempfile

import yaml

# Topics of the shipped rviz config live under this namespace; they are moved to the launched
# namespace(s) when the config is written for rviz2.
RVIZ_TEMPLATE_NAMESPACE = '/camera'


class LaunchFileError(ValueError):
    """A parameter or rviz file cannot be used; the message names the file and the problem."""


def flatten_parameters(parameters, prefix=''):
    """Return nested parameter dicts as one dict with dotted names (``qos_overrides./x.y``)."""
    flat = {}
    for name, value in parameters.items():
        dotted = f'{prefix}.{name}' if prefix else str(name)
        if isinstance(value, dict):
            flat.update(flatten_parameters(value, dotted))
        else:
            flat[dotted] = value
    return flat


def _section_matches(key, node_name, namespace):
    """
    Tell whether a top-level YAML key applies to ``/<namespace>/<node_name>``.

    A bare node name applies in any namespace (the launch files move the node around); keys with
    a ``/`` or ``*`` follow rcl's rules: ``*`` matches within one name token, ``**`` matches any
    number of tokens.
    """
    key = str(key)
    if '/' not in key and '*' not in key:
        return key == node_name
    full_name = '/' + '/'.join(part for part in (namespace.strip('/'), node_name) if part)
    regex = ''
    for token in key.strip('/').split('/'):
        if token == '**':
            regex += '(/[^/]+)*'
        else:
            regex += '/' + re.escape(token).replace(r'\*', '[^/]*')
    return re.fullmatch(regex, full_name) is not None


def load_parameter_file(path, node_name, namespace=''):
    """
    Return the flat ``ros__parameters`` of every section of ``path`` that applies to the node.

    Sections are merged in file order. Nested groups come back with dotted names.

    :raises LaunchFileError: when the file is missing, is not YAML, or has no section for the
        node.
    """
    if not os.path.isfile(path):
        raise LaunchFileError(f'parameter file {path} does not exist.')
    with open(path, encoding='utf-8') as stream:
        try:
            content = yaml.safe_load(stream)
        except yaml.YAMLError as error:
            raise LaunchFileError(f'parameter file {path} is not valid YAML: {error}') from None
    if not isinstance(content, dict):
        raise LaunchFileError(f'parameter file {path} must map node names to sections.')
    parameters = {}
    matched = False
    for key, section in content.items():
        if not _section_matches(key, node_name, namespace):
            continue
        if not isinstance(section, dict) or not isinstance(section.get('ros__parameters'), dict):
            raise LaunchFileError(
                f'parameter file {path}: section {key!r} has no `ros__parameters` mapping.')
        matched = True
        parameters.update(flatten_parameters(section['ros__parameters']))
    if not matched:
        raise LaunchFileError(
            f'parameter file {path} has no section for node {node_name!r} (sections: '
            f'{", ".join(map(str, content))}); start it with `{node_name}:` and '
            '`ros__parameters:`.')
    return parameters


def _moved_topic(topic, namespace):
    """Move ``/camera/x`` to ``/<namespace>/x``; other topics stay."""
    prefix = RVIZ_TEMPLATE_NAMESPACE + '/'
    if not isinstance(topic, str) or not topic.startswith(prefix):
        return None
    namespace = namespace.strip('/')
    return '/' + '/'.join(part for part in (namespace, topic[len(prefix):]) if part)


def render_rviz_config(text, namespaces, fixed_frame):
    """
    Return the rviz2 config ``text`` set up for the given camera namespace(s) and fixed frame.

    Displays whose topic is under ``/camera/`` are moved to each namespace; with several
    namespaces they are repeated once per camera, their names suffixed with the camera.

    :raises LaunchFileError: when ``text`` is not an rviz2 config.
    """
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise LaunchFileError(f'rviz config is not valid YAML: {error}') from None
    manager = config.get('Visualization Manager') if isinstance(config, dict) else None
    if not isinstance(manager, dict) or not isinstance(manager.get('Displays'), list):
        raise LaunchFileError('rviz config has no `Visualization Manager: Displays:` list.')
    displays = []
    for display in manager['Displays']:
        topic = display.get('Topic', {}).get('Value') if isinstance(display, dict) else None
        if _moved_topic(topic, '') is None:
            displays.append(display)
            continue
        for namespace in namespaces:
            moved = copy.deepcopy(display)
            moved['Topic']['Value'] = _moved_topic(topic, namespace)
            if len(namespaces) > 1:
                moved['Name'] = f"{display.get('Name', 'Display')} ({namespace.strip('/')})"
            displays.append(moved)
    manager['Displays'] = displays
    manager.setdefault('Global Options', {})['Fixed Frame'] = fixed_frame
    return yaml.safe_dump(config, default_flow_style=False, sort_keys=False)


def write_rviz_config(template_path, namespaces, fixed_frame):
    """
    Write the rendered rviz2 config to a new temporary file and return its path.

    :raises LaunchFileError: when the template is missing or is not an rviz2 config.
    """
    if not os.path.isfile(template_path):
        raise LaunchFileError(f'rviz config {template_path} does not exist.')
    with open(template_path, encoding='utf-8') as stream:
        text = render_rviz_config(stream.read(), list(namespaces), fixed_frame)
    handle, path = tempfile.mkstemp(prefix='genpercept_', suffix='.rviz')
    with os.fdopen(handle, 'w', encoding='utf-8') as stream:
        stream.write(text)
    return path
