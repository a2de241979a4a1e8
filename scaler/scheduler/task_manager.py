"""Owns every unfinished task: queues it, assigns it to workers, and ends it exactly once.

A task's record is deleted the moment it ends, so the scheduler's memory follows the number of
unfinished tasks, not the number ever run.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Any

from scaler.protocol.checks import as_bytes, as_int, as_list, require
from scaler.protocol.codec import FrameWriter, MalformedMessage, Payload, encode, resolve
from scaler.protocol.ids import client_number_of_task, result_object_id
from scaler.protocol.messages import ArgumentKind, MessageType, ResultField, TaskFlag, TaskStatus, WorkerTaskField
from scaler.scheduler.client_manager import ClientManager, ClientRecord
from scaler.scheduler.object_manager import ObjectManager
from scaler.scheduler.outbox import Outbox, SendFunction
from scaler.scheduler.task_states import ON_WORKER, TRANSITIONS, TaskEvent, TaskState, next_state
from scaler.scheduler.worker_manager import WorkerManager, WorkerRecord

logger = logging.getLogger(__name__)

_STATUS_VALUES = frozenset(int(s) for s in TaskStatus)
_ENDED_COUNTERS = {int(s): f"ended_{s.name.lower()}" for s in TaskStatus}
_RESULT_TO_CLIENT = int(TaskFlag.RESULT_TO_CLIENT)
_INLINE = int(ArgumentKind.INLINE)
_OBJECT = int(ArgumentKind.OBJECT)
_TASK = int(ArgumentKind.TASK)
_TASK_ID_LIMIT = 1 << 63

# The bookkeeping of each move, derived once from the table: what leaving the source place and entering
# the target place takes. _fire reads it per move, so the busiest path pays one dict lookup.
_LEAVE_NOTHING, _LEAVE_QUEUE, _LEAVE_WORKER = 0, 1, 2
_ENTER_NOTHING, _END, _TAKE_WORKER, _QUEUE_BACK, _QUEUE_FRONT, _SEND_WITHDRAW, _SEND_CANCEL = range(7)


def _bookkeeping(source: TaskState, target: TaskState) -> tuple[int, int]:
    if source is target:
        return _LEAVE_NOTHING, _ENTER_NOTHING
    if source is TaskState.QUEUED:
        leave = _LEAVE_QUEUE
    elif source in ON_WORKER and target not in ON_WORKER:
        leave = _LEAVE_WORKER
    else:
        leave = _LEAVE_NOTHING
    if target is TaskState.ENDED:
        enter = _END
    elif target is TaskState.QUEUED:
        enter = _QUEUE_FRONT if source in ON_WORKER else _QUEUE_BACK
    elif target in ON_WORKER and source not in ON_WORKER:
        enter = _TAKE_WORKER
    elif target is TaskState.WITHDRAWING:
        enter = _SEND_WITHDRAW
    elif target is TaskState.CANCELLING:
        enter = _SEND_CANCEL
    else:
        enter = _ENTER_NOTHING  # WAITING, or ASSIGNED again when the worker kept a task it was asked back
    return leave, enter


_MOVES: dict[tuple[TaskState, TaskEvent], tuple[TaskState, int, int]] = {
    key: (target, *_bookkeeping(key[0], target)) for key, target in TRANSITIONS.items()
}


@dataclasses.dataclass(slots=True)
class TaskRecord:
    """One unfinished task."""

    task_id: int
    client: int
    priority: int
    flags: int
    wire: list[Any]  # the task as sent to workers: see WorkerTaskField
    object_ids: tuple[bytes, ...]  # objects its worker must hold
    has_frames: bool  # some argument is a large frame that must be re-referenced per message
    dependencies: tuple[int, ...]  # tasks whose results it takes as arguments
    missing: bytes | None  # an object or function it needs that did not exist when it arrived
    state: TaskState = TaskState.NEW
    worker: bytes | None = None
    failures: int = 0
    waiting_on: int = 0
    dependents: list[int] | None = None

    def mark_suspect(self) -> None:
        """Tell the next worker to run this task alone: it was running when a worker died."""
        self.wire = list(self.wire)
        self.wire[WorkerTaskField.FLAGS] |= TaskFlag.SUSPECT


class TaskQueue:
    """Ready tasks by priority (larger first), first in first out within a priority.

    A task that leaves the QUEUED state without being popped (it ended) stays in its bucket and is
    skipped when reached; ``live`` counts the tasks in the QUEUED state.
    """

    def __init__(self) -> None:
        self._buckets: dict[int, collections.deque[TaskRecord]] = {}
        self._priorities: list[int] = []  # sorted, largest first
        self.live = 0

    def push(self, task: TaskRecord, front: bool = False) -> None:
        bucket = self._buckets.get(task.priority)
        if bucket is None:
            bucket = self._buckets[task.priority] = collections.deque()
            self._priorities.append(task.priority)
            self._priorities.sort(reverse=True)
        if front:
            bucket.appendleft(task)
        else:
            bucket.append(task)
        self.live += 1

    def pop_many(self, count: int) -> list[TaskRecord]:
        """Up to ``count`` tasks still QUEUED, highest priority first; each must then leave the QUEUED state.

        ``live`` is lowered when a task leaves the QUEUED state, not here.
        """
        taken: list[TaskRecord] = []
        queued = TaskState.QUEUED
        for priority in list(self._priorities):
            bucket = self._buckets[priority]
            while bucket and len(taken) < count:
                task = bucket.popleft()
                if task.state is queued:
                    taken.append(task)
            if not bucket:
                del self._buckets[priority]
                self._priorities.remove(priority)
            if len(taken) >= count:
                break
        return taken

    def entries(self) -> list[TaskRecord]:
        """Every entry, stale ones included (for the invariant checks)."""
        return [task for bucket in self._buckets.values() for task in bucket]


@dataclasses.dataclass(slots=True)
class Ending:
    """How a task ends: the status, payload and profile its client is told."""

    status: int
    payload: Payload | None = None
    profile: list[Any] | None = None


_CANCELLED = Ending(TaskStatus.CANCELLED)


class TaskManager:
    """Task life cycle: submit, wait for dependencies, queue, assign, finish, cancel, re-queue.

    A task changes state only in ``_fire``, through the table of ``task_states``. What a state means
    for the books lives in one place each: ``_enter`` and ``_leave`` keep the queue, the worker's
    assignments and the record itself in step with the state, and ``_end`` is the one way out.
    """

    def __init__(
        self,
        send: SendFunction,
        outbox: Outbox,
        clients: ClientManager,
        workers: WorkerManager,
        objects: ObjectManager,
        allowed_failures: int,
        max_tasks_waiting: int,
    ) -> None:
        self._send = send
        self._outbox = outbox
        self._clients = clients
        self._workers = workers
        self._objects = objects
        self._allowed_failures = allowed_failures
        self._max_tasks_waiting = max_tasks_waiting
        self._tasks: dict[int, TaskRecord] = {}
        self._by_client: dict[int, dict[int, None]] = {}
        self._queue = TaskQueue()
        self._result_users: dict[int, int] = {}  # kept result's task id -> dependents not yet ended
        self.counters: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, task_id: int) -> bool:
        return task_id in self._tasks

    def tasks_of_client(self, client_number: int) -> int:
        """Number of unfinished tasks of a client."""
        return len(self._by_client.get(client_number, ()))

    def describe(self) -> dict[str, Any]:
        """Status figures for the monitor."""
        # Counted from the queue and the workers, not task by task: the loop must not stall on a million tasks.
        on_workers = self._workers.total_assigned()
        queued = self._queue.live
        in_state = {"queued": queued, "assigned": on_workers, "waiting": len(self._tasks) - queued - on_workers}
        return {"unfinished": len(self._tasks), "queued": queued, "in_state": in_state, **self.counters}

    # ------------------------------------------------------------------ from clients

    def on_submit(self, client: ClientRecord, fields: list[Any], frames: list[Any]) -> None:
        """Parse a TASK_SUBMIT batch fully, then register its tasks and place each one."""
        records = [self._parse_task(client, item, frames) for item in fields]
        if self._max_tasks_waiting >= 0 and self._queue.live + len(records) > self._max_tasks_waiting:
            for record in records:
                self._outbox.add_result(
                    client.identity,
                    record.task_id,
                    TaskStatus.FAILED,
                    b"the scheduler holds its maximum number of waiting tasks",
                    None,
                )
            return
        accepted: list[TaskRecord] = []
        for record in records:
            if record.task_id in self._tasks:
                self.counters["duplicate_submits"] += 1
                continue
            self._tasks[record.task_id] = record
            self._by_client.setdefault(record.client, {})[record.task_id] = None
            accepted.append(record)
        self.counters["submitted"] += len(accepted)
        for record in accepted:
            self._place(record)

    def on_cancel(self, client: ClientRecord, fields: list[Any]) -> None:
        """Cancel tasks of this client: queued ones end now, assigned ones are stopped by their worker."""
        task_ids = [as_int(t, "task id") for t in fields]
        for task_id in task_ids:
            task = self._tasks.get(task_id)
            if task is not None and task.client == client.number:
                self.cancel(task)

    def cancel_all_of(self, client_number: int) -> None:
        """Cancel every task of a client (it left, or cleared its work)."""
        for task_id in list(self._by_client.get(client_number, ())):
            task = self._tasks.get(task_id)
            if task is not None:
                self.cancel(task)

    def cancel(self, task: TaskRecord) -> None:
        """End a task as cancelled, or ask its worker to stop it."""
        self._fire(task, TaskEvent.CANCEL, _CANCELLED)

    # ------------------------------------------------------------------ from workers

    def on_worker_results(self, worker: WorkerRecord, fields: list[Any], frames: list[Any]) -> None:
        """Results from a worker: each ends its task, if the task is still assigned to that worker."""
        parsed = [parse_worker_result(item, frames) for item in fields]
        for task_id, ending in parsed:
            task = self._tasks.get(task_id)
            if task is None or task.worker != worker.identity:
                self.counters["stale_results"] += 1
                continue
            self._fire(task, TaskEvent.RESULT, ending)

    def on_tasks_returned(self, worker: WorkerRecord, fields: list[Any]) -> None:
        """The answer to one TASK_WITHDRAW: returned tasks go to the front of the queue, kept ones stay assigned.

        Only the tasks named here are settled: another withdrawal from the same worker may still be in flight.
        A task cancelled meanwhile ends when it is returned, and waits for its worker's answer when kept.
        """
        as_list(fields, "TASKS_RETURNED", 2)
        returned = [as_int(t, "task id") for t in as_list(fields[0], "returned tasks")]
        kept = [as_int(t, "task id") for t in as_list(fields[1], "kept tasks")]
        for task_id in reversed(returned):  # pushed to the front: the oldest ends first
            task = self._withdrawn_from(worker, task_id)
            if task is not None:
                self._fire(task, TaskEvent.RETURNED, _CANCELLED)
        for task_id in kept:
            task = self._withdrawn_from(worker, task_id)
            if task is not None:
                self._fire(task, TaskEvent.KEPT)

    def _withdrawn_from(self, worker: WorkerRecord, task_id: int) -> TaskRecord | None:
        task = self._tasks.get(task_id)
        if task is None or task.worker != worker.identity:
            return None
        if task.state is TaskState.WITHDRAWING or task.state is TaskState.CANCELLING:
            return task
        return None

    def on_tasks_started(self, worker: WorkerRecord, fields: list[Any]) -> None:
        """The worker handed these tasks to a processor: if it dies now, they are the suspects."""
        self._workers.mark_started(worker, as_list(fields, "TASKS_STARTED"))

    def on_worker_gone(self, worker: WorkerRecord) -> None:
        """Re-queue the tasks of a dead worker; the ones it had started count a failure, and fail past the limit.

        A worker that died before any TASKS_STARTED arrived blames nobody: it may never have run a task (a new
        worker killed at once), and a task that kills every worker it runs on is caught on its next deaths,
        since it then runs alone and its start is told before it runs.
        """
        self._objects.forget_worker(worker.identity)
        for task_id, started in reversed(worker.assignments()):  # pushed to the front: oldest ends first
            task = self._tasks.get(task_id)
            if task is None or task.worker != worker.identity:
                continue
            if task.state is TaskState.CANCELLING or not started:
                self._fire(task, TaskEvent.WORKER_LOST, _CANCELLED)
                continue
            task.failures += 1
            task.mark_suspect()
            if task.failures > self._allowed_failures:
                message = (
                    f"task {task_id:#x} lost its worker {task.failures} times "
                    f"(allowed failures: {self._allowed_failures}); last worker: {worker.name}"
                )
                self._fire(task, TaskEvent.WORKER_LOST_TOO_OFTEN, Ending(TaskStatus.WORKER_DIED, message.encode()))
            else:
                self._fire(task, TaskEvent.WORKER_LOST, _CANCELLED)

    # ------------------------------------------------------------------ scheduling

    def assign_ready_tasks(self) -> None:
        """Hand queued tasks to workers with free slots, one TASK_ASSIGN message per worker."""
        if self._queue.live <= 0:
            return
        for worker, count in self._workers.plan_assignments(self._queue.live):
            tasks = self._queue.pop_many(count)
            if tasks:
                self._send_to_worker(worker, tasks)

    def balance(self, trigger_times: int) -> None:
        """When workers idle and nothing waits in the scheduler, take queued tasks back from busy ones."""
        if self._queue.live > 0:
            return
        for identity, surplus in self._workers.plan_balance(trigger_times).items():
            newest_first = [self._tasks[t] for t in reversed(self._workers.assigned_to(identity))]
            chosen = [t for t in newest_first if t.state is TaskState.ASSIGNED][:surplus]
            for task in chosen:
                self._fire(task, TaskEvent.WITHDRAW)

    # ------------------------------------------------------------------ the life cycle

    def _fire(
        self, task: TaskRecord, event: TaskEvent, ending: Ending | None = None, worker: bytes | None = None
    ) -> None:
        """Move ``task`` as the table says for ``event``, with the bookkeeping of leaving and entering each place.

        ``ending`` says how it ends if the move ends it; ``worker`` names the worker that takes it on ASSIGN.
        """
        source = task.state
        row = _MOVES.get((source, event))
        if row is None:
            next_state(source, event)  # raises InvalidTransition
            return
        target, leave, enter = row
        if leave == _LEAVE_QUEUE:
            self._queue.live -= 1
        elif leave == _LEAVE_WORKER:
            self._workers.release(task.worker, task.task_id)  # type: ignore[arg-type]
            task.worker = None
        task.state = target
        if enter == _END:
            assert ending is not None
            self._end(task, ending, registered=source is not TaskState.NEW)
        elif enter == _TAKE_WORKER:
            assert worker is not None
            task.worker = worker
            self._workers.assign(worker, task.task_id)
        elif enter == _QUEUE_BACK:
            self._queue.push(task)
        elif enter == _QUEUE_FRONT:  # a task that left a worker goes first: it is the oldest
            self._queue.push(task, front=True)
            self.counters["balanced" if event is TaskEvent.RETURNED else "requeued"] += 1
        elif enter == _SEND_WITHDRAW:
            self._outbox.add_id(task.worker, MessageType.TASK_WITHDRAW, task.task_id)  # type: ignore[arg-type]
        elif enter == _SEND_CANCEL:
            self._outbox.add_id(task.worker, MessageType.TASK_CANCEL, task.task_id)  # type: ignore[arg-type]

    def _end(self, task: TaskRecord, ending: Ending, registered: bool) -> None:
        """The one way out: deliver or keep the result, release dependencies, settle dependents, drop the record.

        A task rejected before it was placed (not ``registered``) holds no claim on its dependencies' results.
        """
        del self._tasks[task.task_id]
        owned = self._by_client[task.client]
        del owned[task.task_id]
        if not owned:
            del self._by_client[task.client]
        status = ending.status
        self.counters[_ENDED_COUNTERS[status]] += 1

        client = self._clients.get(task.client)
        if client is not None and task.flags & _RESULT_TO_CLIENT:
            self._outbox.add_result(client.identity, task.task_id, status, ending.payload, ending.profile)
        if registered:
            for dependency_id in task.dependencies:
                self._release_result(task.client, dependency_id)
        if not task.dependents:
            return
        if status == TaskStatus.SUCCESS:
            if client is not None and task.task_id in self._result_users:
                assert ending.payload is not None
                self._objects.put(task.client, result_object_id(task.task_id), ending.payload)
            for dependent_id in task.dependents:
                dependent = self._tasks.get(dependent_id)
                if dependent is not None:
                    dependent.waiting_on -= 1
                    if dependent.waiting_on == 0:
                        self._fire(dependent, TaskEvent.READY)
        else:
            # A dependent cannot run without this result: it ends the same way.
            failed = Ending(status, ending.payload)
            for dependent_id in task.dependents:
                dependent = self._tasks.get(dependent_id)
                if dependent is not None:
                    self._fire(dependent, TaskEvent.DEPENDENCY_FAILED, failed)

    # ------------------------------------------------------------------ internals

    def _parse_task(self, client: ClientRecord, item: Any, frames: list[Any]) -> TaskRecord:
        as_list(item, "task", 6)
        task_id = as_task_id(item[0], "task id")
        require(client_number_of_task(task_id) == client.number, "task id does not belong to this client")
        function_id = as_bytes(item[1], "function id")
        priority = as_int(item[2], "priority")
        flags = as_int(item[3], "flags")
        args = as_list(item[4], "arguments")
        keywords = as_list(item[5], "keywords")
        if keywords:
            require(all(type(k) is str for k in keywords) and len(keywords) <= len(args), "bad keywords")
        wire_args: list[list[Any]] = []
        object_ids = [function_id]
        if client.serializer_id is not None:
            object_ids.append(client.serializer_id)
        known = self._objects
        missing = next((object_id for object_id in object_ids if object_id not in known), None)
        dependencies: list[int] = []
        has_frames = False
        for arg in args:
            as_list(arg, "argument", 2)
            kind = arg[0]
            if kind == _INLINE:
                payload = resolve(arg[1], frames)
                has_frames = has_frames or type(payload) is not bytes
                wire_args.append([ArgumentKind.INLINE, payload])
            elif kind == _OBJECT:
                object_id = as_bytes(arg[1], "object id")
                object_ids.append(object_id)
                wire_args.append([ArgumentKind.OBJECT, object_id])
                if missing is None and object_id not in known:
                    missing = object_id
            elif kind == _TASK:
                dependency = as_task_id(arg[1], "dependency id")
                require(client_number_of_task(dependency) == client.number, "dependency of another client")
                require(dependency != task_id, "task depends on itself")
                object_id = result_object_id(dependency)
                dependencies.append(dependency)
                object_ids.append(object_id)
                wire_args.append([ArgumentKind.OBJECT, object_id])
            else:
                raise MalformedMessage("unknown argument kind")
        wire = [task_id, function_id, priority, flags, wire_args, keywords, client.serializer_id]
        return TaskRecord(
            task_id,
            client.number,
            priority,
            flags,
            wire,
            tuple(dict.fromkeys(object_ids)),
            has_frames,
            tuple(dict.fromkeys(dependencies)),
            missing,
        )

    def _place(self, task: TaskRecord) -> None:
        """A new task: rejected if it needs what does not exist, else waiting on its dependencies or queued."""
        if task.missing is not None:
            self._fire(task, TaskEvent.REJECT, _object_missing(task, task.missing))
            return
        live: list[TaskRecord] = []
        for dependency_id in task.dependencies:
            dependency = self._tasks.get(dependency_id)
            if dependency is not None:
                live.append(dependency)
            elif result_object_id(dependency_id) not in self._objects:
                message = f"task {task.task_id:#x} depends on task {dependency_id:#x}, which is unknown"
                self._fire(task, TaskEvent.REJECT, Ending(TaskStatus.FAILED, message.encode()))
                return
        for dependency_id in task.dependencies:
            self._result_users[dependency_id] = self._result_users.get(dependency_id, 0) + 1
        for dependency in live:
            if dependency.dependents is None:
                dependency.dependents = []
            dependency.dependents.append(task.task_id)
        task.waiting_on = len(live)
        self._fire(task, TaskEvent.BLOCKED if live else TaskEvent.READY)

    def _send_to_worker(self, worker: WorkerRecord, tasks: list[TaskRecord]) -> None:
        needed: dict[bytes, None] = {}
        for task in tasks:
            for object_id in task.object_ids:
                needed[object_id] = None
        to_send, unknown = self._objects.missing_for_worker(worker.identity, needed)
        if unknown:
            missing = set(unknown)
            runnable = []
            for task in tasks:
                lacking = [o for o in task.object_ids if o in missing]
                if lacking:
                    self._fire(task, TaskEvent.REJECT, _object_missing(task, lacking[0]))
                else:
                    runnable.append(task)
            tasks = runnable
            if not tasks:
                return
        writer = FrameWriter()
        object_items = [[record.object_id, writer.add(record.payload)] for record in to_send]
        task_items: list[list[Any]] = []
        identity = worker.identity
        for task in tasks:
            self._fire(task, TaskEvent.ASSIGN, worker=identity)
            if task.has_frames:
                wire = list(task.wire)
                wire[WorkerTaskField.ARGS] = [
                    [kind, writer.add(value) if kind == ArgumentKind.INLINE else value]
                    for kind, value in wire[WorkerTaskField.ARGS]
                ]
                task_items.append(wire)
            else:
                task_items.append(task.wire)
        self.counters["assigned"] += len(tasks)
        self._send(identity, encode(MessageType.TASK_ASSIGN, [object_items, task_items], writer.frames))

    def _release_result(self, client_number: int, task_id: int) -> None:
        users = self._result_users.get(task_id)
        if users is None:
            return
        if users <= 1:
            del self._result_users[task_id]
            self._objects.delete(client_number, [result_object_id(task_id)])
        else:
            self._result_users[task_id] = users - 1

    # ------------------------------------------------------------------ invariants

    def check_invariants(self) -> list[str]:
        """Every breach of the task books, as sentences; empty when the books are consistent."""
        breaches: list[str] = []
        tasks = self._tasks
        by_state: collections.Counter[TaskState] = collections.Counter()
        dependents_of: collections.Counter[int] = collections.Counter()
        on_workers: dict[bytes, set[int]] = {}
        for task_id, task in tasks.items():
            state = task.state
            by_state[state] += 1
            if task.task_id != task_id:
                breaches.append(f"task {task_id:#x} is filed under another id")
            if state is TaskState.ENDED or state is TaskState.NEW:
                breaches.append(f"task {task_id:#x} is unfinished in state {state.name}")
            if task_id not in self._by_client.get(task.client, ()):
                breaches.append(f"task {task_id:#x} is missing from its client's tasks")
            if state in ON_WORKER:
                if task.worker is None or not self._workers.holds(task.worker, task_id):
                    breaches.append(f"task {task_id:#x} is {state.name} but no connected worker holds it")
                else:
                    on_workers.setdefault(task.worker, set()).add(task_id)
            elif task.worker is not None:
                breaches.append(f"task {task_id:#x} is {state.name} yet names a worker")
            if state is not TaskState.CANCELLING and self._clients.get(task.client) is None:
                breaches.append(f"task {task_id:#x} is {state.name} though its client is gone")
            for dependency_id in task.dependencies:
                dependents_of[dependency_id] += 1
            if state is TaskState.WAITING:
                pending = sum(1 for d in task.dependencies if d in tasks)
                if task.waiting_on != pending or pending == 0:
                    breaches.append(f"task {task_id:#x} waits on {task.waiting_on} tasks, {pending} are unfinished")
        owned = sum(len(ids) for ids in self._by_client.values())
        if owned != len(tasks):
            breaches.append(f"clients own {owned} tasks, {len(tasks)} are unfinished")
        queued_entries = {id(t) for t in self._queue.entries() if t.state is TaskState.QUEUED}
        if self._queue.live != by_state[TaskState.QUEUED] or len(queued_entries) != self._queue.live:
            breaches.append(
                f"the queue counts {self._queue.live} tasks, holds {len(queued_entries)}, "
                f"and {by_state[TaskState.QUEUED]} are QUEUED"
            )
        for worker in self._workers:
            held = set(self._workers.assigned_to(worker.identity))
            if held != on_workers.get(worker.identity, set()):
                said = len(on_workers.get(worker.identity, ()))
                breaches.append(f"worker {worker.name} holds {len(held)} tasks, the tasks name it {said} times")
        ended = sum(count for name, count in self.counters.items() if name.startswith("ended_"))
        if self.counters["submitted"] != ended + len(tasks):
            breaches.append(f"submitted {self.counters['submitted']} != ended {ended} + unfinished {len(tasks)}")
        if dict(dependents_of) != self._result_users:
            breaches.append("the users of kept results do not match the unfinished tasks that depend on them")
        # A cancelling task will not run again: its client may already have dropped the results it used.
        needed = {d for task in tasks.values() if task.state is not TaskState.CANCELLING for d in task.dependencies}
        for task_id in self._result_users:
            if task_id in needed and task_id not in tasks and result_object_id(task_id) not in self._objects:
                breaches.append(f"the kept result of task {task_id:#x} is needed but neither task nor object exists")
        return breaches


def as_task_id(value: Any, what: str) -> int:
    """Return ``value`` if it is a valid task id (a non-negative int of at most 63 bits)."""
    if type(value) is not int or not 0 <= value < _TASK_ID_LIMIT:
        raise MalformedMessage(f"{what} must be an integer from 0 to 2**63 - 1")
    return value


def parse_worker_result(item: Any, frames: list[Any]) -> tuple[int, Ending]:
    """Check one TASK_RESULTS item from a worker as strictly as a client's message: (task id, ending)."""
    as_list(item, "result", 4)
    task_id = as_task_id(item[ResultField.TASK_ID], "task id")
    status = as_int(item[ResultField.STATUS], "status")
    require(status in _STATUS_VALUES, "unknown task status")
    reference = item[ResultField.PAYLOAD]
    payload = None if reference is None else resolve(reference, frames)
    require(payload is not None or status != TaskStatus.SUCCESS, "a successful result needs a payload")
    profile = item[ResultField.PROFILE]
    if profile is not None:
        require(
            type(profile) is list and len(profile) == 3 and all(type(v) in (int, float) for v in profile),
            "a profile is three numbers",
        )
    return task_id, Ending(status, payload, profile)


def _object_missing(task: TaskRecord, object_id: bytes) -> Ending:
    what = "function" if object_id == task.wire[WorkerTaskField.FUNCTION_ID] else "object"
    message = f"task {task.task_id:#x} needs {what} {object_id.hex()}, which does not exist"
    return Ending(TaskStatus.OBJECT_MISSING, message.encode())
