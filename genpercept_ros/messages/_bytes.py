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
Fast message byte buffers.

rosidl's ``uint8[]`` setter accepts an ``array.array('B')`` as is, while ``bytes`` or lists
go through a per-element validation that is orders of magnitude slower
(ros2/common_interfaces#177, ros2/rosidl_python#156).
"""

import array


def message_with_fast_data(message_class):
    """
    Return a new message whose ``data`` setter keeps an ``array.array('B')`` without copying.

    Recent rosidl_python only takes that shortcut when the message checks its fields
    (``check_fields=True``; the default follows ``ROS_PYTHON_CHECK_FIELDS`` and is off), and
    otherwise copies the buffer once more. Older generators have no such argument (and always
    take the shortcut), so fall back to the plain constructor there.
    """
    try:
        return message_class(check_fields=True)
    except (AssertionError, TypeError):
        return message_class()


def bytes_array(buffer):
    """Return an ``array.array('B')`` holding one copy of a contiguous buffer."""
    view = memoryview(buffer)
    data = array.array('B')
    if view.nbytes:
        data.frombytes(view.cast('B'))
    return data


def zeroed_bytes(size):
    """Return a zero-filled ``array.array('B')`` of ``size`` bytes (repetition is a memcpy)."""
    return array.array('B', b'\0') * int(size)
