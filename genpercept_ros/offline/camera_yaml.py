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
Read and write the standard camera_info YAML of ``camera_calibration``.

The format is the one ``camera_calibration_parsers`` writes (``image_width``, ``image_height``,
``camera_name``, ``camera_matrix``, ``distortion_model``, ``distortion_coefficients``,
``rectification_matrix``, ``projection_matrix``; each matrix as ``rows``, ``cols``, ``data``).
"""

from dataclasses import dataclass
from pathlib import Path

from sensor_msgs.msg import CameraInfo
import yaml


class CameraYamlError(ValueError):
    """A camera_info YAML file that cannot be used, with the reason."""


@dataclass(frozen=True)
class CameraCalibration:
    """A parsed calibration file: the camera's name and its CameraInfo message."""

    camera_name: str
    camera_info: CameraInfo


def _matrix(doc, key, rows, cols, source, required):
    entry = doc.get(key)
    if entry is None:
        if required:
            raise CameraYamlError(f'{source}: missing required key {key!r}')
        return None
    if not isinstance(entry, dict) or 'data' not in entry:
        raise CameraYamlError(f'{source}: {key!r} must be a mapping with rows, cols and data')
    data = entry['data']
    if not isinstance(data, (list, tuple)):
        raise CameraYamlError(f'{source}: {key}.data must be a list of numbers')
    try:
        values = [float(v) for v in data]
    except (TypeError, ValueError):
        raise CameraYamlError(f'{source}: {key}.data holds a value that is not a number') from None
    declared_rows = entry.get('rows', rows)
    declared_cols = entry.get('cols', cols)
    if rows is not None and (declared_rows, declared_cols) != (rows, cols):
        raise CameraYamlError(
            f'{source}: {key} must be {rows}x{cols}, the file says '
            f'{declared_rows}x{declared_cols}')
    if declared_rows * declared_cols != len(values):
        raise CameraYamlError(
            f'{source}: {key} declares {declared_rows}x{declared_cols} but holds '
            f'{len(values)} values')
    return values


def _positive_int(doc, key, source):
    value = doc.get(key)
    if value is None:
        raise CameraYamlError(f'{source}: missing required key {key!r}')
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CameraYamlError(f'{source}: {key} must be a positive integer, got {value!r}')
    return value


def camera_info_from_dict(doc, source='camera_info YAML'):
    """
    Build a CameraInfo from a parsed camera_calibration YAML document.

    Missing optional entries get the ROS defaults for an ideal camera: no distortion, identity
    rectification and ``P = [K | 0]``.
    """
    if not isinstance(doc, dict):
        raise CameraYamlError(f'{source}: expected a mapping at the top level')
    width = _positive_int(doc, 'image_width', source)
    height = _positive_int(doc, 'image_height', source)
    k = _matrix(doc, 'camera_matrix', 3, 3, source, required=True)
    d = _matrix(doc, 'distortion_coefficients', None, None, source, required=False)
    r = _matrix(doc, 'rectification_matrix', 3, 3, source, required=False)
    p = _matrix(doc, 'projection_matrix', 3, 4, source, required=False)
    if k[0] <= 0 or k[4] <= 0:
        raise CameraYamlError(
            f'{source}: camera_matrix has non-positive focal lengths fx={k[0]}, fy={k[4]}')
    msg = CameraInfo()
    msg.width = width
    msg.height = height
    msg.distortion_model = str(doc.get('distortion_model') or ('plumb_bob' if d else ''))
    msg.d = d or []
    msg.k = k
    msg.r = r or [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = p or [k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0]
    for key in ('binning_x', 'binning_y'):
        if key in doc:
            value = doc[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CameraYamlError(f'{source}: {key} must be a non-negative integer')
            setattr(msg, key, value)
    return msg


def load_camera_yaml(path):
    """
    Read a camera_calibration YAML file.

    Returns a `CameraCalibration`; raises `CameraYamlError` naming the file and the problem.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise CameraYamlError(f'cannot read camera_info file {path}: {error}') from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CameraYamlError(f'{path}: not valid YAML: {error}') from None
    info = camera_info_from_dict(doc, source=str(path))
    return CameraCalibration(camera_name=str(doc.get('camera_name') or ''), camera_info=info)


def _block(rows, cols, values):
    return {'rows': rows, 'cols': cols, 'data': [float(v) for v in values]}


def camera_info_to_yaml(camera_info, camera_name=''):
    """Return the camera_calibration YAML text for a CameraInfo message."""
    doc = {
        'image_width': int(camera_info.width),
        'image_height': int(camera_info.height),
        'camera_name': camera_name,
        'camera_matrix': _block(3, 3, camera_info.k),
        'distortion_model': camera_info.distortion_model or 'plumb_bob',
        'distortion_coefficients': _block(1, len(camera_info.d), camera_info.d),
        'rectification_matrix': _block(3, 3, camera_info.r),
        'projection_matrix': _block(3, 4, camera_info.p),
    }
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)
