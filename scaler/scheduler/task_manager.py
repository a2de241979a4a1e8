"""Owns every unfinished task: queues it, assigns it to workers, and ends it exactly once.

A task's record is deleted the moment it ends, so the scheduler's memory follows the number of
unfinished tasks, not the number ever run.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

from scaler.protocol.checks import as_bytes, as_int, as_list, require
from scaler.protocol.codec import FrameWriter, MalformedMessage, Payload, encode, resolve
from scaler.protocol.ids import client_number_of_task, result_object_id
from scaler.protocol.messages import ArgumentKind, MessageType, TaskFlag, TaskStatus, WorkerTaskField
from scaler.scheduler.client_manager import ClientManager, ClientRecord
from scaler.scheduler.object_manager import ObjectManager
from scaler.scheduler.outbox import Outbox, SendFunction
from scaler.scheduler.task_states import TaskState, check_transition
from scaler.scheduler.worker_manager import WorkerManager, WorkerRecord

logger = logging.getLogger(__name__)

_STATUS_VALUES = frozenset(int(s) for s in TaskStatus)
_ENDED_COUNTERS = {int(s): f"ended_{s.name.lower()}" for s in TaskStatus}
_RESULT_TO_CLIENT = int(TaskFlag.RESULT_TO_CLIENT)
_INLINE = int(ArgumentKind.INLINE)
_OBJECT = int(ArgumentKind.OBJECT)
_TASK = int(ArgumentKind.TASK)


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
    state: TaskState = TaskState.QUEUED
    worker: bytes | None = None
    failures: int = 0
    waiting_on: int = 0
    dependents: list[int] | None = None

    def mark_suspect(self) -> None:
        """Tell the next worker to run this task alone: it was running when a worker died."""
        self.wire = list(self.wire)
        self.wire[WorkerTaskField.FLAGS] |= TaskFlag.SUSPECT


class TaskQueue:
    """Ready tasks by priority (larger first), first in first out within a priority."""

    def __init__(self) -> None:
        self._buckets: dict[int, collections.deque[TaskRecord]] = {}
        self._priorities: list[int] = []  # sorted, largest first
        self.live = 0  # tasks in the queue that are still QUEUED

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

    def discard(self) -> None:
        """A queued task ended without leaving the queue; it is skipped when reached."""
        self.live -= 1

    def pop_many(self, count: int, is_live: Any) -> list[TaskRecord]:
        """Up to ``count`` live tasks, highest priority first."""
        taken: list[TaskRecord] = []
        for priority in list(self._priorities):
            bucket = self._buckets[priority]
            while bucket and len(taken) < count:
                task = bucket.popleft()
                if is_live(task):
                    taken.append(task)
            if not bucket:
                del self._buckets[priority]
                self._priorities.remove(priority)
            if len(taken) >= count:
                break
        self.live -= len(taken)
        return taken


class TaskManager:
    """Task life cycle: submit, wait for dependencies, queue, assign, finish, cancel, re-queue."""

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
        on_workers = sum(len(worker.assigned) for worker in self._workers)
        queued = self._queue.live
        in_state = {"queued": queued, "assigned": on_workers, "waiting": len(self._tasks) - queued - on_workers}
        return {"unfinished": len(self._tasks), "queued": queued, "in_state": in_state, **self.counters}

    # ------------------------------------------------------------------ from clients

    def on_submit(self, client: ClientRecord, fields: list[Any], frames: list[Any]) -> None:
        """Parse a TASK_SUBMIT batch fully, then register its tasks."""
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
            self._link_dependencies(record)

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
        if task.state in (TaskState.WAITING, TaskState.QUEUED):
            self._finish(task, TaskStatus.CANCELLED, None, None)
        elif task.state in (TaskState.ASSIGNED, TaskState.WITHDRAWING):
            self._move(task, TaskState.CANCELLING)
            assert task.worker is not None
            self._outbox.add_id(task.worker, MessageType.TASK_CANCEL, task.task_id)

    # ------------------------------------------------------------------ from workers

    def on_worker_results(self, worker: WorkerRecord, fields: list[Any], frames: list[Any]) -> None:
        """Results from a worker: each ends its task, if the task is still assigned to that worker."""
        parsed = []
        for item in fields:
            as_list(item, "result", 4)
            task_id = as_int(item[0], "task id")
            status = as_int(item[1], "status")
            require(status in _STATUS_VALUES, "unknown task status")
            payload = None if item[2] is None else resolve(item[2], frames)
            profile = item[3]
            require(profile is None or (type(profile) is list and len(profile) == 3), "bad profile")
            parsed.append((task_id, status, payload, profile))
        for task_id, status, payload, profile in parsed:
            task = self._tasks.get(task_id)
            if task is None or task.worker != worker.identity:
                self.counters["stale_results"] += 1
                continue
            worker.assigned.pop(task_id, None)
            self._finish(task, status, payload, profile)

    def on_tasks_returned(self, worker: WorkerRecord, fields: list[Any]) -> None:
        """The answer to one TASK_WITHDRAW: returned tasks go to the front of the queue, kept ones stay assigned.

        Only the tasks named here are settled: another withdrawal from the same worker may still be in flight.
        """
        as_list(fields, "TASKS_RETURNED", 2)
        returned = [as_int(t, "task id") for t in as_list(fields[0], "returned tasks")]
        kept = [as_int(t, "task id") for t in as_list(fields[1], "kept tasks")]
        for task_id in reversed(returned):  # pushed to the front: the oldest ends first
            task = self._withdrawing_from(worker, task_id)
            if task is not None:
                del worker.assigned[task_id]
                task.worker = None
                self._requeue_first(task, "balanced")
        for task_id in kept:
            task = self._withdrawing_from(worker, task_id)
            if task is not None:
                self._move(task, TaskState.ASSIGNED)

    def _withdrawing_from(self, worker: WorkerRecord, task_id: int) -> TaskRecord | None:
        task = self._tasks.get(task_id)
        if task is None or task.worker != worker.identity or task.state is not TaskState.WITHDRAWING:
            return None
        return task

    def on_tasks_started(self, worker: WorkerRecord, fields: list[Any]) -> None:
        """The worker handed these tasks to a processor: if it dies now, they are the suspects."""
        assigned = worker.assigned
        for task_id in fields:
            if type(task_id) is int and task_id in assigned:
                assigned[task_id] = True

    def on_worker_gone(self, worker: WorkerRecord) -> None:
        """Re-queue the tasks of a dead worker; the ones it had started count a failure, and fail past the limit.

        A worker that died before any TASKS_STARTED arrived blames nobody: it may never have run a task (a new
        worker killed at once), and a task that kills every worker it runs on is caught on its next deaths,
        since it then runs alone and its start is told before it runs.
        """
        self._objects.forget_worker(worker.identity)
        for task_id, started in reversed(list(worker.assigned.items())):  # pushed to the front: oldest ends first
            task = self._tasks.get(task_id)
            if task is None:
                continue
            task.worker = None
            if task.state is TaskState.CANCELLING:
                self._finish(task, TaskStatus.CANCELLED, None, None)
                continue
            if not started:
                self._requeue_first(task, "requeued")
                continue
            task.failures += 1
            task.mark_suspect()
            if task.failures > self._allowed_failures:
                message = (
                    f"task {task_id:#x} lost its worker {task.failures} times "
                    f"(allowed failures: {self._allowed_failures}); last worker: {worker.name}"
                )
                self._finish(task, TaskStatus.WORKER_DIED, message.encode(), None)
            else:
                self._requeue_first(task, "requeued")
        worker.assigned.clear()

    # ------------------------------------------------------------------ scheduling

    def assign_ready_tasks(self) -> None:
        """Hand queued tasks to workers with free slots, one TASK_ASSIGN message per worker."""
        if self._queue.live <= 0:
            return
        for worker, count in self._workers.plan_assignments(self._queue.live):
            tasks = self._queue.pop_many(count, self._is_queued)
            if tasks:
                self._send_to_worker(worker, tasks)

    def balance(self, trigger_times: int) -> None:
        """When workers idle and nothing waits in the scheduler, take queued tasks back from busy ones."""
        if self._queue.live > 0:
            return
        for identity, surplus in self._workers.plan_balance(trigger_times).items():
            worker = self._workers.get(identity)
            if worker is None:
                continue
            newest_first = [self._tasks[t] for t in reversed(worker.assigned)]
            chosen = [t for t in newest_first if t.state is TaskState.ASSIGNED][:surplus]
            for task in chosen:
                self._move(task, TaskState.WITHDRAWING)
                self._outbox.add_id(identity, MessageType.TASK_WITHDRAW, task.task_id)

    # ------------------------------------------------------------------ internals

    def _parse_task(self, client: ClientRecord, item: Any, frames: list[Any]) -> TaskRecord:
        as_list(item, "task", 6)
        task_id = as_int(item[0], "task id")
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
            elif kind == _TASK:
                dependency = as_int(arg[1], "dependency id")
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
        )

    def _link_dependencies(self, task: TaskRecord) -> None:
        waiting = 0
        for dependency_id in task.dependencies:
            dependency = self._tasks.get(dependency_id)
            if dependency is not None:
                if dependency.dependents is None:
                    dependency.dependents = []
                dependency.dependents.append(task.task_id)
                self._result_users[dependency_id] = self._result_users.get(dependency_id, 0) + 1
                waiting += 1
            elif result_object_id(dependency_id) in self._objects:
                self._result_users[dependency_id] = self._result_users.get(dependency_id, 0) + 1
            else:
                message = f"task {task.task_id:#x} depends on task {dependency_id:#x}, which is unknown"
                self._finish(task, TaskStatus.FAILED, message.encode(), None)
                return
        task.waiting_on = waiting
        if waiting:
            task.state = TaskState.WAITING
        else:
            self._queue.push(task)

    def _is_queued(self, task: TaskRecord) -> bool:
        return task.state is TaskState.QUEUED and self._tasks.get(task.task_id) is task

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
                    message = f"task {task.task_id:#x} needs object {lacking[0].hex()}, which does not exist"
                    self._finish(task, TaskStatus.FAILED, message.encode(), None)
                else:
                    runnable.append(task)
            tasks = runnable
            if not tasks:
                return
        writer = FrameWriter()
        object_items = [[record.object_id, writer.add(record.payload)] for record in to_send]
        task_items: list[list[Any]] = []
        assigned = worker.assigned
        for task in tasks:
            task.state = TaskState.ASSIGNED
            task.worker = worker.identity
            assigned[task.task_id] = False
            if task.has_frames:
                wire = list(task.wire)
                wire[4] = [
                    [kind, writer.add(value) if kind == ArgumentKind.INLINE else value] for kind, value in wire[4]
                ]
                task_items.append(wire)
            else:
                task_items.append(task.wire)
        self.counters["assigned"] += len(tasks)
        self._send(worker.identity, encode(MessageType.TASK_ASSIGN, [object_items, task_items], writer.frames))

    def _requeue_first(self, task: TaskRecord, counter: str) -> None:
        """Put a task that left its worker back at the front of its priority, counted under ``counter``."""
        self._move(task, TaskState.QUEUED)
        self._queue.push(task, front=True)
        self.counters[counter] += 1

    def _move(self, task: TaskRecord, target: TaskState) -> None:
        check_transition(task.state, target)
        task.state = target

    def _finish(self, task: TaskRecord, status: int, payload: Payload | None, profile: Any) -> None:
        """End a task: deliver or keep its result, release its dependencies, settle its dependents."""
        if self._tasks.pop(task.task_id, None) is None:
            return
        if task.state is TaskState.QUEUED:
            self._queue.discard()
        if task.worker is not None:
            worker = self._workers.get(task.worker)
            if worker is not None:
                worker.assigned.pop(task.task_id, None)
        owned = self._by_client.get(task.client)
        if owned is not None:
            owned.pop(task.task_id, None)
            if not owned:
                del self._by_client[task.client]
        self.counters[_ENDED_COUNTERS[status]] += 1

        client = self._clients.get(task.client)
        if client is not None and task.flags & _RESULT_TO_CLIENT:
            self._outbox.add_result(client.identity, task.task_id, status, payload, profile)
        for dependency_id in task.dependencies:
            self._release_result(task.client, dependency_id)
        if task.dependents:
            if status == TaskStatus.SUCCESS:
                if client is not None and task.task_id in self._result_users:
                    self._objects.put(task.client, result_object_id(task.task_id), payload)  # type: ignore[arg-type]
                for dependent_id in task.dependents:
                    dependent = self._tasks.get(dependent_id)
                    if dependent is not None and dependent.state is TaskState.WAITING:
                        dependent.waiting_on -= 1
                        if dependent.waiting_on == 0:
                            self._move(dependent, TaskState.QUEUED)
                            self._queue.push(dependent)
            else:
                # A dependent cannot run without this result: it ends the same way.
                for dependent_id in task.dependents:
                    dependent = self._tasks.get(dependent_id)
                    if dependent is not None:
                        if dependent.state is TaskState.WAITING:
                            self._finish(dependent, status, payload, None)
                        else:
                            self.cancel(dependent)

    def _release_result(self, client_number: int, task_id: int) -> None:
        users = self._result_users.get(task_id)
        if users is None:
            return
        if users <= 1:
            del self._result_users[task_id]
            self._objects.delete(client_number, [result_object_id(task_id)])
        else:
            self._result_users[task_id] = users - 1

    def forget_results_of(self, task_ids: Iterable[int]) -> None:
        """Drop the bookkeeping of kept results (their objects were deleted with their client)."""
        for task_id in task_ids:
            self._result_users.pop(task_id, None)
