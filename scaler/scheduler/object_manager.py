"""Keeps objects (functions, serializers, user objects, kept results) and knows which worker holds which.

The scheduler stores an object's payload as it arrived and never decodes it. A worker receives an
object once, with the first task that needs it, and keeps it until the scheduler deletes it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Any

from scaler.protocol.codec import Payload, payload_size

logger = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class ObjectRecord:
    """One object and who owns and holds it."""

    object_id: bytes
    payload: Payload
    size: int
    owners: set[int]  # numbers of the clients that own it
    holders: set[bytes]  # identities of the workers that hold a copy
    function_name: str | None = None  # set on function objects: the name the client gave


class ObjectManager:
    """Stores objects by id, tracks their owners and the workers holding copies."""

    def __init__(self, tell_workers_to_delete: Callable[[bytes, list[bytes]], None]) -> None:
        self._tell_workers_to_delete = tell_workers_to_delete
        self._objects: dict[bytes, ObjectRecord] = {}
        self._by_owner: dict[int, set[bytes]] = {}
        self._held_by_worker: dict[bytes, set[bytes]] = {}
        self.total_bytes = 0
        self.function_count = 0
        self.function_bytes = 0

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, object_id: bytes) -> bool:
        return object_id in self._objects

    def put(self, owner: int, object_id: bytes, payload: Payload, function_name: str | None = None) -> None:
        """Store an object for ``owner``; a second put of the same id only adds the owner.

        ``function_name`` marks a function object (monitors count those apart and show the name).
        """
        record = self._objects.get(object_id)
        if record is None:
            size = payload_size(payload)
            record = ObjectRecord(object_id, payload, size, set(), set(), function_name)
            self._objects[object_id] = record
            if function_name is None:
                self.total_bytes += size
            else:
                self.function_count += 1
                self.function_bytes += size
        record.owners.add(owner)
        self._by_owner.setdefault(owner, set()).add(object_id)

    def delete(self, owner: int, object_ids: Iterable[bytes]) -> None:
        """Drop ``owner``'s claim on these objects; an object nobody owns is deleted everywhere."""
        owned = self._by_owner.get(owner)
        for object_id in object_ids:
            record = self._objects.get(object_id)
            if record is None or owner not in record.owners:
                continue
            record.owners.discard(owner)
            if owned is not None:
                owned.discard(object_id)
            if not record.owners:
                self._remove(record)
        if owned is not None and not owned:
            del self._by_owner[owner]

    def delete_all_of(self, owner: int, keep: bytes | None = None) -> None:
        """Drop every claim of ``owner`` (the client left or cleared its objects), except on ``keep``."""
        owned = self._by_owner.get(owner, set())
        self.delete(owner, [object_id for object_id in owned if object_id != keep])

    def missing_for_worker(self, worker: bytes, object_ids: Iterable[bytes]) -> tuple[list[ObjectRecord], list[bytes]]:
        """Objects among ``object_ids`` the worker does not hold yet (marked held from now on),
        and the ids that do not exist at all."""
        held = self._held_by_worker.setdefault(worker, set())
        to_send: list[ObjectRecord] = []
        unknown: list[bytes] = []
        for object_id in object_ids:
            if object_id in held:
                continue
            record = self._objects.get(object_id)
            if record is None:
                unknown.append(object_id)
                continue
            record.holders.add(worker)
            held.add(object_id)
            to_send.append(record)
        return to_send, unknown

    def forget_worker(self, worker: bytes) -> None:
        """The worker is gone: it holds nothing any more."""
        for object_id in self._held_by_worker.pop(worker, set()):
            record = self._objects.get(object_id)
            if record is not None:
                record.holders.discard(worker)

    def payload_of(self, object_id: bytes) -> Payload:
        """The payload of a stored object (KeyError if there is none)."""
        return self._objects[object_id].payload

    def function_name(self, object_id: bytes) -> str | None:
        """The name a client gave the function object ``object_id``; None if unknown or not a function."""
        record = self._objects.get(object_id)
        return None if record is None else record.function_name

    def objects_of(self, owner: int) -> int:
        """Number of objects a client owns."""
        return len(self._by_owner.get(owner, ()))

    def owners(self) -> set[int]:
        """Numbers of the clients that own at least one object."""
        return {owner for owner, owned in self._by_owner.items() if owned}

    def holding_workers(self) -> set[bytes]:
        """Identities of the workers recorded as holding at least one object."""
        return {worker for worker, held in self._held_by_worker.items() if held}

    def check_invariants(self) -> list[str]:
        """Every breach of the object books, as sentences; empty when they are consistent."""
        breaches: list[str] = []
        for object_id, record in self._objects.items():
            if not record.owners:
                breaches.append(f"object {object_id.hex()} has no owner")
            for owner in record.owners:
                if object_id not in self._by_owner.get(owner, ()):
                    breaches.append(f"object {object_id.hex()} is missing from its owner {owner}'s objects")
            for worker in record.holders:
                if object_id not in self._held_by_worker.get(worker, ()):
                    breaches.append(f"object {object_id.hex()} is missing from a holder's objects")
        for owner, owned in self._by_owner.items():
            for object_id in owned:
                owned_record = self._objects.get(object_id)
                if owned_record is None or owner not in owned_record.owners:
                    breaches.append(f"client {owner} is said to own object {object_id.hex()}, which does not say so")
        for worker, held in self._held_by_worker.items():
            for object_id in held:
                held_record = self._objects.get(object_id)
                if held_record is None or worker not in held_record.holders:
                    breaches.append(f"a worker is said to hold object {object_id.hex()}, which does not say so")
        functions = [record for record in self._objects.values() if record.function_name is not None]
        total = sum(record.size for record in self._objects.values()) - sum(record.size for record in functions)
        if total != self.total_bytes:
            breaches.append(f"objects take {total} bytes, the count says {self.total_bytes}")
        if len(functions) != self.function_count or sum(r.size for r in functions) != self.function_bytes:
            breaches.append(f"{len(functions)} function objects, the count says {self.function_count}")
        return breaches

    def describe(self) -> dict[str, Any]:
        """Status figures for the monitor."""
        return {
            "count": len(self._objects) - self.function_count,
            "bytes": self.total_bytes,
            "functions": self.function_count,
            "function_bytes": self.function_bytes,
        }

    def _remove(self, record: ObjectRecord) -> None:
        del self._objects[record.object_id]
        if record.function_name is None:
            self.total_bytes -= record.size
        else:
            self.function_count -= 1
            self.function_bytes -= record.size
        for worker in record.holders:
            held = self._held_by_worker.get(worker)
            if held is not None:
                held.discard(record.object_id)
            self._tell_workers_to_delete(worker, [record.object_id])
