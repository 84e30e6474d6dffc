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
rosbag2 reading and writing through the ``rosbags`` library (no ROS installation needed).

Messages are CDR bytes in the bag; the ones we need as objects are deserialized with
``rclpy.serialization`` into the standard ``sensor_msgs`` classes (the same classes the node
uses), and new messages are serialized the same way. Original messages are copied as bytes with
their connection metadata (type, definition, hash, QoS) unchanged.

Bags recorded before rosbag2 stored definitions (metadata version <= 5, e.g. Humble) carry none:
standard types get theirs from the ``rosbags`` typestore, and any other type (a vendor's
``acme_camera_msgs/msg/Status``) is copied under the same type with an empty definition and hash,
as rosbag2 itself records types it has no definition for. ``rosbags``' public
``Writer.add_connection`` insists on a hash, so that one case registers its connection through
the writer's storage directly (`BagWriter._add_undefined_connection`).
"""

from dataclasses import dataclass
import importlib
from pathlib import Path
import shutil
import sqlite3
import struct

from rosbags.interfaces import Connection
from rosbags.interfaces import ConnectionExtRosbag2
from rosbags.interfaces import MessageDefinition
from rosbags.interfaces import MessageDefinitionFormat
from rosbags.rosbag2 import Reader
from rosbags.rosbag2 import ReaderError
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer
from rosbags.rosbag2 import WriterError
from rosbags.typesys import get_typestore
from rosbags.typesys import Stores

STORAGES = ('sqlite3', 'mcap')

# Exceptions that rosbags, sqlite3 and the MCAP parser raise on damaged files.
_DAMAGE = (ReaderError, sqlite3.Error, struct.error, EOFError, OSError, ValueError, KeyError,
           IndexError, AssertionError)


class BagError(RuntimeError):
    """A bag that cannot be read or written, with the reason."""


@dataclass(frozen=True)
class Record:
    """One message of the input bag: its connection, bag time (ns) and CDR bytes."""

    connection: object
    timestamp: int
    data: bytes

    @property
    def topic(self):
        """Topic name of the message."""
        return self.connection.topic


def stamp_ns(stamp):
    """Return a builtin_interfaces/Time as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def message_class(msgtype):
    """Return the Python class of a ROS 2 type name like ``sensor_msgs/msg/Image``."""
    package, kind, name = msgtype.split('/')
    module = importlib.import_module(f'{package}.{kind}')
    return getattr(module, name)


def type_name(message):
    """Return the ROS 2 type name of a message instance (``sensor_msgs/msg/Image``)."""
    cls = type(message)
    package = cls.__module__.split('.')[0]
    return f'{package}/msg/{cls.__name__}'


def storage_of(path):
    """Return 'sqlite3' or 'mcap' for a bag folder or storage file."""
    path = Path(path)
    if path.is_file():
        return 'mcap' if path.suffix == '.mcap' else 'sqlite3'
    metadata = path / 'metadata.yaml'
    if metadata.is_file():
        import yaml
        try:
            info = yaml.safe_load(metadata.read_text())['rosbag2_bagfile_information']
            identifier = info.get('storage_identifier', '')
        except (yaml.YAMLError, KeyError, TypeError, OSError):
            identifier = ''
        if identifier in STORAGES:
            return identifier
    return 'mcap' if any(path.glob('*.mcap')) else 'sqlite3'


class BagReader:
    """A rosbag2 opened for reading; use as a context manager."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f'{self.path}: no such bag')
        try:
            self._reader = Reader(self.path)
        except _DAMAGE as error:
            raise BagError(f'{self.path}: not a readable rosbag2 ({error})') from None
        self.storage = storage_of(self.path)

    def start(self):
        """Open the bag; raise `BagError` when it is damaged."""
        try:
            self._reader.open()
        except _DAMAGE as error:
            raise BagError(f'{self.path}: cannot open the bag, it may be truncated or '
                           f'corrupt ({error})') from None

    def finish(self):
        """Close the bag."""
        try:
            self._reader.close()
        except _DAMAGE:
            pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.finish()
        return False

    def topics(self):
        """Return ``{topic: msgtype}``."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    def message_count(self, topic):
        """Return the number of messages on ``topic`` recorded in the metadata."""
        return sum(c.msgcount for c in self._reader.connections if c.topic == topic)

    def records(self, topics=None):
        """Yield every `Record` in bag-time order; raise `BagError` on damaged data."""
        connections = [c for c in self._reader.connections
                       if topics is None or c.topic in topics]
        iterator = self._reader.messages(connections=connections)
        while True:
            try:
                connection, timestamp, data = next(iterator)
            except StopIteration:
                return
            except _DAMAGE as error:
                raise BagError(f'{self.path}: reading failed, the bag is truncated or corrupt '
                               f'({type(error).__name__}: {error})') from None
            yield Record(connection, timestamp, bytes(data))

    def deserialize(self, record):
        """Return the message of ``record`` as its rclpy class instance."""
        from rclpy.serialization import deserialize_message
        try:
            return deserialize_message(record.data, message_class(record.connection.msgtype))
        except Exception as error:  # noqa: B902 (rclpy raises plain Exception subclasses)
            raise BagError(f'{self.path}: cannot deserialize a {record.connection.msgtype} '
                           f'message on {record.topic} at {record.timestamp} ns '
                           f'({error})') from None

    def read_all(self, topic):
        """Return every message of ``topic`` deserialized."""
        return [self.deserialize(record) for record in self.records({topic})]


