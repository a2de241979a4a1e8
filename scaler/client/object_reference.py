"""A handle on an object stored in the scheduler."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ObjectReference:
    """Stands for an object sent with ``Client.send_object``.

    Passed as a positional argument of ``submit`` or ``map``, it arrives in the task as the object.
    """

    object_id: bytes
    name: str | None = None
    size: int = 0

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<ObjectReference{label} {self.object_id.hex()[:12]} ({self.size} bytes)>"
