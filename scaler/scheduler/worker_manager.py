"""Knows the connected workers: their free slots, their assigned tasks, their health."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from scaler.protocol.checks import as_int, as_list, as_number, as_str
from scaler.protocol.codec import encode
from scaler.protocol.messages import MessageType
from scaler.version import __version__

logger = logging.getLogger(__name__)

SendFunction = Callable[[bytes, list[Any]], None]


@dataclasses.dataclass(slots=True)
class WorkerRecord:
    """One connected worker (one agent with its processors)."""

    identity: bytes
    name: str
    pid: int
    hostname: str
    per_worker_queue_size: int
    last_seen: float
    # task ids, oldest first; True once the worker has handed the task to a processor. Written by WorkerManager only.
    assigned: dict[int, bool] = dataclasses.field(default_factory=dict)
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    queued: int = 0
    processors: int = 0
    idle_passes: int = 0  # consecutive balance passes that saw this worker idle

    @property
    def free_slots(self) -> int:
        return self.per_worker_queue_size - len(self.assigned)

    def assignments(self) -> list[tuple[int, bool]]:
        """(task id, started) of every task this worker holds, oldest first."""
        return list(self.assigned.items())


class WorkerManager:
    """Registers workers, tracks their queues, and reports workers that leave or go silent."""

    def __init__(
        self,
        send: SendFunction,
        timeout_seconds: float,
        per_worker_queue_size: int,
        on_worker_gone: Callable[[WorkerRecord], None],
    ) -> None:
        self._send = send
        self._timeout_seconds = timeout_seconds
        self._per_worker_queue_size = per_worker_queue_size
        self._on_worker_gone = on_worker_gone
        self._workers: dict[bytes, WorkerRecord] = {}

    def __len__(self) -> int:
        return len(self._workers)

    def __iter__(self) -> Iterator[WorkerRecord]:
        """The connected workers (a snapshot: safe while workers come and go)."""
        return iter(list(self._workers.values()))

    def identities(self) -> set[bytes]:
        """Identities of every connected worker."""
        return set(self._workers)

    def get(self, identity: bytes) -> WorkerRecord | None:
        return self._workers.get(identity)

    def on_connect(self, identity: bytes, fields: list[Any]) -> None:
        """A worker introduces itself: record it and answer with WORKER_ACCEPT."""
        as_list(fields, "WORKER_CONNECT", 4)
        name = as_str(fields[0], "worker name")
        pid = as_int(fields[1], "worker pid")
        hostname = as_str(fields[2], "worker hostname")
        asked = as_int(fields[3], "per-worker queue size")
        if identity in self._workers:
            self.remove(identity, reason="reconnected")
        size = max(1, min(asked, self._per_worker_queue_size)) if asked > 0 else self._per_worker_queue_size
        self._workers[identity] = WorkerRecord(identity, name, pid, hostname, size, time.monotonic())
        logger.info("worker %s (pid %d on %s) connected, queue of %d", name, pid, hostname, size)
        self._send(identity, encode(MessageType.WORKER_ACCEPT, [__version__]))

    def touch(self, identity: bytes) -> WorkerRecord | None:
        """The worker spoke: note the time and return its record, or None for an unknown peer."""
        record = self._workers.get(identity)
        if record is not None:
            record.last_seen = time.monotonic()
        return record

    # ------------------------------------------------------------------ assignments (asked by the task manager)

    def assign(self, identity: bytes, task_id: int) -> None:
        """The connected worker ``identity`` now holds ``task_id`` (not yet started)."""
        self._workers[identity].assigned[task_id] = False

    def release(self, identity: bytes, task_id: int) -> None:
        """The worker no longer holds ``task_id``; nothing happens if it is gone or never held it."""
        worker = self._workers.get(identity)
        if worker is not None:
            worker.assigned.pop(task_id, None)

    def mark_started(self, worker: WorkerRecord, task_ids: list[Any]) -> None:
        """The worker handed these tasks to a processor: they take the blame if it dies now."""
        assigned = worker.assigned
        for task_id in task_ids:
            if type(task_id) is int and task_id in assigned:
                assigned[task_id] = True

    def holds(self, identity: bytes, task_id: int) -> bool:
        """Whether the connected worker ``identity`` holds ``task_id``."""
        worker = self._workers.get(identity)
        return worker is not None and task_id in worker.assigned

    def assigned_to(self, identity: bytes) -> list[int]:
        """Ids of the tasks the worker holds, oldest first (empty for an unknown worker)."""
        worker = self._workers.get(identity)
        return [] if worker is None else list(worker.assigned)

    def total_assigned(self) -> int:
        """Tasks held by all workers together."""
        return sum(len(worker.assigned) for worker in self._workers.values())

    # ------------------------------------------------------------------ health

    def on_heartbeat(self, record: WorkerRecord, fields: list[Any]) -> None:
        """Store the worker's figures and answer so it knows the scheduler is alive."""
        as_list(fields, "WORKER_HEARTBEAT", 4)
        cpu = as_number(fields[0], "cpu")
        rss = as_int(fields[1], "rss")
        queued = as_int(fields[2], "queued")
        processors = as_int(fields[3], "processors")
        record.cpu_percent, record.rss_bytes, record.queued, record.processors = cpu, rss, queued, processors
        self._send(record.identity, encode(MessageType.HEARTBEAT_ECHO))

    def remove(self, identity: bytes, reason: str) -> None:
        """Forget a worker and let the task manager re-queue its tasks."""
        record = self._workers.pop(identity, None)
        if record is None:
            return
        level = logging.INFO if reason == "disconnected" else logging.WARNING
        logger.log(level, "worker %s gone (%s) with %d assigned tasks", record.name, reason, len(record.assigned))
        self._on_worker_gone(record)

    def expire(self, now: float) -> None:
        """Remove every worker silent for longer than the worker timeout."""
        limit = now - self._timeout_seconds
        for record in [r for r in self._workers.values() if r.last_seen < limit]:
            self.remove(record.identity, reason=f"silent for more than {self._timeout_seconds:g} s")

    def plan_assignments(self, n_tasks: int) -> list[tuple[WorkerRecord, int]]:
        """Split up to ``n_tasks`` among workers with free slots, levelling their queue lengths.

        Workers with the shortest queues get tasks first, so a burst spreads evenly instead of
        filling one worker's queue while another waits.
        """
        candidates = [w for w in self._workers.values() if w.free_slots > 0]
        if not candidates or n_tasks <= 0:
            return []
        if len(candidates) == 1:
            worker = candidates[0]
            return [(worker, min(n_tasks, worker.free_slots))]
        if n_tasks == 1:  # the common case of a lone task: the first of the shortest queues
            return [(min(candidates, key=lambda w: len(w.assigned)), 1)]
        candidates.sort(key=lambda w: len(w.assigned))
        loads = [len(w.assigned) for w in candidates]
        caps = [w.per_worker_queue_size for w in candidates]
        grant = [0] * len(candidates)
        remaining = n_tasks
        # Raise the lowest queues to the next level, step by step, until the tasks run out.
        while remaining > 0:
            active = [i for i in range(len(candidates)) if loads[i] + grant[i] < caps[i]]
            if not active:
                break
            level = min(loads[i] + grant[i] for i in active)
            lowest = [i for i in active if loads[i] + grant[i] == level]
            higher = [loads[i] + grant[i] for i in active if loads[i] + grant[i] > level]
            target = min([*higher, *(caps[i] for i in lowest)])
            step = target - level
            if step * len(lowest) > remaining:
                step, extra = divmod(remaining, len(lowest))
                for rank, i in enumerate(lowest):
                    grant[i] += step + (1 if rank < extra else 0)
                remaining = 0
                break
            for i in lowest:
                grant[i] += step
            remaining -= step * len(lowest)
        return [(candidates[i], grant[i]) for i in range(len(candidates)) if grant[i] > 0]

    def plan_balance(self, trigger_times: int) -> dict[bytes, int]:
        """How many queued tasks to take back from each overloaded worker, when some workers idle.

        A worker counts as idle after ``trigger_times`` consecutive passes with an empty queue.
        """
        workers = list(self._workers.values())
        for worker in workers:
            worker.idle_passes = worker.idle_passes + 1 if not worker.assigned else 0
        idle = [w for w in workers if w.idle_passes >= trigger_times]
        if not idle:
            return {}
        total = sum(len(w.assigned) for w in workers)
        mean = total / len(workers)
        plan: dict[bytes, int] = {}
        for worker in workers:
            # Keep the running task and the worker's fair share; take back the rest.
            surplus = len(worker.assigned) - max(1, int(mean + 0.999))
            if surplus > 0:
                plan[worker.identity] = surplus
        return plan

    def describe(self) -> list[dict[str, Any]]:
        """Status lines for the monitor."""
        return [
            {
                "name": w.name,
                "hostname": w.hostname,
                "pid": w.pid,
                "assigned": len(w.assigned),
                "queued": w.queued,
                "processors": w.processors,
                "cpu_percent": w.cpu_percent,
                "rss_bytes": w.rss_bytes,
                "per_worker_queue_size": w.per_worker_queue_size,
            }
            for w in self._workers.values()
        ]
