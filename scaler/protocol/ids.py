"""Identifiers of clients, tasks and objects."""

from __future__ import annotations

import hashlib
import os

# A task id is the client's number in the high bits and the client's own counter in the low bits.
TASK_COUNTER_BITS = 40
_RESULT_OBJECT_PREFIX = b"R"


def task_id_base(client_number: int) -> int:
    """The first task id of the client numbered ``client_number``."""
    return client_number << TASK_COUNTER_BITS


def client_number_of_task(task_id: int) -> int:
    """The number of the client that submitted ``task_id``."""
    return task_id >> TASK_COUNTER_BITS


_CONTENT_PREFIX = b"F"


def content_object_id(payload: bytes | memoryview) -> bytes:
    """An object id derived from the content, so the same function is stored once."""
    return _CONTENT_PREFIX + hashlib.blake2b(payload, digest_size=15).digest()


def is_content_object_id(object_id: bytes) -> bool:
    """Whether ``object_id`` claims to be made from its object's content (functions, serializers)."""
    return object_id[:1] == _CONTENT_PREFIX


def random_object_id() -> bytes:
    """A fresh object id for an object sent with send_object."""
    return b"O" + os.urandom(15)


def result_object_id(task_id: int) -> bytes:
    """The id of the object holding a task's result while dependent tasks need it."""
    return _RESULT_OBJECT_PREFIX + task_id.to_bytes(8, "big")


def is_result_object_id(object_id: bytes) -> bool:
    """Whether ``object_id`` names a kept task result (as opposed to a function or a client's object)."""
    return object_id[:1] == _RESULT_OBJECT_PREFIX
