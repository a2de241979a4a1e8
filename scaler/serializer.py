"""The serializer plug-in: how functions, arguments and results become bytes and back."""

from __future__ import annotations

import pickle
from typing import Any, Protocol, runtime_checkable

import cloudpickle

# Values that plain pickle writes exactly as cloudpickle does, several times faster.
_PICKLE_TYPES = frozenset({int, float, str, bytes, bool, type(None)})


@runtime_checkable
class Serializer(Protocol):
    """Turns objects into bytes and back.

    Pass an instance as ``Client(..., serializer=...)``: it is used for the client's functions,
    arguments, objects and results, on the client and on the workers (which receive it from the
    client, so it must itself be picklable by cloudpickle).
    """

    def serialize(self, obj: Any) -> bytes:
        """Return the bytes that stand for ``obj``."""
        ...

    def deserialize(self, payload: bytes) -> Any:
        """Return the object that ``payload`` stands for."""
        ...


class DefaultSerializer:
    """cloudpickle, which also serializes lambdas, closures and classes defined in ``__main__``."""

    def serialize(self, obj: Any) -> bytes:
        """Plain pickle for built-in values (faster), cloudpickle for everything else (lambdas, local classes)."""
        if type(obj) in _PICKLE_TYPES:
            return pickle.dumps(obj, protocol=5)
        return cloudpickle.dumps(obj, protocol=5)

    def deserialize(self, payload: bytes) -> Any:
        """The object ``serialize`` turned into ``payload``."""
        return cloudpickle.loads(payload)
