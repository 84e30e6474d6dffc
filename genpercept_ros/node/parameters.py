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

"""ROS declaration of the parameter table: descriptors with types, ranges and read-only."""

from rcl_interfaces.msg import FloatingPointRange
from rcl_interfaces.msg import IntegerRange
from rcl_interfaces.msg import ParameterDescriptor
from rcl_interfaces.msg import ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter

from ..pipeline.parameters import PARAMETERS
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


def declare_parameters(node):
    """Declare every parameter on ``node``; return the validated values (ValueError)."""
    for spec in PARAMETERS:
        # rclpy cannot type an empty list; declare the type and read "unset" as [].
        default = Parameter.Type.STRING_ARRAY if spec.default == [] else spec.default
        node.declare_parameter(spec.name, default, parameter_descriptor(spec))
    values = {}
    for spec in PARAMETERS:
        try:
            values[spec.name] = node.get_parameter(spec.name).value
        except ParameterUninitializedException:
            # An empty YAML list (`cameras: []`) carries no type and arrives unset.
            values[spec.name] = spec.default
    return validate_parameters(values)
