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
The floor orientation from TF: a ``tf2_ros.Buffer`` turned into the pipeline's ``up_lookup``.

``tf2_ros`` is optional (``ground_orientation: auto`` then uses the pitch/roll parameters or the
normals). The lookup only uses ``Buffer.lookup_transform(target_frame, source_frame, time)``,
so anything with that method (a ``tf2_ros.BufferClient``, a test double) works too.
"""

from ..geometry.ground import rotation_from_quaternion


def tf2_available():
    """Return True when ``tf2_ros`` can be imported."""
    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        return False
    return True


def transform_errors():
    """Return the exception classes a failed lookup raises (tf2's, and LookupError)."""
    try:
        import tf2_ros
    except ImportError:
        return (LookupError,)
    return (LookupError, tf2_ros.TransformException)


def create_tf_listener(node):
    """Return ``(buffer, listener)``: a tf2_ros Buffer filled from /tf and /tf_static."""
    import tf2_ros
    buffer = tf2_ros.Buffer()
    return buffer, tf2_ros.TransformListener(buffer, node)


def tf_up_lookup(buffer):
    """
    Return ``lookup(target_frame, source_frame, stamp) -> 3x3 rotation`` over ``buffer``.

    The rotation takes ``source_frame`` vectors into ``target_frame`` (tf2's
    ``lookup_transform(target, source, time)``), at the image stamp, or the latest transform
    when there is none at that time (a static camera mount). Raises ``LookupError`` with tf2's
    message when neither exists.
    """
    errors = transform_errors()

    def lookup(target_frame, source_frame, stamp):
        from rclpy.time import Time
        try:
            transform = buffer.lookup_transform(target_frame, source_frame, Time.from_msg(stamp))
        except errors:
            try:
                transform = buffer.lookup_transform(target_frame, source_frame, Time())
            except errors as error:
                raise LookupError(str(error) or type(error).__name__) from None
        rotation = transform.transform.rotation
        return rotation_from_quaternion(rotation.x, rotation.y, rotation.z, rotation.w)

    return lookup
