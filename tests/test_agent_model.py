"""Random interleavings of everything a worker agent hears, against its state machine.

A hypothesis state machine plays the scheduler (assign with objects, suspects and priorities, cancel,
withdraw, object delete, reconnect, accept) and the processors (ready, read their inbox, run, finish,
flush results, wait on nested tasks, crash, exit) and advances time. Processors read the agent's messages
late and in order, as real ones do between tasks. After every step the machine's invariants hold and the
tasks it holds are exactly those assigned and not yet answered; once every processor has answered,
every assigned task was answered exactly once (a result or "returned") unless a reconnect dropped it, and
every cancel got an answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from scaler.protocol.messages import ArgumentKind, ResultField, TaskFlag, TaskStatus, WorkerTaskField
from scaler.worker.agent_events import (
    AgentStarted,
    CancelRequested,
    Event,
    ObjectsDeleted,
    ProcessorExited,
    ProcessorReady,
    ProcessorResults,
    ProcessorResumed,
    ProcessorSuspended,
    ReconnectRequested,
    Running,
    SchedulerAccepted,
    TasksAssigned,
    Tick,
    WithdrawRequested,
)
from scaler.worker.agent_instructions import (
    CancelOnProcessor,
    DeleteOnProcessor,
    DropOnProcessor,
    Instruction,
    KillProcessor,
    LogWarning,
    RetireProcessor,
    RunBatch,
    SendConnect,
    SendResults,
    SendTasksReturned,
    SendTasksStarted,
    SendTaskSuspended,
    StartProcessor,
    TrimMemory,
)
from scaler.worker.agent_machine import AgentMachine, AgentSettings
from tests.conftest import SOAK
from tests.test_agent_machine import FUNCTION, wire_task

OBJECT_IDS = [b"object-a", b"object-b", b"object-c"]
SUSPECT = int(TaskFlag.SUSPECT)
FLAGS = [0, 0, 0, SUSPECT]  # suspects run one at a time: a few are enough
OBJECTS = [None, *OBJECT_IDS]  # the object argument of a task, if any
STATUSES = [TaskStatus.SUCCESS, TaskStatus.SUCCESS, TaskStatus.RAISED]
SETTINGS = AgentSettings(prefetch_milliseconds=5, prefetch_max=4, task_timeout_seconds=2.0, cancel_grace_seconds=0.1)


@dataclasses.dataclass
class Assignment:
    """A task the scheduler assigned to the agent and has not had answered."""

    cancelled: bool = False  # a cancel was sent: it must end with a result, not be returned
    cancelled_at: float = 0.0  # when the latest cancel was sent
    started: bool = False  # announced in a TASKS_STARTED notice


@dataclasses.dataclass
class SimProcessor:
    """A processor process: reads its inbox only between tasks, sends results when it flushes."""

    number: int
    ready: bool = False
    inbox: list[tuple[str, list[Any]]] = dataclasses.field(default_factory=list)
    pending: list[int] = dataclasses.field(default_factory=list)
    running: int = 0
    started_at: float = 0.0
    done: list[list[Any]] = dataclasses.field(default_factory=list)  # results not flushed yet
    suspended: bool = False
    alive: bool = True  # False once killed, crashed or exited; its exit is reported by `reap`
    killed: bool = False  # by the agent, which forgot it then
    retiring: bool = False  # the agent sent it WORKER_SHUTDOWN
    objects: set[bytes] = dataclasses.field(default_factory=set)  # sent to it and not deleted (in send order)
    lost: set[int] = dataclasses.field(default_factory=set)  # what it had when it crashed

    def tasks_anywhere(self) -> set[int]:
        ids = {task_id for kind, ids in self.inbox if kind == "run" for task_id in ids}
        ids.update(self.lost)
        ids.update(self.pending)
        ids.update(item[ResultField.TASK_ID] for item in self.done)
        if self.running:
            ids.add(self.running)
        return ids


def alive(p: SimProcessor) -> bool:
    return p.alive


def starting(p: SimProcessor) -> bool:
    return p.alive and not p.ready


def between_tasks(p: SimProcessor) -> bool:
    return p.alive and p.ready and not p.running and bool(p.inbox)


def can_start(p: SimProcessor) -> bool:
    return p.alive and not p.running and bool(p.pending)


def working(p: SimProcessor) -> bool:
    return p.alive and bool(p.running) and not p.suspended


def waiting(p: SimProcessor) -> bool:
    return p.alive and p.suspended


def has_results(p: SimProcessor) -> bool:
    return bool(p.done)


def ended(p: SimProcessor) -> bool:
    return not p.alive


class AgentModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.machine = AgentMachine(SETTINGS, validate=True)
        self.now = 1000.0
        self.processors: dict[int, SimProcessor] = {}  # every processor not reaped
        self.open: dict[int, Assignment] = {}
        # Returned or dropped by a reconnect: the scheduler may assign them again. An answered task ended for good.
        self.spare_ids: list[int] = []
        self.answered: set[int] = set()
        self.next_id = 1
        self.accepted = False
        self.agent_objects: set[bytes] = set()  # objects the scheduler sent and did not delete since
        self.broken = False
        self.apply(AgentStarted())
        self.apply(SchedulerAccepted())
        self.accepted = True

    # ------------------------------------------------------------------ plumbing

    def running(self) -> dict[int, Running]:
        return {n: Running(p.running, p.started_at) for n, p in self.processors.items()}

    def apply(self, event: Event, acknowledged: Sequence[int] = ()) -> list[Instruction]:
        """Feed one event; check and carry out what comes out. ``acknowledged``: cancels of tasks not held."""
        self.broken = True  # until this step is checked: a failed step leaves the model half updated
        out = self.machine.handle(event)
        acks = set(acknowledged)
        announced: set[int] = set()
        for instruction in out:
            if isinstance(instruction, SendResults):
                for item in instruction.items:
                    self.close(item, event, acks)
            elif isinstance(instruction, SendTasksStarted):
                assert all(t in self.open for t in instruction.task_ids), instruction
                announced.update(instruction.task_ids)
                for task_id in instruction.task_ids:
                    self.open[task_id].started = True
            elif isinstance(instruction, RunBatch):
                self.run_batch(instruction, announced)
            elif isinstance(instruction, SendTasksReturned):
                self.returned(event, instruction)
            elif isinstance(instruction, StartProcessor):
                assert instruction.processor not in self.processors
                self.processors[instruction.processor] = SimProcessor(instruction.processor)
            elif isinstance(instruction, KillProcessor):
                processor = self.processors[instruction.processor]
                assert not processor.killed
                processor.alive = False
                processor.killed = True
            elif isinstance(instruction, CancelOnProcessor):
                self.processors[instruction.processor].inbox.append(("cancel", instruction.task_ids))
            elif isinstance(instruction, DropOnProcessor):
                self.processors[instruction.processor].inbox.append(("drop", instruction.task_ids))
            elif isinstance(instruction, DeleteOnProcessor):
                processor = self.processors[instruction.processor]
                processor.inbox.append(("delete", []))
                processor.objects.difference_update(instruction.object_ids)
            elif isinstance(instruction, RetireProcessor):
                processor = self.processors[instruction.processor]
                assert processor.ready and not processor.retiring and not processor.killed
                processor.retiring = True
                processor.inbox.append(("shutdown", []))
            elif isinstance(instruction, SendConnect):
                self.accepted = False
            elif isinstance(instruction, SendTaskSuspended):
                # Only of a task held and handed to a processor, so the scheduler knows it started here.
                assert instruction.task_id in self.open and self.open[instruction.task_id].started, instruction
            else:
                assert isinstance(instruction, (TrimMemory, LogWarning)), instruction
        assert not acks, f"cancels of tasks not held went unanswered: {acks}"
        self.broken = False
        return out

    def close(self, item: list[Any], event: Event, acks: set[int]) -> None:
        """One result item: it answers an open task, or a cancel of a task not held; its status must fit."""
        task_id, status = item[ResultField.TASK_ID], item[ResultField.STATUS]
        assignment = self.open.pop(task_id, None)
        if assignment is None:
            assert task_id in acks, f"task {task_id:#x} answered but not held (answered twice?)"
            assert status == TaskStatus.CANCELLED
            acks.discard(task_id)
            return
        self.answered.add(task_id)
        if status == TaskStatus.CANCELLED:
            assert assignment.cancelled, f"task {task_id:#x} ended cancelled without a cancel"
        elif status == TaskStatus.PROCESSOR_DIED:
            assert isinstance(event, ProcessorExited) and event.running_task == task_id, f"{task_id:#x} blamed"
        elif status == TaskStatus.TIMED_OUT:
            assert isinstance(event, Tick), event
            started_at = event.running.get(self.holder(task_id), Running(0, 0.0)).started_at
            assert event.now - started_at > SETTINGS.task_timeout_seconds, f"{task_id:#x} timed out early"
            if assignment.cancelled:  # past its cancel's grace it is stopped as cancelled
                assert event.now < assignment.cancelled_at + SETTINGS.cancel_grace_seconds, f"{task_id:#x} ran on"
        else:
            assert isinstance(event, ProcessorResults) and item in event.items, f"{task_id:#x} made up a result"

    def holder(self, task_id: int) -> int:
        """The simulated processor running the task, 0 if none."""
        return next((n for n, p in self.processors.items() if p.running == task_id), 0)

    def run_batch(self, batch: RunBatch, announced: set[int]) -> None:
        processor = self.processors[batch.processor]
        # A processor that crashed is not known dead before its exit is reaped: what it is sent is lost then.
        assert processor.ready and not processor.retiring and not processor.killed, processor
        ids = [task[WorkerTaskField.TASK_ID] for task in batch.tasks]
        assert set(ids) <= announced, "a task handed to a processor before its TASKS_STARTED notice"
        if any(task[WorkerTaskField.FLAGS] & SUSPECT for task in batch.tasks):
            assert len(ids) == 1 and batch.delay_seconds > 0, "a suspect did not run alone, announced early"
        processor.objects.update(object_id for object_id, _ in batch.objects)
        for task in batch.tasks:
            needed = {task[WorkerTaskField.FUNCTION_ID]}
            needed.update(v for k, v in task[WorkerTaskField.ARGS] if k == ArgumentKind.OBJECT)
            missing = (needed & self.agent_objects) - processor.objects
            assert not missing, f"task {task[WorkerTaskField.TASK_ID]:#x} reaches a processor without {missing}"
        processor.inbox.append(("run", ids))

    def returned(self, event: Event, answer: SendTasksReturned) -> None:
        assert isinstance(event, WithdrawRequested)
        assert sorted(answer.returned + answer.kept) == sorted(event.task_ids)
        for task_id in answer.returned:
            assignment = self.open.pop(task_id)  # KeyError: returned a task it did not hold
            assert not assignment.cancelled, f"task {task_id:#x} was returned after a cancel"
            self.spare_ids.append(task_id)

    def pick(self, number: int, condition: Callable[[SimProcessor], bool]) -> SimProcessor:
        """One of the processors in the state a rule needs."""
        fitting = [p for _, p in sorted(self.processors.items()) if condition(p)]
        return fitting[number % len(fitting)]

    def has(self, condition: Callable[[SimProcessor], bool]) -> bool:
        return any(condition(p) for p in self.processors.values())

    # ------------------------------------------------------------------ the scheduler

    @rule(
        shapes=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(FLAGS), st.sampled_from(OBJECTS)), max_size=6),
        reuse=st.booleans(),
    )
    def assign(self, shapes: list[tuple[int, int, bytes | None]], reuse: bool) -> None:
        tasks = []
        objects = {FUNCTION}
        for priority, flags, object_id in shapes:
            if reuse and self.spare_ids:
                task_id = self.spare_ids.pop(0)
            else:
                task_id, self.next_id = self.next_id, self.next_id + 1
            if task_id in self.open:
                continue
            tasks.append(wire_task(task_id, priority, flags, [object_id] if object_id else []))
            if object_id:
                objects.add(object_id)
            self.open[task_id] = Assignment()
        self.agent_objects.update(objects)
        self.apply(TasksAssigned([(o, b"payload of " + o) for o in sorted(objects)], tasks))

    def some_ids(self, data: st.DataObject) -> list[int]:
        """Mostly tasks held, and some answered, returned or never sent."""
        others = st.sampled_from(sorted({*self.spare_ids, *self.answered, self.next_id + 5}))
        ids = st.one_of(st.sampled_from(sorted(self.open)), others) if self.open else others
        return data.draw(st.lists(ids, unique=True, max_size=4))

    @rule(data=st.data(), withdraw=st.booleans())
    def take_back(self, data: st.DataObject, withdraw: bool) -> None:
        """TASK_CANCEL or TASK_WITHDRAW for tasks held, answered, returned or never sent."""
        task_ids = self.some_ids(data)
        if withdraw:
            self.apply(WithdrawRequested(task_ids))
            return
        not_held = [t for t in task_ids if t not in self.open]
        for task_id in task_ids:
            if task_id in self.open:
                self.open[task_id].cancelled = True
                self.open[task_id].cancelled_at = self.now
        self.apply(CancelRequested(task_ids, self.now, self.running()), acknowledged=not_held)

    @rule(object_ids=st.lists(st.sampled_from(OBJECT_IDS), unique=True, min_size=1), chance=st.integers(0, 2))
    def delete_objects(self, object_ids: list[bytes], chance: int) -> None:
        if chance:  # now and then, so tasks run with their objects too
            return
        self.agent_objects.difference_update(object_ids)
        self.apply(ObjectsDeleted(object_ids))

    @rule(chance=st.integers(0, 7))
    def reconnect(self, chance: int) -> None:
        if chance:  # rarely: a reconnect drops everything, which would hide most other interleavings
            return
        resets = self.accepted
        dropped = list(self.open) if resets else []
        self.apply(ReconnectRequested())
        for task_id in dropped:  # the scheduler forgot this worker's tasks: they may come back
            del self.open[task_id]
            self.spare_ids.append(task_id)
        if resets:
            self.agent_objects.clear()

    @precondition(lambda self: not self.accepted)
    @rule()
    def accept(self) -> None:
        self.apply(SchedulerAccepted())
        self.accepted = True

    @rule(seconds=st.sampled_from([0.01, 0.05, 0.1, 0.5, 3.0]))
    def tick(self, seconds: float) -> None:
        self.now += seconds
        self.apply(Tick(self.now, self.running()))
        for number, state in self.machine.processors.items():
            running = self.processors[number].running
            assignment = self.open.get(running)
            if running in state.in_flight and assignment is not None and assignment.cancelled:
                overdue = self.now - assignment.cancelled_at - SETTINGS.cancel_grace_seconds
                assert overdue < 0, f"cancelled task {running:#x} still runs {overdue:.2f} s past its grace"

    # ------------------------------------------------------------------ the processors

    @precondition(lambda self: self.has(starting))
    @rule(number=st.integers(0, 7))
    def ready(self, number: int) -> None:
        self.make_ready(self.pick(number, starting))

    @precondition(lambda self: self.has(alive))
    @rule(
        number=st.integers(0, 7),
        statuses=st.lists(st.sampled_from(STATUSES), min_size=1, max_size=6),
        flush=st.booleans(),
        reads=st.booleans(),
    )
    def work(self, number: int, statuses: list[TaskStatus], flush: bool, reads: bool) -> None:
        """A processor's loop, a few times round: end the running task, read the inbox, start the next.

        Without ``reads``, what the agent sends arrives just after each read: a cancel comes too late to drop a task.
        """
        processor = self.pick(number, alive)
        self.make_ready(processor)
        for status in statuses:
            self.finish(processor, status)
            if reads:
                self.read(processor)
            self.start(processor)
        if flush:
            self.flush(processor, 0.001)

    @precondition(lambda self: self.has(between_tasks))
    @rule(number=st.integers(0, 7))
    def read_inbox(self, number: int) -> None:
        self.read(self.pick(number, between_tasks))

    @precondition(lambda self: self.has(can_start))
    @rule(number=st.integers(0, 7))
    def start_task(self, number: int) -> None:
        self.start(self.pick(number, can_start))

    @precondition(lambda self: self.has(working))
    @rule(number=st.integers(0, 7), status=st.sampled_from(STATUSES))
    def finish_task(self, number: int, status: TaskStatus) -> None:
        self.finish(self.pick(number, working), status)

    @precondition(lambda self: self.has(has_results))
    @rule(number=st.integers(0, 7), run_seconds=st.sampled_from([0.0, 0.0001, 0.01, 1.0]))
    def flush_results(self, number: int, run_seconds: float) -> None:
        """Results reach the agent; a killed or crashed processor may have flushed just before it ended."""
        self.flush(self.pick(number, has_results), run_seconds)

    @precondition(lambda self: self.has(working))
    @rule(number=st.integers(0, 7))
    def suspend(self, number: int) -> None:
        processor = self.pick(number, working)
        processor.suspended = True
        self.apply(ProcessorSuspended(processor.number, processor.running))

    @precondition(lambda self: self.has(waiting))
    @rule(number=st.integers(0, 7))
    def resume(self, number: int) -> None:
        self.wake(self.pick(number, waiting))

    @precondition(lambda self: self.has(alive))
    @rule(number=st.integers(0, 7))
    def crash(self, number: int) -> None:
        processor = self.pick(number, alive)
        processor.alive = False
        processor.lost = processor.tasks_anywhere()
        processor.done.clear()  # results it never flushed are lost

    @precondition(lambda self: self.has(ended))
    @rule(number=st.integers(0, 7))
    def reap(self, number: int) -> None:
        self.reap_one(self.pick(number, ended))

    def make_ready(self, processor: SimProcessor) -> None:
        if processor.alive and not processor.ready:
            processor.ready = True
            self.apply(ProcessorReady(processor.number))

    def read(self, processor: SimProcessor) -> None:
        """What a processor does with its inbox between two tasks."""
        if not processor.alive or not processor.ready or processor.running:
            return
        for kind, ids in processor.inbox:
            if kind == "run":
                processor.pending.extend(ids)
            elif kind in ("cancel", "drop"):
                for task_id in ids:
                    if task_id in processor.pending:
                        processor.pending.remove(task_id)
                        if kind == "cancel":
                            processor.done.append([task_id, TaskStatus.CANCELLED, None, None])
            elif kind == "shutdown":
                processor.alive = False  # leaves without flushing; reaped later
                break
        processor.inbox.clear()

    def start(self, processor: SimProcessor) -> None:
        if processor.alive and not processor.running and processor.pending:
            processor.running = processor.pending.pop(0)
            processor.started_at = self.now

    def finish(self, processor: SimProcessor, status: TaskStatus) -> None:
        if processor.alive and processor.running and not processor.suspended:
            processor.done.append([processor.running, status, b"result", None])
            processor.running = 0

    def flush(self, processor: SimProcessor, run_seconds: float) -> None:
        """Results reach the agent; a killed or crashed processor may have flushed just before it ended."""
        if processor.done:
            items, processor.done = processor.done, []
            ran = (TaskStatus.SUCCESS, TaskStatus.RAISED)
            items = [[*item, run_seconds] if item[1] in ran else item for item in items]
            self.apply(ProcessorResults(processor.number, items, []))

    def wake(self, processor: SimProcessor) -> None:
        if processor.alive and processor.suspended:
            processor.suspended = False
            self.apply(ProcessorResumed(processor.number))

    def reap_one(self, processor: SimProcessor) -> None:
        if not processor.alive:
            del self.processors[processor.number]
            self.apply(ProcessorExited(processor.number, processor.running, "it was killed by signal SIGKILL"))

    # ------------------------------------------------------------------ checks

    @invariant()
    def holds_exactly_the_open_tasks(self) -> None:
        self.broken = True
        held = set(self.machine.queued_task_ids)
        for number, state in self.machine.processors.items():
            held.update(state.in_flight)
            simulated = self.processors.get(number)
            assert simulated is not None and set(state.in_flight) <= simulated.tasks_anywhere(), (number, state)
        assert held == set(self.open), f"held {sorted(held)}, open {sorted(self.open)}"
        self.broken = False

    def finish_unless_cancelled(self, processor: SimProcessor) -> None:
        """A cancelled task runs on, as a long task would: its processor must be stopped for it to end."""
        assignment = self.open.get(processor.running)
        if assignment is None or not assignment.cancelled:
            self.finish(processor, TaskStatus.SUCCESS)

    def teardown(self) -> None:
        """Let every processor answer everything; then nothing may remain open."""
        if self.broken:  # a step failed: that is the error to report
            return
        for _ in range(self.next_id + 20):  # each round ends at least one task, or this gives up
            if not self.open and not self.has(lambda p: not p.alive):
                break
            for processor in list(self.processors.values()):
                if processor.number not in self.processors:
                    continue  # reaped while another processor's exit was handled
                self.make_ready(processor)
                self.wake(processor)
                self.finish_unless_cancelled(processor)
                self.read(processor)
                while processor.alive and processor.pending and not processor.running:
                    self.start(processor)
                    self.finish_unless_cancelled(processor)
                self.flush(processor, 0.0001)
                self.reap_one(processor)
            self.tick(0.05)
        assert not self.open, f"tasks never answered: {sorted(self.open)}; {self.machine.processors}"


@pytest.mark.timeout(1800 if SOAK else 120)
def test_agent_model() -> None:
    run_state_machine_as_test(
        AgentModel,
        settings=settings(
            max_examples=5_000 if SOAK else 500,
            stateful_step_count=80,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
