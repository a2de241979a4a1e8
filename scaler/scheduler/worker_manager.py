"""Knows the connected workers: their free slots, their assigned tasks, their health."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from scaler import defaults, version
from scaler.protocol import versions
from scaler.protocol.checks import as_int, as_list, as_number, as_str
from scaler.protocol.codec import MalformedMessage, encode
from scaler.protocol.messages import HeartbeatField, MessageType, ProcessorFigureField, WorkerConnectField
from scaler.scheduler.dispatch_policy import HORIZON_SECONDS, level, room_for, worth_stealing

logger = logging.getLogger(__name__)

SendFunction = Callable[[bytes, list[Any]], None]

# Loaded workers looked at when an idle worker looks for work to take.
_VICTIMS_SAMPLED = 64


@dataclasses.dataclass(slots=True)
class WorkerRecord:
    """One connected worker (one agent with its processors)."""

    identity: bytes
    name: str
    pid: int
    hostname: str
    per_worker_queue_size: int
    last_seen: float
    # Written by WorkerManager only: task id -> its estimated seconds, oldest first; the ids the worker has
    # handed to a processor; those waiting on nested tasks (their cores are free); and the estimated seconds
    # of the tasks held and not suspended.
    assigned: dict[int, float] = dataclasses.field(default_factory=dict)
    started: set[int] = dataclasses.field(default_factory=set)
    suspended: set[int] = dataclasses.field(default_factory=set)
    held_seconds: float = 0.0
    # Written by WorkerManager only: task id -> when the scheduler asked for it back or asked to cancel it, until
    # the worker answers (a worker that holds such a question too long is treated as dead).
    awaiting_answer: dict[int, float] = dataclasses.field(default_factory=dict)
    # What the worker's last heartbeat said.
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    queued: int = 0
    processors: int = 0
    agent_cpu_percent: float = 0.0
    agent_rss_bytes: int = 0
    processor_figures: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    last_heartbeat: float | None = None
    idle_passes: int = 0  # consecutive balance passes that saw this worker idle
    succeeded: int = 0  # tasks it ended each way since it connected
    failed: int = 0

    def assignments(self) -> list[tuple[int, bool]]:
        """(task id, started) of every task this worker holds, oldest first."""
        started = self.started
        return [(task_id, task_id in started) for task_id in self.assigned]

    @property
    def occupied(self) -> int:
        """Tasks that hold a core or wait for one: those held, except the ones waiting on nested tasks."""
        return len(self.assigned) - len(self.suspended)

    @property
    def has_waiting(self) -> bool:
        """Whether it holds a task it has not started."""
        return len(self.assigned) > len(self.started)


class WorkerManager:
    """Registers workers, tracks their queues, and reports workers that leave or go silent."""

    def __init__(
        self,
        send: SendFunction,
        timeout_seconds: float,
        per_worker_queue_size: int,
        on_worker_gone: Callable[[WorkerRecord], None],
        answer_timeout_seconds: float = defaults.SCHEDULER_WORKER_ANSWER_TIMEOUT_SECONDS,
        authorize: Callable[[bytes], str | None] | None = None,
    ) -> None:
        """``authorize`` (CURVE security on): why the peer of an identity may not register as a worker, or None."""
        self._send = send
        self._timeout_seconds = timeout_seconds
        self._answer_timeout_seconds = answer_timeout_seconds
        self._authorize = authorize
        self._per_worker_queue_size = per_worker_queue_size
        self._on_worker_gone = on_worker_gone
        self._workers: dict[bytes, WorkerRecord] = {}
        # Workers holding more than the horizon of work, some of it not started: where idle workers steal from.
        self._loaded: dict[bytes, None] = {}
        # Workers that connected or finished their last task since the dispatcher last looked.
        self._became_idle: dict[bytes, None] = {}

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
        if self._authorize is not None:
            denied = self._authorize(identity)  # the scheduler logs it, once per peer
            if denied is not None:
                self._send(identity, encode(MessageType.WORKER_REFUSED, [denied]))
                return
        as_list(fields, "WORKER_CONNECT", 4)
        name = as_str(fields[WorkerConnectField.NAME], "worker name")
        pid = as_int(fields[WorkerConnectField.PID], "worker pid")
        hostname = as_str(fields[WorkerConnectField.HOSTNAME], "worker hostname")
        asked = as_int(fields[WorkerConnectField.PER_WORKER_QUEUE_SIZE], "per-worker queue size")
        refusal = versions.mismatch(
            "worker", versions.version_field(fields, WorkerConnectField.VERSION), "this scheduler"
        )
        if refusal is not None:
            logger.warning("refused worker %s (pid %d on %s): %s", name, pid, hostname, refusal)
            self._send(identity, encode(MessageType.WORKER_REFUSED, [refusal]))
            return
        if identity in self._workers:
            self.remove(identity, reason="reconnected")
        size = max(1, min(asked, self._per_worker_queue_size)) if asked > 0 else self._per_worker_queue_size
        self._workers[identity] = WorkerRecord(identity, name, pid, hostname, size, time.monotonic())
        self._became_idle[identity] = None
        logger.info("worker %s (pid %d on %s) connected, queue of %d", name, pid, hostname, size)
        self._send(identity, encode(MessageType.WORKER_ACCEPT, [version.__version__]))

    def touch(self, identity: bytes) -> WorkerRecord | None:
        """The worker spoke: note the time and return its record, or None for an unknown peer."""
        record = self._workers.get(identity)
        if record is not None:
            record.last_seen = time.monotonic()
        return record

    # ------------------------------------------------------------------ assignments (asked by the task manager)

    def assign(self, identity: bytes, task_id: int, estimate: float) -> None:
        """The connected worker ``identity`` now holds ``task_id`` (not yet started), estimated at ``estimate`` s."""
        worker = self._workers[identity]
        worker.assigned[task_id] = estimate
        worker.held_seconds += estimate
        if worker.held_seconds > HORIZON_SECONDS:
            self._loaded[identity] = None

    def await_answer(self, identity: bytes, task_id: int) -> None:
        """The scheduler asked the worker to give ``task_id`` back or to cancel it: an answer must come in time."""
        worker = self._workers.get(identity)
        if worker is not None and task_id in worker.assigned:
            worker.awaiting_answer.setdefault(task_id, time.monotonic())

    def answered(self, identity: bytes, task_id: int) -> None:
        """The worker answered about ``task_id`` and keeps it."""
        worker = self._workers.get(identity)
        if worker is not None:
            worker.awaiting_answer.pop(task_id, None)

    def release(self, identity: bytes, task_id: int) -> None:
        """The worker no longer holds ``task_id``; nothing happens if it is gone or never held it."""
        worker = self._workers.get(identity)
        if worker is None:
            return
        estimate = worker.assigned.pop(task_id, None)
        if estimate is None:
            return
        if worker.awaiting_answer:  # most often empty: nothing asked of this worker
            worker.awaiting_answer.pop(task_id, None)
        worker.started.discard(task_id)
        if task_id in worker.suspended:
            worker.suspended.discard(task_id)  # its estimate was not counted while suspended
        else:
            worker.held_seconds -= estimate
        if not worker.assigned:
            worker.held_seconds = 0.0  # no rounding left behind
        if identity in self._loaded:  # held work only shrank: it can leave the index, not enter it
            self._review(worker)
        if not worker.occupied:
            self._became_idle[identity] = None

    def mark_started(self, worker: WorkerRecord, task_ids: list[Any]) -> None:
        """The worker handed these tasks to a processor: they take the blame if it dies now, and stay there."""
        assigned = worker.assigned
        started = worker.started
        for task_id in task_ids:
            if type(task_id) is int and task_id in assigned:
                started.add(task_id)
        if worker.identity in self._loaded:
            self._review(worker)

    def set_suspended(self, worker: WorkerRecord, fields: list[Any]) -> None:
        """TASK_SUSPENDED: a task waits on nested tasks and leaves its core free, or goes on running."""
        as_list(fields, "TASK_SUSPENDED", 2)
        task_id = as_int(fields[0], "task id")
        suspended = fields[1]
        if type(suspended) is not bool:
            raise MalformedMessage("TASK_SUSPENDED says True or False")
        estimate = worker.assigned.get(task_id)
        if estimate is None or (task_id in worker.suspended) == suspended:
            return  # ended meanwhile, or said twice
        if suspended:
            worker.suspended.add(task_id)
            worker.held_seconds -= estimate
        else:
            worker.suspended.discard(task_id)
            worker.held_seconds += estimate
        self._review(worker)
        if not worker.occupied:
            self._became_idle[worker.identity] = None

    def _review(self, worker: WorkerRecord) -> None:
        if worker.held_seconds > HORIZON_SECONDS and worker.has_waiting:
            self._loaded[worker.identity] = None
        else:
            self._loaded.pop(worker.identity, None)

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

    def plan_assignments(self, estimate: float, n_tasks: int) -> list[tuple[WorkerRecord, int]]:
        """Split up to ``n_tasks`` tasks of ``estimate`` seconds among workers with room, levelling their work.

        The workers holding the least work get tasks first, so a burst spreads evenly, and a worker that
        connected or went idle gets work at once. How much each may hold follows dispatch_policy.room_for.
        """
        if n_tasks <= 0:
            return []
        rooms: list[tuple[WorkerRecord, int]] = []
        for worker in self._workers.values():
            room = room_for(worker.occupied, worker.held_seconds, estimate, worker.per_worker_queue_size)
            if room > 0:
                rooms.append((worker, room))
        if not rooms:
            return []
        if len(rooms) == 1:
            worker, room = rooms[0]
            return [(worker, min(n_tasks, room))]
        if n_tasks == 1:  # the common case of a lone task: the worker holding the least work
            return [(min(rooms, key=lambda pair: pair[0].held_seconds)[0], 1)]
        rooms.sort(key=lambda pair: pair[0].held_seconds)
        unit = max(estimate, 1e-6)
        loads = [round(worker.held_seconds / unit) for worker, _ in rooms]
        grant = level(loads, [load + room for load, (_, room) in zip(loads, rooms, strict=True)], n_tasks)
        return [(rooms[i][0], grant[i]) for i in range(len(rooms)) if grant[i] > 0]

    def take_idle(self) -> list[WorkerRecord]:
        """Workers that connected or freed their last core since the last call and still have every core free."""
        if not self._became_idle:
            return []
        workers = self._workers
        idle = [workers[i] for i in self._became_idle if i in workers and not workers[i].occupied]
        self._became_idle.clear()
        return idle

    def idle_for(self, trigger_times: int) -> list[WorkerRecord]:
        """Workers seen holding nothing by ``trigger_times`` consecutive calls (the periodic balancing pass)."""
        idle = []
        for worker in self._workers.values():
            worker.idle_passes = worker.idle_passes + 1 if not worker.occupied else 0
            if worker.idle_passes >= trigger_times:
                idle.append(worker)
        return idle

    def victim_for(self, thief: WorkerRecord) -> WorkerRecord | None:
        """The loaded worker that holds the most work, if moving some of it to ``thief`` pays.

        At most _VICTIMS_SAMPLED loaded workers are looked at, so the choice costs O(1) on any cluster.
        """
        best: WorkerRecord | None = None
        for identity in itertools.islice(self._loaded, _VICTIMS_SAMPLED):
            worker = self._workers[identity]
            if worker is thief:
                continue
            if best is None or worker.held_seconds > best.held_seconds:
                best = worker
        if best is None or not worth_stealing(best.held_seconds, thief.held_seconds):
            return None
        return best

    def waiting_newest_first(self, worker: WorkerRecord) -> list[tuple[int, float]]:
        """(task id, estimate) of the tasks the worker holds and has not started, newest first."""
        started = worker.started
        newest_first = reversed(worker.assigned.items())
        return [(task_id, estimate) for task_id, estimate in newest_first if task_id not in started]

    # ------------------------------------------------------------------ health

    def on_heartbeat(self, record: WorkerRecord, fields: list[Any]) -> None:
        """Store the worker's figures and answer so it knows the scheduler is alive."""
        as_list(fields, "WORKER_HEARTBEAT", HeartbeatField.PROCESSORS + 1)
        cpu = as_number(fields[HeartbeatField.CPU_PERCENT], "cpu")
        rss = as_int(fields[HeartbeatField.RSS_BYTES], "rss")
        queued = as_int(fields[HeartbeatField.QUEUED], "queued")
        processors = as_int(fields[HeartbeatField.PROCESSORS], "processors")
        agent_cpu, agent_rss, figures = cpu, rss, []
        if len(fields) > HeartbeatField.PROCESSOR_FIGURES:
            agent_cpu = as_number(fields[HeartbeatField.AGENT_CPU_PERCENT], "agent cpu")
            agent_rss = as_int(fields[HeartbeatField.AGENT_RSS_BYTES], "agent rss")
            figures = [
                _parse_processor_figures(item)
                for item in as_list(fields[HeartbeatField.PROCESSOR_FIGURES], "processors")
            ]
        record.cpu_percent, record.rss_bytes, record.queued, record.processors = cpu, rss, queued, processors
        record.agent_cpu_percent, record.agent_rss_bytes, record.processor_figures = agent_cpu, agent_rss, figures
        record.last_heartbeat = time.monotonic()
        self._send(record.identity, encode(MessageType.HEARTBEAT_ECHO))

    def count_results(self, worker: WorkerRecord, succeeded: int, failed: int) -> None:
        """The worker ended ``succeeded`` tasks with a success and ``failed`` otherwise (cancels excluded)."""
        worker.succeeded += succeeded
        worker.failed += failed

    def remove(self, identity: bytes, reason: str) -> None:
        """Forget a worker and let the task manager re-queue its tasks."""
        record = self._workers.pop(identity, None)
        if record is None:
            return
        self._loaded.pop(identity, None)
        self._became_idle.pop(identity, None)
        level = logging.INFO if reason == "disconnected" else logging.WARNING
        logger.log(level, "worker %s gone (%s) with %d assigned tasks", record.name, reason, len(record.assigned))
        self._on_worker_gone(record)

    def expire(self, now: float) -> None:
        """Remove every worker silent for longer than the worker timeout, and every worker that heartbeats but
        left a withdrawal or a cancel unanswered for longer than the answer timeout (it may be holding tasks
        hostage: they run elsewhere)."""
        limit = now - self._timeout_seconds
        answer_limit = now - self._answer_timeout_seconds
        for record in list(self._workers.values()):
            if record.last_seen < limit:
                self.remove(record.identity, reason=f"silent for more than {self._timeout_seconds:g} s")
            elif record.awaiting_answer and min(record.awaiting_answer.values()) < answer_limit:
                self.remove(
                    record.identity,
                    reason=f"answered no withdrawal or cancel for more than {self._answer_timeout_seconds:g} s",
                )

    def check_invariants(self) -> list[str]:
        """Every breach of the workers' books, as sentences."""
        breaches: list[str] = []
        for worker in self._workers.values():
            if not worker.awaiting_answer.keys() <= worker.assigned.keys():
                breaches.append(f"worker {worker.name} awaits answers about tasks it does not hold")
            if not worker.suspended <= worker.started <= worker.assigned.keys():
                breaches.append(f"worker {worker.name} started or suspended tasks it does not hold")
            total = sum(s for task_id, s in worker.assigned.items() if task_id not in worker.suspended)
            if abs(total - worker.held_seconds) > 1e-6 * max(1.0, total):
                breaches.append(f"worker {worker.name} holds {total} s of work but counts {worker.held_seconds} s")
            loaded = worker.held_seconds > HORIZON_SECONDS and worker.has_waiting
            if loaded != (worker.identity in self._loaded):
                breaches.append(f"worker {worker.name} is {'not ' if not loaded else ''}loaded, the index disagrees")
        if not self._loaded.keys() <= self._workers.keys():
            breaches.append("workers that are gone are listed as loaded")
        return breaches

    def describe(self) -> list[dict[str, Any]]:
        """Status lines for the monitor (docs/monitoring.md, ``workers``)."""
        now = time.monotonic()
        lines = []
        for w in self._workers.values():
            started = len(w.started)
            lines.append(
                {
                    "name": w.name,
                    "hostname": w.hostname,
                    "pid": w.pid,
                    "cpu_percent": w.cpu_percent,
                    "rss_bytes": w.rss_bytes,
                    "agent_cpu_percent": w.agent_cpu_percent,
                    "agent_rss_bytes": w.agent_rss_bytes,
                    "processors": w.processor_figures,
                    "queued": len(w.assigned) - started,
                    "running": started,
                    "suspended": len(w.suspended),
                    "queue_size": w.per_worker_queue_size,
                    "held_seconds": w.held_seconds,
                    "succeeded": w.succeeded,
                    "failed": w.failed,
                    "heartbeat_age_seconds": None if w.last_heartbeat is None else now - w.last_heartbeat,
                }
            )
        return lines

    def task_counts(self) -> tuple[int, int, int]:
        """Tasks held by all workers: (not started, started, suspended)."""
        held = started = suspended = 0
        for w in self._workers.values():
            held += len(w.assigned)
            started += len(w.started)
            suspended += len(w.suspended)
        return held - started, started, suspended


def _parse_processor_figures(item: Any) -> dict[str, Any]:
    as_list(item, "processor figures", ProcessorFigureField.BUSY + 1)
    pid = item[ProcessorFigureField.PID]
    return {
        "pid": pid if type(pid) is int else None,
        "cpu_percent": as_number(item[ProcessorFigureField.CPU_PERCENT], "processor cpu"),
        "rss_bytes": as_int(item[ProcessorFigureField.RSS_BYTES], "processor rss"),
        "busy": item[ProcessorFigureField.BUSY] is True,
    }
