"""Knows the connected clients: who they are, when they last spoke, and when they are gone."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from scaler import version
from scaler.protocol import versions
from scaler.protocol.checks import as_int, as_list, as_str, require
from scaler.protocol.codec import encode
from scaler.protocol.messages import ClientConnectField, MessageType

logger = logging.getLogger(__name__)

SendFunction = Callable[[bytes, list[Any]], None]


@dataclasses.dataclass(slots=True)
class ClientRecord:
    """One connected client."""

    identity: bytes
    number: int
    name: str
    serializer_id: bytes | None
    pid: int
    hostname: str
    last_seen: float


class ClientManager:
    """Registers clients, answers their heartbeats, and reports clients that leave or go silent."""

    def __init__(
        self,
        send: SendFunction,
        timeout_seconds: float,
        protected: bool,
        on_client_gone: Callable[[ClientRecord], None],
        authorize: Callable[[bytes, int | None], str | None] | None = None,
    ) -> None:
        """``authorize`` (CURVE security on): why the peer of an identity may not connect as a client (given the
        task that created it, for a nested client), or None."""
        self._authorize = authorize
        self._send = send
        self._timeout_seconds = timeout_seconds
        self._protected = protected
        self._on_client_gone = on_client_gone
        self._by_identity: dict[bytes, ClientRecord] = {}
        self._by_number: dict[int, ClientRecord] = {}
        self._next_number = 1

    def __len__(self) -> int:
        return len(self._by_identity)

    def on_connect(self, identity: bytes, fields: list[Any]) -> None:
        """A client introduces itself: give it a number and answer with CLIENT_ACCEPT."""
        as_list(fields, "CLIENT_CONNECT", 4)
        name = as_str(fields[ClientConnectField.NAME], "client name")
        serializer_id = fields[ClientConnectField.SERIALIZER_ID]
        require(serializer_id is None or type(serializer_id) is bytes, "serializer id must be bytes or nil")
        pid = as_int(fields[ClientConnectField.PID], "client pid")
        hostname = as_str(fields[ClientConnectField.HOSTNAME], "client hostname")
        refusal = versions.mismatch(
            "client", versions.version_field(fields, ClientConnectField.VERSION), "this scheduler"
        )
        if refusal is None and self._authorize is not None:
            parent = (
                fields[ClientConnectField.PARENT_TASK_ID] if len(fields) > ClientConnectField.PARENT_TASK_ID else None
            )
            refusal = self._authorize(identity, parent if type(parent) is int else None)
        if refusal is not None:
            logger.warning("refused client %s (pid %d on %s): %s", name, pid, hostname, refusal)
            self._send(identity, encode(MessageType.CLIENT_REJECTED, [refusal, version.__version__]))
            return
        previous = self._by_identity.get(identity)
        if previous is not None:
            self.remove(identity, reason="reconnected")
        record = ClientRecord(identity, self._next_number, name, serializer_id, pid, hostname, time.monotonic())
        self._next_number += 1
        self._by_identity[identity] = record
        self._by_number[record.number] = record
        logger.info("client %s (%s, pid %d on %s) connected", record.number, name, pid, hostname)
        self._send(identity, encode(MessageType.CLIENT_ACCEPT, [record.number, self._protected, version.__version__]))

    def touch(self, identity: bytes) -> ClientRecord | None:
        """The client spoke: note the time and return its record, or None for an unknown peer."""
        record = self._by_identity.get(identity)
        if record is not None:
            record.last_seen = time.monotonic()
        return record

    def on_heartbeat(self, identity: bytes) -> None:
        """Answer a heartbeat so the client knows the scheduler is alive."""
        self._send(identity, encode(MessageType.HEARTBEAT_ECHO))

    def get(self, number: int) -> ClientRecord | None:
        """The client with this number, if it is connected."""
        return self._by_number.get(number)

    def remove(self, identity: bytes, reason: str) -> None:
        """Forget a client and let the owner of its tasks and objects clean up."""
        record = self._by_identity.pop(identity, None)
        if record is None:
            return
        del self._by_number[record.number]
        logger.info("client %s (%s) gone: %s", record.number, record.name, reason)
        self._on_client_gone(record)

    def expire(self, now: float) -> None:
        """Remove every client silent for longer than the client timeout."""
        limit = now - self._timeout_seconds
        for record in [r for r in self._by_identity.values() if r.last_seen < limit]:
            self.remove(record.identity, reason=f"silent for more than {self._timeout_seconds:g} s")

    def numbers(self) -> set[int]:
        """Numbers of every connected client."""
        return set(self._by_number)

    def identities(self) -> list[bytes]:
        """Identities of every connected client."""
        return list(self._by_identity)

    def describe(self) -> list[dict[str, Any]]:
        """Status lines for the monitor."""
        return [
            {"number": r.number, "name": r.name, "hostname": r.hostname, "pid": r.pid}
            for r in self._by_identity.values()
        ]
