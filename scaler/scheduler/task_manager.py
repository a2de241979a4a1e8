"""Owns every unfinished task: queues it, assigns it to workers, and ends it exactly once.

A task's record is deleted the moment it ends, so the scheduler's memory follows the number of
unfinished tasks, not the number ever run.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from typing import Any

from scaler.protocol.checks import as_bytes, as_int, as_list, as_str, require
from scaler.protocol.codec import FrameWriter, MalformedMessage, Payload, encode, payload_bytes, resolve
from scaler.protocol.ids import client_number_of_task, result_object_id
from scaler.protocol.messages import (
    ArgumentKind,
    MessageType,
    OutputField,
    OutputStream,
    ResultField,
    TaskFlag,
    TaskStatus,
    WorkerTaskField,
)
from scaler.scheduler.client_manager import ClientManager, ClientRecord
from scaler.scheduler.dispatch_policy import TURN_SECONDS, steal_count
from scaler.scheduler.object_manager import ObjectManager
from scaler.scheduler.outbox import Outbox, SendFunction
from scaler.scheduler.task_activity import TaskActivity
from scaler.scheduler.task_states import ON_WORKER, TRANSITIONS, TaskEvent, TaskState, next_state
from scaler.scheduler.worker_manager import WorkerManager, WorkerRecord
from scaler.utility.durations import DurationEstimates
from scaler.utility.log_limit import LimitedLog

logger = logging.getLogger(__name__)

# What a worker may report; the others are the scheduler's own answers to clients.
_STATUS_VALUES = frozenset(int(s) for s in TaskStatus) - {int(TaskStatus.SUCCESS_HELD), int(TaskStatus.DEPENDENCY_GONE)}
_ENDED_COUNTERS = {int(s): f"ended_{s.name.lower()}" for s in TaskStatus}
_OUTPUT_STREAMS = frozenset(int(stream) for stream in OutputStream)
_SUCCESS = int(TaskStatus.SUCCESS)
_CANCELLED_STATUS = int(TaskStatus.CANCELLED)
_SUCCESS_HELD = int(TaskStatus.SUCCESS_HELD)
_FAILED_COUNTERS = [
    name for status, name in _ENDED_COUNTERS.items() if status not in (_SUCCESS, _CANCELLED_STATUS, _SUCCESS_HELD)
]
# Positions in a client's tally.
_SUBMITTED, _SUCCEEDED, _FAILED = range(3)
_RESULT_TO_CLIENT = int(TaskFlag.RESULT_TO_CLIENT)
_INLINE = int(ArgumentKind.INLINE)
_OBJECT = int(ArgumentKind.OBJECT)
_TASK = int(ArgumentKind.TASK)
_TASK_ID_LIMIT = 1 << 63
_FUNCTION_ID = int(WorkerTaskField.FUNCTION_ID)
_RESULT_FIELDS = int(ResultField.RUN_SECONDS)  # the fields every result has; run seconds may follow
_RESULT_LENGTHS = (_RESULT_FIELDS, _RESULT_FIELDS + 1)
_RESULT_TASK_ID = int(ResultField.TASK_ID)
_RESULT_STATUS = int(ResultField.STATUS)
_RESULT_PAYLOAD = int(ResultField.PAYLOAD)
_RESULT_PROFILE = int(ResultField.PROFILE)
_RESULT_RUN_SECONDS = int(ResultField.RUN_SECONDS)

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


class _Level:
    """The ready tasks of one priority: each client's in arrival order, and the clients' turns."""

    __slots__ = ("turns", "by_client", "taken_in_turn")

    def __init__(self) -> None:
        self.turns: collections.deque[int] = collections.deque()  # client numbers; the first one goes next
        self.by_client: dict[int, collections.deque[TaskRecord]] = {}
        self.taken_in_turn = 0  # tasks the first client has taken in its current turn

    def next_turn(self) -> None:
        self.turns.rotate(-1)
        self.taken_in_turn = 0


class TaskQueue:
    """Ready tasks by priority (larger first); within a priority the clients take turns, each turn worth
    about ``TURN_SECONDS`` of estimated work (one task of 10 ms, a thousand no-ops), so a small job is never
    stuck behind a large one and tiny tasks still go in large batches; each client's tasks go first in,
    first out.

    A task that leaves the QUEUED state without being popped (it ended) stays in its place and is
    skipped when reached; ``live`` counts the tasks in the QUEUED state.
    """

    def __init__(self) -> None:
        self._levels: dict[int, _Level] = {}
        self._priorities: list[int] = []  # sorted, largest first
        self.live = 0

    def push(self, task: TaskRecord, front: bool = False) -> None:
        """Queue a task behind its client's others, or ahead of everything of its priority with ``front``."""
        level = self._levels.get(task.priority)
        if level is None:
            level = self._levels[task.priority] = _Level()
            self._priorities.append(task.priority)
            self._priorities.sort(reverse=True)
        tasks = level.by_client.get(task.client)
        if tasks is None:
            tasks = level.by_client[task.client] = collections.deque()
            if front:
                level.turns.appendleft(task.client)
            else:
                level.turns.append(task.client)
        elif front and level.turns[0] != task.client:
            level.turns.remove(task.client)
            level.turns.appendleft(task.client)
            level.taken_in_turn = 0
        if front:
            tasks.appendleft(task)
        else:
            tasks.append(task)
        self.live += 1

    def peek(self) -> TaskRecord | None:
        """The task that would be popped next, or None."""
        while self._priorities:
            level = self._levels[self._priorities[0]]
            while level.turns:
                client = level.turns[0]
                tasks = level.by_client[client]
                while tasks and tasks[0].state is not TaskState.QUEUED:
                    tasks.popleft()
                if tasks:
                    return tasks[0]
                del level.by_client[client]
                level.turns.popleft()
                level.taken_in_turn = 0
            del self._levels[self._priorities[0]]
            self._priorities.pop(0)
        return None

    def pop_many(self, count: int, function_id: bytes, estimate: float) -> list[TaskRecord]:
        """Up to ``count`` tasks still QUEUED, in turn, stopping at the first of another function.

        ``estimate`` is the run time of the function's tasks: it sets how many make one client's turn.
        Each task must then leave the QUEUED state: ``live`` is lowered when a task leaves it, not here.
        """
        per_turn = max(1, int(TURN_SECONDS / max(estimate, 1e-6)))
        taken: list[TaskRecord] = []
        queued = TaskState.QUEUED
        while len(taken) < count:
            head = self.peek()
            if head is None or head.wire[_FUNCTION_ID] != function_id:
                break
            level = self._levels[head.priority]
            tasks = level.by_client[head.client]
            sharing = len(level.turns) > 1
            quota = count - len(taken)
            if sharing:
                quota = min(quota, per_turn - level.taken_in_turn)
            got = 0
            while tasks and got < quota:  # a run of this client's tasks, stale entries dropped on the way
                task = tasks[0]
                if task.state is queued:
                    if task.wire[_FUNCTION_ID] != function_id:
                        break
                    taken.append(task)
                    got += 1
                tasks.popleft()
            if sharing:
                level.taken_in_turn += got
                if level.taken_in_turn >= per_turn:
                    level.next_turn()
        return taken

    def entries(self) -> list[TaskRecord]:
        """Every entry, stale ones included (for the invariant checks)."""
        return [task for level in self._levels.values() for tasks in level.by_client.values() for task in tasks]


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
        self._hold_asked: set[int] = set()  # unfinished tasks whose result the client asked to hold
        self._held: set[int] = set()  # ended tasks whose result is kept for their client (RESULT_HOLD)
        self.durations = DurationEstimates()
        self.activity = TaskActivity(objects.function_name)
        self.counters: collections.Counter[str] = collections.Counter()
        self._client_tallies: dict[int, list[int]] = {}  # client number -> [submitted, succeeded, failed]
        self._failure_log = LimitedLog(logger, "task failures")
        self._balancing_log = LimitedLog(logger, "balancing moves")

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, task_id: int) -> bool:
        return task_id in self._tasks

    def tasks_of_client(self, client_number: int) -> int:
        """Number of unfinished tasks of a client."""
        return len(self._by_client.get(client_number, ()))

    def describe(self) -> dict[str, Any]:
        """Task counts by state and since the start (docs/monitoring.md, ``tasks``)."""
        # Counted from the queue and the workers, not task by task: the loop must not stall on a million tasks.
        not_started, started, suspended = self._workers.task_counts()
        queued = self._queue.live
        unfinished = len(self._tasks)
        counters = self.counters
        return {
            "waiting": unfinished - queued - not_started - started,
            "queued": queued,
            "assigned": not_started,
            "running": started,
            "suspended": suspended,
            "unfinished": unfinished,
            "submitted": counters["submitted"],
            "succeeded": counters["ended_success"],
            "failed": sum(counters[name] for name in _FAILED_COUNTERS),
            "cancelled": counters["ended_cancelled"],
            "counters": dict(counters),
        }

    def on_a_worker(self, task_id: int) -> bool:
        """Whether ``task_id`` is held by a worker now (assigned, running, or being withdrawn or cancelled)."""
        task = self._tasks.get(task_id)
        return task is not None and task.worker is not None

    def describe_client(self, client_number: int) -> dict[str, int]:
        """A client's tasks: unfinished now, and submitted, succeeded and failed since it connected."""
        tally = self._client_tallies.get(client_number, [0, 0, 0])
        return {
            "tasks": len(self._by_client.get(client_number, ())),
            "submitted": tally[_SUBMITTED],
            "succeeded": tally[_SUCCEEDED],
            "failed": tally[_FAILED],
        }

    def forget_client(self, client_number: int) -> None:
        """The client is gone: drop its tally and its held results (its tasks were cancelled, its objects go)."""
        self._client_tallies.pop(client_number, None)
        self.drop_held_results(client_number)

    def drop_held_results(self, client_number: int) -> None:
        """Forget the results held for a client whose objects are being deleted (it cleared or left)."""
        self._held = {task_id for task_id in self._held if client_number_of_task(task_id) != client_number}

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
        tally = self._client_tallies.get(client.number)
        if tally is None:
            tally = self._client_tallies[client.number] = [0, 0, 0]
        tally[_SUBMITTED] += len(accepted)
        for record in accepted:
            self._place(record)

    def on_result_hold(self, client: ClientRecord, fields: list[Any]) -> None:
        """Keep the results of these unfinished tasks in the scheduler instead of sending them; ended ones are
        past holding (their results are on their way to the client)."""
        for task_id in as_list(fields, "RESULT_HOLD"):
            task = self._tasks.get(as_int(task_id, "task id"))
            if task is not None and task.client == client.number:
                self._hold_asked.add(task.task_id)

    def on_result_fetch(self, client: ClientRecord, fields: list[Any]) -> None:
        """Send these held results to their client (they stay held until released)."""
        for task_id in as_list(fields, "RESULT_FETCH"):
            task_id = as_int(task_id, "task id")
            if task_id in self._held and client_number_of_task(task_id) == client.number:
                payload = self._objects.payload_of(result_object_id(task_id))
                self._outbox.add_result(client.identity, task_id, _SUCCESS, payload, None)
            else:
                message = f"the result of task {task_id:#x} is not held in the scheduler".encode()
                self._outbox.add_result(client.identity, task_id, TaskStatus.FAILED, message, None)

    def on_result_release(self, client: ClientRecord, fields: list[Any]) -> None:
        """The client no longer needs these held results: each goes once no unfinished task needs it either."""
        for task_id in as_list(fields, "RESULT_RELEASE"):
            task_id = as_int(task_id, "task id")
            if task_id in self._held and client_number_of_task(task_id) == client.number:
                self._held.discard(task_id)
                if task_id not in self._result_users:
                    self._objects.delete(client.number, [result_object_id(task_id)])

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
        observe = self.durations.observe
        record = self.activity.record
        now = time.time()
        worker_name = worker.name
        succeeded = failed = 0
        for task_id, ending, run_seconds in parsed:
            task = self._tasks.get(task_id)
            if task is None or task.worker != worker.identity:
                self.counters["stale_results"] += 1
                continue
            status = ending.status
            if status == _SUCCESS:
                succeeded += 1
            elif status != _CANCELLED_STATUS:
                failed += 1
            if run_seconds is not None:
                function_id = task.wire[_FUNCTION_ID]
                observe(function_id, run_seconds)
                record(now, worker_name, function_id, run_seconds, status == _SUCCESS)
            self._fire(task, TaskEvent.RESULT, ending)
        self._workers.count_results(worker, succeeded, failed)

    def on_task_output(self, worker: WorkerRecord, fields: list[Any]) -> None:
        """Lines tasks printed: each goes on to the client of its task, with the worker's name (user text, as is)."""
        by_client: dict[bytes, list[list[Any]]] = {}
        for item in as_list(fields, "TASK_OUTPUT"):
            as_list(item, "task output", OutputField.TEXT + 1)
            task_id = as_int(item[OutputField.TASK_ID], "task id")
            stream = as_int(item[OutputField.STREAM], "output stream")
            require(stream in _OUTPUT_STREAMS, "unknown output stream")
            text = as_str(item[OutputField.TEXT], "output text")
            task = self._tasks.get(task_id)
            if task is None or task.worker != worker.identity:
                continue
            client = self._clients.get(task.client)
            if client is not None:
                by_client.setdefault(client.identity, []).append([task_id, stream, text])
        for identity, items in by_client.items():
            self._send(identity, encode(MessageType.OUTPUT_FROM_WORKER, [worker.name, items]))

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

    def dispatch(self) -> None:
        """Hand queued tasks to workers with room; then let workers left idle take waiting work from loaded ones."""
        if self._queue.live > 0:
            self._assign_ready_tasks()
        idle = self._workers.take_idle()
        if idle and self._queue.live <= 0:
            for worker in idle:
                self._steal_for(worker)

    def _assign_ready_tasks(self) -> None:
        """Hand queued tasks out in runs of one function, each run planned with that function's estimate."""
        queue = self._queue
        while queue.live > 0:
            head = queue.peek()
            if head is None:
                break
            function_id = head.wire[_FUNCTION_ID]
            estimate = self.durations.of(function_id)
            plan = self._workers.plan_assignments(estimate, queue.live)
            if not plan:
                break
            tasks = queue.pop_many(sum(count for _, count in plan), function_id, estimate)
            for worker, share in deal(plan, tasks):
                self._send_to_worker(worker, share, estimate)

    def balance(self, trigger_times: int) -> None:
        """The periodic pass: workers idle for ``trigger_times`` passes take waiting work from loaded ones.

        It backs up the steal made when a worker goes idle (a withdrawal may have found its tasks started).
        """
        idle = self._workers.idle_for(trigger_times)
        if self._queue.live > 0:
            return
        for worker in idle:
            self._steal_for(worker)

    def _steal_for(self, thief: WorkerRecord) -> None:
        """Ask the most loaded worker back for its newest waiting tasks, enough to level it with ``thief``.

        Returned tasks go to the front of the queue, and the worker holding the least work (``thief``) gets
        them first. A task already started stays where it is: the withdrawal cannot run it twice.
        """
        victim = self._workers.victim_for(thief)
        if victim is None:
            return
        tasks = self._tasks
        victim_seconds = victim.held_seconds
        waiting: list[tuple[TaskRecord, float]] = []
        for task_id, estimate in self._workers.waiting_newest_first(victim):
            task = tasks[task_id]
            if task.state is TaskState.ASSIGNED:
                waiting.append((task, estimate))
            else:  # already asked back (or cancelled): as good as gone from the victim
                victim_seconds -= estimate
        count = steal_count(victim_seconds, thief.held_seconds, [estimate for _, estimate in waiting])
        for task, _ in waiting[:count]:
            self._fire(task, TaskEvent.WITHDRAW)
        if count:
            self.counters["steals"] += 1
            self._balancing_log.log(
                logging.INFO,
                "balancing: asked worker %s back for %d waiting tasks, for %s",
                victim.name,
                count,
                thief.name,
            )

    def flush_logs(self) -> None:
        """Tell how many failure and balancing lines were held back in the last second."""
        self._failure_log.flush()
        self._balancing_log.flush()

    # ------------------------------------------------------------------ the life cycle

    def _fire(
        self,
        task: TaskRecord,
        event: TaskEvent,
        ending: Ending | None = None,
        worker: bytes | None = None,
        estimate: float = 0.0,
    ) -> None:
        """Move ``task`` as the table says for ``event``, with the bookkeeping of leaving and entering each place.

        ``ending`` says how it ends if the move ends it; ``worker`` names the worker that takes it on ASSIGN,
        and ``estimate`` its estimated run time there.
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
            self._workers.assign(worker, task.task_id, estimate)
        elif enter == _QUEUE_BACK:
            self._queue.push(task)
        elif enter == _QUEUE_FRONT:  # a task that left a worker goes first: it is the oldest
            self._queue.push(task, front=True)
            self.counters["balanced" if event is TaskEvent.RETURNED else "requeued"] += 1
        elif enter == _SEND_WITHDRAW:
            self._outbox.add_id(task.worker, MessageType.TASK_WITHDRAW, task.task_id)  # type: ignore[arg-type]
            self._workers.await_answer(task.worker, task.task_id)  # type: ignore[arg-type]
        elif enter == _SEND_CANCEL:
            self._outbox.add_id(task.worker, MessageType.TASK_CANCEL, task.task_id)  # type: ignore[arg-type]
            self._workers.await_answer(task.worker, task.task_id)  # type: ignore[arg-type]
        if source is TaskState.WITHDRAWING and target is TaskState.ASSIGNED:  # kept: the worker answered
            self._workers.answered(task.worker, task.task_id)  # type: ignore[arg-type]

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
        if status != _CANCELLED_STATUS:
            tally = self._client_tallies.get(task.client)
            if tally is not None:
                tally[_SUCCEEDED if status == _SUCCESS else _FAILED] += 1
            if status != _SUCCESS:
                self._log_failure(task, status, ending.payload)

        client = self._clients.get(task.client)
        hold = bool(self._hold_asked) and task.task_id in self._hold_asked
        if hold:
            self._hold_asked.discard(task.task_id)
            hold = client is not None and status == _SUCCESS
        if client is not None and task.flags & _RESULT_TO_CLIENT:
            if hold:
                self._outbox.add_result(client.identity, task.task_id, _SUCCESS_HELD, None, ending.profile)
            else:
                self._outbox.add_result(client.identity, task.task_id, status, ending.payload, ending.profile)
        if registered:
            for dependency_id in task.dependencies:
                self._release_result(task.client, dependency_id)
        if hold:
            assert ending.payload is not None
            self._objects.put(task.client, result_object_id(task.task_id), ending.payload)
            self._held.add(task.task_id)
        if not task.dependents:
            return
        if status == TaskStatus.SUCCESS:
            if client is not None and task.task_id in self._result_users and not hold:
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

    def _log_failure(self, task: TaskRecord, status: int, payload: Payload | None) -> None:
        function = self.activity.name_of(task.wire[_FUNCTION_ID])
        how = TaskStatus(status).name.lower()
        if status != TaskStatus.RAISED and payload is not None:  # the others carry a sentence, not user data
            how = f"{how}: {payload_bytes(payload)[:200].decode('utf-8', 'replace')}"
        self._failure_log.log(
            logging.INFO, "task %#x of client %d (%s) failed: %s", task.task_id, task.client, function, how
        )

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
                message = f"task {task.task_id:#x} depends on task {dependency_id:#x}, which has ended or is unknown"
                self._fire(task, TaskEvent.REJECT, Ending(TaskStatus.DEPENDENCY_GONE, message.encode()))
                return
        for dependency_id in task.dependencies:
            self._result_users[dependency_id] = self._result_users.get(dependency_id, 0) + 1
        for dependency in live:
            if dependency.dependents is None:
                dependency.dependents = []
            dependency.dependents.append(task.task_id)
        task.waiting_on = len(live)
        self._fire(task, TaskEvent.BLOCKED if live else TaskEvent.READY)

    def _send_to_worker(self, worker: WorkerRecord, tasks: list[TaskRecord], estimate: float) -> None:
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
            self._fire(task, TaskEvent.ASSIGN, worker=identity, estimate=estimate)
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
            if task_id not in self._held:
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
        if not self._hold_asked <= tasks.keys():
            breaches.append("results are to be held for tasks that have ended")
        for task_id in self._held:
            if task_id in tasks or result_object_id(task_id) not in self._objects:
                breaches.append(f"the held result of task {task_id:#x} is not stored, or the task has not ended")
        return breaches


def deal(plan: list[tuple[WorkerRecord, int]], tasks: list[TaskRecord]) -> list[tuple[WorkerRecord, list[TaskRecord]]]:
    """Deal ``tasks`` to the planned workers one at a time in turn (each up to its grant), as cards are dealt.

    Dealt in turn, the first tasks of a map start on different workers instead of queueing on the first one.
    """
    if len(plan) == 1:
        return [(plan[0][0], tasks)] if tasks else []
    shares: list[list[TaskRecord]] = [[] for _ in plan]
    left = [count for _, count in plan]
    turn = 0
    for task in tasks:
        while left[turn] == 0:
            turn = (turn + 1) % len(plan)
        shares[turn].append(task)
        left[turn] -= 1
        turn = (turn + 1) % len(plan)
    return [(plan[i][0], share) for i, share in enumerate(shares) if share]


def as_task_id(value: Any, what: str) -> int:
    """Return ``value`` if it is a valid task id (a non-negative int of at most 63 bits)."""
    if type(value) is not int or not 0 <= value < _TASK_ID_LIMIT:
        raise MalformedMessage(f"{what} must be an integer from 0 to 2**63 - 1")
    return value


def parse_worker_result(item: Any, frames: list[Any]) -> tuple[int, Ending, float | None]:
    """Check one TASK_RESULTS item from a worker as strictly as a client's message.

    Returns the task id, how it ends, and the seconds it ran if the worker measured them.
    """
    # Runs once per task: fields are read through positions bound once, and the checks are inlined.
    if type(item) is not list or len(item) not in _RESULT_LENGTHS:
        raise MalformedMessage(f"result must be a list of {_RESULT_FIELDS} or {_RESULT_FIELDS + 1} fields")
    task_id = as_task_id(item[_RESULT_TASK_ID], "task id")
    status = item[_RESULT_STATUS]
    if type(status) is not int or status not in _STATUS_VALUES:
        raise MalformedMessage("unknown task status")
    reference = item[_RESULT_PAYLOAD]
    payload = None if reference is None else resolve(reference, frames)
    require(payload is not None or status != TaskStatus.SUCCESS, "a successful result needs a payload")
    profile = item[_RESULT_PROFILE]
    if profile is not None:
        require(
            type(profile) is list and len(profile) == 3 and all(type(v) in (int, float) for v in profile),
            "a profile is three numbers",
        )
    run_seconds = None
    if len(item) > _RESULT_FIELDS:
        run_seconds = item[_RESULT_RUN_SECONDS]
        if type(run_seconds) not in (float, int) or run_seconds < 0:
            raise MalformedMessage("run seconds must be a number, not negative")
    return task_id, Ending(status, payload, profile), run_seconds


def _object_missing(task: TaskRecord, object_id: bytes) -> Ending:
    what = "function" if object_id == task.wire[WorkerTaskField.FUNCTION_ID] else "object"
    message = f"task {task.task_id:#x} needs {what} {object_id.hex()}, which does not exist"
    return Ending(TaskStatus.OBJECT_MISSING, message.encode())
