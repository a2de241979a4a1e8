"""Collects what the scheduler sends while it handles one message, and sends it as few messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scaler.protocol.codec import FrameWriter, Payload, encode
from scaler.protocol.messages import MessageType

SendFunction = Callable[[bytes, list[Any]], None]


class _ResultBatch:
    __slots__ = ("writer", "items")

    def __init__(self) -> None:
        self.writer = FrameWriter()
        self.items: list[list[Any]] = []


class Outbox:
    """Per-peer batches of results, cancels, deletes and withdrawals, flushed once per handled message."""

    def __init__(self, send: SendFunction) -> None:
        self._send = send
        self._results: dict[bytes, _ResultBatch] = {}
        self._id_lists: dict[tuple[bytes, MessageType], list[Any]] = {}

    def add_result(self, identity: bytes, task_id: int, status: int, payload: Payload | None, profile: Any) -> None:
        """Queue one task's result for the peer ``identity``."""
        batch = self._results.get(identity)
        if batch is None:
            batch = self._results[identity] = _ResultBatch()
        ref = None if payload is None else batch.writer.add(payload)
        batch.items.append([task_id, status, ref, profile])

    def add_id(self, identity: bytes, msg_type: MessageType, item: Any) -> None:
        """Queue one id for a message of ``msg_type`` (TASK_CANCEL, OBJECT_DELETE, TASK_WITHDRAW)."""
        key = (identity, msg_type)
        ids = self._id_lists.get(key)
        if ids is None:
            self._id_lists[key] = [item]
        else:
            ids.append(item)

    def flush(self) -> None:
        """Send everything queued."""
        if self._results:
            results, self._results = self._results, {}
            for identity, batch in results.items():
                self._send(identity, encode(MessageType.TASK_RESULTS, batch.items, batch.writer.frames))
        if self._id_lists:
            id_lists, self._id_lists = self._id_lists, {}
            for (identity, msg_type), ids in id_lists.items():
                self._send(identity, encode(msg_type, ids))
