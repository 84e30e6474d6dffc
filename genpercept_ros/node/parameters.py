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
ROS declaration of the parameter table: descriptors with types, ranges and read-only.

Besides declaring, :func:`declare_parameters` reads the node's start-up overrides (``-p``,
``--params-file`` and ``parameter_overrides``) to accept integers for double parameters as
users type them (``-p far_m:=8``), to map deprecated names onto their new names and to warn
about unknown names. rclpy has no public getter for the overrides; ``Node._parameter_overrides``
is the dict ``declare_parameter`` itself reads them from.
"""

from rcl_interfaces.msg import FloatingPointRange
from rcl_interfaces.msg import IntegerRange
from rcl_interfaces.msg import ParameterDescriptor
from rcl_interfaces.msg import ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter

from ..pipeline.parameters import DEPRECATED_NAMES
from ..pipeline.parameters import PARAMETER_SPECS
from ..pipeline.parameters import PARAMETERS
from ..pipeline.parameters import rename_deprecated
from ..pipeline.parameters import unknown_names
from ..pipeline.parameters import validate_parameters

_PARAMETER_TYPES = {'bool': ParameterType.PARAMETER_BOOL,
                    'int': ParameterType.PARAMETER_INTEGER,
                    'float': ParameterType.PARAMETER_DOUBLE,
                    'str': ParameterType.PARAMETER_STRING,
                    'str_array': ParameterType.PARAMETER_STRING_ARRAY}


def parameter_descriptor(spec):
    """Return the ROS ParameterDescriptor (type, description, range, read_only) of a spec."""
    descriptor = ParameterDescriptor(name=spec.name, type=_PARAMETER_TYPES[spec.kind],
                                     description=spec.description, read_only=spec.read_only)
    if spec.bool_words:
        # 'true'/'false' arrive as booleans from YAML and the command line; the value is
        # checked (and turned back into the word) by validate_parameters.
        descriptor.dynamic_typing = True
        descriptor.type = ParameterType.PARAMETER_NOT_SET
    if spec.choices:
        descriptor.additional_constraints = 'one of: ' + ', '.join(
            repr(choice) for choice in spec.choices)
    elif spec.strictly_positive:
        descriptor.additional_constraints = 'must be > 0'
    low = 0.0 if spec.minimum is None and spec.strictly_positive else spec.minimum
    if spec.kind == 'int' and low is not None and spec.maximum is not None:
        descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(spec.maximum),
                                                 step=1)]
    if spec.kind == 'float' and low is not None and spec.maximum is not None:
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(low), to_value=float(spec.maximum), step=0.0)]
    return descriptor


def _integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def doubles_from_integers(parameters):
    """
    Return ``parameters`` with integer values of double parameters converted to doubles.

    A pre-set parameters callback: ``ros2 param set /genpercept_node far_m 8`` sets 8.0 instead
    of failing rclpy's type check.
    """
    converted = []
    for parameter in parameters:
        spec = PARAMETER_SPECS.get(parameter.name)
        if spec is not None and spec.kind == 'float' and _integer(parameter.value):
            parameter = Parameter(parameter.name, Parameter.Type.DOUBLE, float(parameter.value))
        converted.append(parameter)
    return converted


def startup_overrides(node):
    """
    Return ``({name: value} to declare with, warnings)`` from the node's start-up overrides.

    The dict holds only what rclpy would not take as given: values of deprecated names under
    their new names, and integers for double parameters as doubles. A warning names each
    deprecated or unknown parameter (with the closest known name).
    """
    given = {name: parameter.value
             for name, parameter in getattr(node, '_parameter_overrides', {}).items()}
    renamed, warnings = rename_deprecated(
        {name: value for name, value in given.items()
         if name in PARAMETER_SPECS or name in DEPRECATED_NAMES})
    values = {}
    for name, value in renamed.items():
        if PARAMETER_SPECS[name].kind == 'float' and _integer(value):
            values[name] = float(value)
        elif name not in given and value is not None:
            values[name] = value
    unknown = sorted(name for name in given
                     if name not in PARAMETER_SPECS and name not in DEPRECATED_NAMES
                     and not name.startswith('qos_overrides.')
                     and not node.has_parameter(name))
    for text in unknown_names(unknown):
        warnings.append(f'unknown parameter {text} is ignored; `genpercept_node --help` lists '
                        'the parameters.')
    return values, warnings


def declare_parameters(node):
    """
    Declare every parameter on ``node``; return the validated values (ValueError).

    Logs one warning per deprecated or unknown start-up parameter.
    """
    overrides, warnings = startup_overrides(node)
    for text in warnings:
        node.get_logger().warning(text)
    for spec in PARAMETERS:
        if spec.name in overrides:
            # The converted (or renamed) start-up value replaces rclpy's own override lookup.
            node.declare_parameter(spec.name, overrides[spec.name], parameter_descriptor(spec),
                                   ignore_override=True)
            continue
        # rclpy cannot type an empty list; declare the type and read "unset" as [].
        default = Parameter.Type.STRING_ARRAY if spec.default == [] else spec.default
        node.declare_parameter(spec.name, default, parameter_descriptor(spec))
    node.add_pre_set_parameters_callback(doubles_from_integers)
    values = {}
    for spec in PARAMETERS:
        try:
            values[spec.name] = node.get_parameter(spec.name).value
        except ParameterUninitializedException:
            # An empty YAML list (`cameras: []`) carries no type and arrives unset.
            values[spec.name] = spec.default
    return validate_parameters(values)
