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

"""Message byte buffers."""

import array

from genpercept_ros.messages import array_to_image
from genpercept_ros.messages import build_pointcloud
from genpercept_ros.messages._bytes import bytes_array
from genpercept_ros.messages._bytes import message_with_fast_data
from genpercept_ros.messages._bytes import zeroed_bytes
import numpy as np
from sensor_msgs.msg import Image
from sensor_msgs.msg import PointCloud2


def test_bytes_array_is_one_independent_copy():
    source = np.arange(12, dtype=np.uint16).reshape(3, 4)
    data = bytes_array(source)
    assert isinstance(data, array.array) and data.typecode == 'B'
    assert bytes(data) == source.tobytes()
    source[0, 0] = 999
    assert bytes(data)[:2] == b'\0\0'
    assert len(bytes_array(np.zeros((0, 3), np.float32))) == 0


def test_zeroed_bytes_and_fast_setter():
    data = zeroed_bytes(1000)
    assert len(data) == 1000 and not any(data)
    msg = message_with_fast_data(Image)
    msg.data = data
    assert msg.data is data  # kept as is: no second copy of the buffer


def test_built_messages_are_regular_messages():
    # Field checking on the built messages must not reject what they carry, and they must
    # compare equal to the same message built the ordinary way.
    image = array_to_image(np.ones((2, 3), np.float32), '32FC1')
    plain = Image(height=2, width=3, encoding='32FC1', step=12, is_bigendian=image.is_bigendian,
                  data=bytes(image.data))
    assert image == plain
    xyz = np.arange(12, dtype=np.float32).reshape(2, 2, 3) - 5.5
    cloud = build_pointcloud(None, xyz)
    assert len(cloud.data) == 48 and (cloud.height, cloud.width) == (2, 2)
    assert bytes(cloud.data) == xyz.astype('<f4').tobytes()   # x, y, z per point, no padding
    plain = PointCloud2(height=2, width=2, fields=cloud.fields, is_bigendian=False,
                        point_step=12, row_step=24, data=bytes(cloud.data), is_dense=False)
    assert cloud == plain
