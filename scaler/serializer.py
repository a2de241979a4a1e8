"""The serializer plug-in: how functions, arguments and results become bytes and back."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import cloudpickle


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
        return cloudpickle.dumps(obj, protocol=5)

    def deserialize(self, payload: bytes) -> Any:
        return cloudpickle.loads(payload)