class BagWriter:
    """A new rosbag2; connections are created on first use. Call `close` or `discard`."""

    def __init__(self, path, storage):
        if storage not in STORAGES:
            raise BagError(f'unknown storage {storage!r}; use one of {", ".join(STORAGES)}')
        self.path = Path(path)
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        try:
            self._writer.open()
        except (WriterError, OSError) as error:
            raise BagError(f'cannot create {self.path}: {error}') from None
        self._typestore = get_typestore(Stores.LATEST)
        self._copied = {}
        self._new = {}
        self.counts = {}
        self.skipped = {}        # input connection id -> [reason, messages left out]
        self.undefined = {}      # topic -> msgtype copied without a message definition

    def copy(self, record):
        """Write an input record unchanged (same connection metadata, time and bytes)."""
        source = record.connection
        key = source.id
        if key in self.skipped:
            self.skipped[key][1] += 1
            return
        connection = self._copied.get(key)
        if connection is None:
            try:
                connection = self._copy_connection(source)
            except (BagError, WriterError) as error:
                self.skipped[key] = [f'{source.topic} ({source.msgtype}): {error}', 1]
                return
            self._copied[key] = connection
        self._write(connection, record.timestamp, record.data)

    def _copy_connection(self, source):
        msgdef, digest = source.msgdef.data, source.digest
        if not msgdef or not digest:
            try:
                msgdef, digest = self._definition(source.msgtype)
            except BagError:
                # A type unknown here (vendor messages in a bag without definitions): the
                # bytes are still copied, under the same type, without a definition.
                return self._add_undefined_connection(source)
        try:
            return self._writer.add_connection(
                source.topic, source.msgtype, msgdef=msgdef, rihs01=digest,
                serialization_format=source.ext.serialization_format,
                offered_qos_profiles=source.ext.offered_qos_profiles)
        except WriterError:
            # Two input channels with identical metadata (possible in MCAP) share one.
            for connection in self._writer.connections:
                if (connection.topic, connection.msgtype) == (source.topic, source.msgtype):
                    return connection
            raise

    def _add_undefined_connection(self, source):
        """
        Declare ``source``'s topic and type with its own (possibly empty) definition and hash.

        Mirrors ``rosbags.rosbag2.Writer.add_connection`` (0.11), which refuses an empty hash.
        """
        from rosbags.rosbag2.metadata import dump_qos_v9
        writer = self._writer
        for connection in writer.connections:
            if (connection.topic, connection.msgtype) == (source.topic, source.msgtype):
                return connection
        qos = list(source.ext.offered_qos_profiles)
        connection = Connection(
            id=len(writer.connections) + 1, topic=source.topic, msgtype=source.msgtype,
            msgdef=MessageDefinition(MessageDefinitionFormat.MSG, source.msgdef.data or ''),
            digest=source.digest or '', msgcount=0,
            ext=ConnectionExtRosbag2(serialization_format=source.ext.serialization_format,
                                     offered_qos_profiles=qos),
            owner=writer)
        dumped = dump_qos_v9(qos)
        if not isinstance(dumped, str):
            from io import StringIO
            from ruamel.yaml import YAML
            stream = StringIO()
            dumper = YAML(typ='safe')
            dumper.default_flow_style = False
            dumper.dump(dumped, stream)
            dumped = stream.getvalue().strip()
        if source.msgtype not in writer.added_types:
            writer.storage.add_msgtype(connection)
            writer.added_types.add(source.msgtype)
        writer.storage.add_connection(connection, dumped)
        writer.connections.append(connection)
        writer.counts[connection.id] = 0
        self.undefined[source.topic] = source.msgtype
        return connection

    def set_custom_data(self, key, value):
        """Record ``key: value`` (strings) in the output's metadata.yaml ``custom_data``."""
        self._writer.set_custom_data(key, str(value))

    def write_message(self, topic, message, timestamp):
        """Serialize ``message`` with rclpy and write it on ``topic`` at bag time ``timestamp``."""
        from rclpy.serialization import serialize_message
        connection = self._new.get(topic)
        if connection is None:
            msgtype = type_name(message)
            msgdef, digest = self._definition(msgtype)
            connection = self._writer.add_connection(topic, msgtype, msgdef=msgdef,
                                                     rihs01=digest)
            self._new[topic] = connection
        self._write(connection, timestamp, serialize_message(message))

    def _definition(self, msgtype):
        try:
            msgdef, _ = self._typestore.generate_msgdef(msgtype, ros_version=2)
            return msgdef, self._typestore.hash_rihs01(msgtype)
        except Exception as error:  # noqa: B902 (rosbags raises several unrelated types)
            raise BagError(f'no message definition known for {msgtype} ({error})') from None

    def _write(self, connection, timestamp, data):
        self._writer.write(connection, timestamp, data)
        self.counts[connection.topic] = self.counts.get(connection.topic, 0) + 1

    def close(self):
        """Finish the bag (index and metadata.yaml)."""
        self._writer.close()

    def discard(self):
        """Abandon the bag and delete what was written."""
        try:
            self._writer.abort()
        finally:
            shutil.rmtree(self.path, ignore_errors=True)
