"""The worker agent's state machine, driven event by event with no process and no clock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from scaler.protocol.codec import MalformedMessage
from scaler.protocol.messages import ArgumentKind, ResultField, TaskFlag, TaskStatus, WorkerTaskField
from scaler.worker import agent_wire
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
    Refused,
    Running,
    SchedulerAccepted,
    SchedulerStopping,
    ShutdownRequested,
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
    StopAgent,
    TrimMemory,
)
from scaler.worker.agent_machine import AgentMachine, AgentSettings, InvariantError

FUNCTION = b"function-object"
SUSPECT = int(TaskFlag.SUSPECT)


def wire_task(task_id: int, priority: int = 0, flags: int = 0, objects: Sequence[bytes] = ()) -> list[Any]:
    """A task as TASK_ASSIGN carries it: one inline argument, plus an object argument per id in ``objects``."""
    fields: list[Any] = [None] * len(WorkerTaskField)
    fields[WorkerTaskField.TASK_ID] = task_id
    fields[WorkerTaskField.FUNCTION_ID] = FUNCTION
    fields[WorkerTaskField.PRIORITY] = priority
    fields[WorkerTaskField.FLAGS] = flags
    fields[WorkerTaskField.ARGS] = [[ArgumentKind.INLINE, b"arg"], *([ArgumentKind.OBJECT, o] for o in objects)]
    fields[WorkerTaskField.KEYWORDS] = []
    fields[WorkerTaskField.SERIALIZER_ID] = None
    return fields


def result(task_id: int, status: int = TaskStatus.SUCCESS, run_seconds: float = 0.0001) -> list[Any]:
    """A processor's result item, with the seconds the task ran."""
    return [task_id, status, b"value" if status == TaskStatus.SUCCESS else None, None, run_seconds]


def of_type(instructions: Sequence[Instruction], kind: type) -> list[Any]:
    return [i for i in instructions if isinstance(i, kind)]


def answered(instructions: Sequence[Instruction]) -> dict[int, int]:
    """Task id -> status of every result item sent to the scheduler."""
    return {
        item[ResultField.TASK_ID]: item[ResultField.STATUS]
        for send in of_type(instructions, SendResults)
        for item in send.items
    }


def batch_ids(instruction: RunBatch) -> list[int]:
    return [task[WorkerTaskField.TASK_ID] for task in instruction.tasks]


class Agent:
    """A machine with validation on, and the running-task snapshot a shell would read from shared memory."""

    def __init__(self, **settings: Any) -> None:
        # Unless a test says otherwise, functions not yet measured count as short: tasks go in batches.
        settings.setdefault("unknown_seconds_per_task", 0.0001)
        self.machine = AgentMachine(AgentSettings(**settings), validate=True)
        self.now = 100.0
        self.running: dict[int, Running] = {}

    def __call__(self, event: Event) -> list[Instruction]:
        return self.machine.handle(event)

    def start(self) -> list[Instruction]:
        out = self(AgentStarted())
        self(SchedulerAccepted())
        return out + self(ProcessorReady(1))

    def assign(self, *tasks: list[Any], objects: Sequence[tuple[bytes, bytes]] = ()) -> list[Instruction]:
        return self(TasksAssigned([(FUNCTION, b"pickled function"), *objects], list(tasks)))

    def runs(self, processor: int, task_id: int, started_at: float | None = None) -> None:
        self.running[processor] = Running(task_id, self.now if started_at is None else started_at)

    def cancel(self, *task_ids: int) -> list[Instruction]:
        return self(CancelRequested(list(task_ids), self.now, dict(self.running)))

    def tick(self, seconds: float) -> list[Instruction]:
        self.now += seconds
        return self(Tick(self.now, dict(self.running)))

    def results(self, processor: int, *items: list[Any]) -> list[Instruction]:
        return self(ProcessorResults(processor, list(items), []))

    def in_flight(self, processor: int) -> list[int]:
        return list(self.machine.processors[processor].in_flight)


def test_start_starts_one_processor_and_connects() -> None:
    agent = Agent()
    assert agent(AgentStarted()) == [StartProcessor(1), SendConnect()]
    assert agent(ProcessorReady(1)) == []  # nothing to run yet


def test_tasks_go_to_the_ready_processor_after_their_started_notice_and_objects_travel_once() -> None:
    agent = Agent()
    agent(AgentStarted())
    assert agent.assign(wire_task(1), wire_task(2)) == []  # the processor is not ready
    out = agent(ProcessorReady(1))
    assert [type(i) for i in out] == [SendTasksStarted, RunBatch]
    started, batch = out
    assert started.task_ids == [1, 2] and batch_ids(batch) == [1, 2] and batch.delay_seconds == 0
    assert batch.objects == [[FUNCTION, b"pickled function"]]
    agent.results(1, result(1), result(2))
    (again,) = of_type(agent.assign(wire_task(3)), RunBatch)
    assert again.objects == []  # the processor holds the function already


def test_higher_priority_tasks_are_handed_over_first() -> None:
    agent = Agent()
    agent(AgentStarted())
    agent.assign(wire_task(1, priority=0), wire_task(2, priority=5), wire_task(3, priority=0))
    (batch,) = of_type(agent(ProcessorReady(1)), RunBatch)
    assert batch_ids(batch) == [2, 1, 3]


def test_batch_size_follows_the_measured_seconds_per_task() -> None:
    agent = Agent(prefetch_milliseconds=10, prefetch_max=100, unknown_seconds_per_task=0.5)
    agent.start()
    (batch,) = of_type(agent.assign(*(wire_task(i) for i in range(1, 51))), RunBatch)
    assert batch_ids(batch) == [1]  # not yet measured: counts as long, goes alone
    (batch,) = of_type(agent.results(1, result(1, run_seconds=0.001)), RunBatch)
    assert len(batch.tasks) == 10  # measured: 10 ms of 1 ms tasks
    assert agent.machine.seconds_per_task(FUNCTION) == pytest.approx(0.001)
    # Slow tasks: the estimate rises and the batches shrink to one task.
    for _ in range(10):
        ids = agent.in_flight(1)
        out = agent.results(1, *(result(t, run_seconds=1.0) for t in ids))
    assert agent.machine.seconds_per_task(FUNCTION) > 0.5
    assert len(agent.in_flight(1)) == 1 and answered(out)


def test_nothing_waits_inside_a_processor_behind_a_long_task() -> None:
    slow, quick = b"slow-function", b"quick-function"
    agent = Agent(unknown_seconds_per_task=0.5)
    agent.start()
    agent(TasksAssigned([(quick, b"q"), (slow, b"s")], []))

    def task(task_id: int, function_id: bytes) -> list[Any]:
        fields = wire_task(task_id)
        fields[WorkerTaskField.FUNCTION_ID] = function_id
        return fields

    (batch,) = of_type(agent.assign(task(1, quick)), RunBatch)
    agent.results(1, result(1, run_seconds=0.0001))  # quick is measured: quick
    out = agent.assign(task(2, slow), task(3, quick), task(4, quick))
    assert [batch_ids(b) for b in of_type(out, RunBatch)] == [[2]]  # not yet measured: alone
    assert agent.machine.queued_task_ids == [3, 4]  # they wait here, where a withdrawal can take them back
    (returned,) = of_type(agent(WithdrawRequested([3, 4])), SendTasksReturned)
    assert returned.returned == [3, 4]
    agent.assign(task(5, quick), task(6, slow))
    out = agent.results(1, result(2, run_seconds=2.0))
    assert [batch_ids(b) for b in of_type(out, RunBatch)] == [[5]]  # a long task does not join a quick batch
    assert agent.machine.queued_task_ids == [6]


def test_only_the_running_task_is_blamed_when_a_processor_dies_and_the_queued_ones_run_again() -> None:
    agent = Agent()
    agent.start()
    agent.assign(wire_task(1), wire_task(2), wire_task(3), wire_task(4))
    agent.results(1, result(1))
    out = agent(ProcessorExited(1, running_task=2, description="it was killed by signal SIGSEGV"))
    assert answered(out) == {2: TaskStatus.PROCESSOR_DIED}
    (send,) = of_type(out, SendResults)
    assert send.items[0][ResultField.PAYLOAD] == b"the processor running task 0x2 died: it was killed by signal SIGSEGV"
    assert of_type(out, StartProcessor) == [StartProcessor(2)]
    assert agent.machine.queued_task_ids == [3, 4]  # in their order, ahead of anything assigned later
    (batch,) = of_type(agent(ProcessorReady(2)), RunBatch)
    assert batch_ids(batch) == [3, 4] and batch.objects == [[FUNCTION, b"pickled function"]]


def test_a_processor_that_dies_between_tasks_blames_nobody() -> None:
    agent = Agent()
    agent.start()
    agent.assign(wire_task(1), wire_task(2))
    out = agent(ProcessorExited(1, running_task=0, description="it exited with code 1"))
    assert answered(out) == {} and agent.machine.queued_task_ids == [1, 2]


def test_a_suspect_task_waits_for_an_idle_processor_runs_alone_and_is_announced_first() -> None:
    agent = Agent()
    agent.start()
    (first,) = of_type(agent.assign(wire_task(1), wire_task(2, flags=SUSPECT), wire_task(3)), RunBatch)
    assert batch_ids(first) == [1]  # the suspect does not join a processor that has work
    out = agent.results(1, result(1))
    assert [type(i) for i in out] == [SendResults, SendTasksStarted, RunBatch]
    assert out[1].task_ids == [2] and batch_ids(out[2]) == [2]
    assert out[2].delay_seconds == agent.machine.settings.suspect_dispatch_delay_seconds > 0
    assert of_type(agent.assign(wire_task(4)), RunBatch) == []  # nothing joins the suspect
    (after,) = of_type(agent.results(1, result(2)), RunBatch)
    assert batch_ids(after) == [3, 4]


def test_a_suspect_is_blamed_alone_when_it_kills_its_processor() -> None:
    agent = Agent()
    agent.start()
    agent.assign(wire_task(1, flags=SUSPECT), wire_task(2))
    assert agent.in_flight(1) == [1]
    out = agent(ProcessorExited(1, running_task=1, description="it was killed by signal SIGKILL"))
    assert answered(out) == {1: TaskStatus.PROCESSOR_DIED}
    assert agent.machine.queued_task_ids == [2]


def test_cancelling_a_queued_task_answers_at_once() -> None:
    agent = Agent()
    agent(AgentStarted())
    agent.assign(wire_task(1), wire_task(2))
    out = agent.cancel(1)
    assert out == [SendResults([[1, TaskStatus.CANCELLED, None, None]], [])]
    assert agent.machine.queued_task_ids == [2]


def test_cancelling_the_running_task_kills_its_processor_and_the_others_run_elsewhere() -> None:
    agent = Agent()
    agent.start()
    agent.assign(wire_task(1), wire_task(2), wire_task(3))
    agent.runs(1, 1)
    out = agent.cancel(1)
    assert out[0] == KillProcessor(1)
    assert answered(out) == {1: TaskStatus.CANCELLED}
    assert of_type(out, StartProcessor) == [StartProcessor(2)]
    (batch,) = of_type(agent(ProcessorReady(2)), RunBatch)
    assert batch_ids(batch) == [2, 3]
    # The killed processor's late messages and its exit change nothing.
    assert agent.results(1, result(2)) == []
    assert agent(ProcessorExited(1, running_task=2, description="it was killed by signal SIGKILL")) == []


def test_a_cancelled_task_waiting_in_a_processor_is_dropped_there_or_its_processor_stopped_after_a_grace() -> None:
    agent = Agent(cancel_grace_seconds=0.1)
    agent.start()
    agent.assign(wire_task(1), wire_task(2), wire_task(3))
    agent.runs(1, 1)
    assert agent.cancel(2) == [CancelOnProcessor(1, [2])]
    assert agent.machine.cancel_deadline(2) == pytest.approx(agent.now + 0.1)
    assert agent.tick(0.05) == []  # task 1 still runs; the processor has not read the cancel yet
    agent.runs(1, 2)  # ... and starts task 2 before it reads it
    assert agent.tick(0.04) == []  # within the grace
    out = agent.tick(0.02)
    assert out[0] == KillProcessor(1) and answered(out) == {2: TaskStatus.CANCELLED}
    assert agent.machine.queued_task_ids == [1, 3] and agent.machine.cancel_deadline(2) is None


def test_a_processor_that_drops_a_cancelled_task_in_time_is_not_stopped() -> None:
    agent = Agent()
    agent.start()
    agent.assign(wire_task(1), wire_task(2))
    agent.runs(1, 1)
    agent.cancel(2)
    out = agent.results(1, result(2, TaskStatus.CANCELLED))
    assert answered(out) == {2: TaskStatus.CANCELLED}
    assert agent.machine.cancel_deadline(2) is None
    assert agent.tick(10) == []


def test_a_task_past_the_timeout_fails_and_its_processor_is_replaced() -> None:
    agent = Agent(task_timeout_seconds=1.0)
    agent.start()
    agent.assign(wire_task(1), wire_task(2))
    agent.runs(1, 1, started_at=agent.now)
    assert agent.tick(0.9) == []
    out = agent.tick(0.2)
    assert out[0] == KillProcessor(1)
    (send,) = of_type(out, SendResults)
    assert send.items == [[1, TaskStatus.TIMED_OUT, b"the task ran for more than the task timeout of 1 seconds", None]]
    assert of_type(out, StartProcessor) == [StartProcessor(2)] and agent.machine.queued_task_ids == [2]


def test_a_withdrawal_returns_queued_tasks_and_keeps_those_handed_to_a_processor() -> None:
    agent = Agent(prefetch_max=2)
    agent.start()
    agent.assign(*(wire_task(i) for i in range(1, 6)))
    assert agent.in_flight(1) == [1, 2]
    out = agent(WithdrawRequested([5, 1, 4, 99]))
    assert out == [SendTasksReturned([5, 4], [1, 99])]
    assert agent.machine.queued_task_ids == [3]


def test_a_withdrawal_racing_a_result_answers_each_task_once() -> None:
    agent = Agent(prefetch_max=2)
    agent.start()
    agent.assign(wire_task(1), wire_task(2), wire_task(3))
    assert agent(WithdrawRequested([2, 3])) == [SendTasksReturned([3], [2])]
    out = agent.results(1, result(1), result(2))
    assert answered(out) == {1: TaskStatus.SUCCESS, 2: TaskStatus.SUCCESS}
    assert agent(WithdrawRequested([2])) == [SendTasksReturned([], [2])]  # answered already: kept, not returned


def test_a_cancel_for_a_task_no_longer_here_is_answered_cancelled() -> None:
    agent = Agent(prefetch_max=2)
    agent.start()
    agent.assign(wire_task(1), wire_task(2), wire_task(3))
    agent(WithdrawRequested([3]))
    agent.results(1, result(1))
    out = agent.cancel(3, 1, 0x77)  # returned, answered, never here
    assert answered(out) == {3: TaskStatus.CANCELLED, 1: TaskStatus.CANCELLED, 0x77: TaskStatus.CANCELLED}
    assert of_type(out, KillProcessor) == []


def test_a_suspended_processor_hands_its_waiting_tasks_to_a_new_processor_which_retires_when_idle() -> None:
    agent = Agent()
    agent.start()
    agent.assign(wire_task(1), wire_task(2), wire_task(3))
    out = agent(ProcessorSuspended(1, task_id=1))
    # The scheduler hears that task 1 leaves its core free, so it may send the nested tasks here.
    assert out == [SendTaskSuspended(1, True), DropOnProcessor(1, [2, 3]), StartProcessor(2)]
    assert agent.in_flight(1) == [1] and agent.machine.queued_task_ids == [2, 3]
    (batch,) = of_type(agent(ProcessorReady(2)), RunBatch)
    assert batch_ids(batch) == [2, 3] and batch.objects == [[FUNCTION, b"pickled function"]]
    agent.results(2, result(2), result(3))
    assert agent(ProcessorResumed(1)) == [SendTaskSuspended(1, False)]
    out = agent.results(1, result(1))
    assert answered(out) == {1: TaskStatus.SUCCESS} and RetireProcessor(2) in out
    assert agent(ProcessorExited(2, running_task=0, description="it exited with code 0")) == []
    assert list(agent.machine.processors) == [1]


def test_a_cancelled_task_dropped_by_a_suspended_processor_ends_cancelled_instead_of_running_again() -> None:
    agent = Agent()
    agent.start()
    agent.assign(wire_task(1), wire_task(2), wire_task(3))
    agent.runs(1, 1)
    agent.cancel(3)
    out = agent(ProcessorSuspended(1, task_id=1))
    assert answered(out) == {3: TaskStatus.CANCELLED}
    assert agent.machine.queued_task_ids == [2]


def test_deleted_objects_are_deleted_in_the_processors_holding_them_and_sent_again_if_needed() -> None:
    agent = Agent()
    agent.start()
    agent.assign(wire_task(1, objects=[b"big"]), objects=[(b"big", b"payload")])
    agent.results(1, result(1))
    out = agent(ObjectsDeleted([b"big", b"unknown"]))
    assert out == [TrimMemory(), DeleteOnProcessor(1, [b"big"])]
    (batch,) = of_type(agent.assign(wire_task(2, objects=[b"big"]), objects=[(b"big", b"again")]), RunBatch)
    assert batch.objects == [[b"big", b"again"]]


def test_a_reconnect_request_drops_everything_once_the_worker_was_accepted() -> None:
    agent = Agent()
    agent(AgentStarted())
    assert agent(ReconnectRequested()) == []  # predates the connect this worker just sent
    agent(SchedulerAccepted())
    agent(ProcessorReady(1))
    agent.assign(wire_task(1), wire_task(2), wire_task(3))
    out = agent(ReconnectRequested())
    assert of_type(out, KillProcessor) == [KillProcessor(1)]
    assert of_type(out, StartProcessor) == [StartProcessor(2)] and out[-1] == SendConnect()
    assert answered(out) == {} and agent.machine.task_count == 0
    assert agent.results(1, result(1)) == []  # the old processor's late results are not forwarded
    assert agent(ProcessorExited(1, running_task=1, description="it was killed by signal SIGKILL")) == []
    assert agent(ReconnectRequested()) == []  # not accepted again yet
    (batch,) = of_type(agent(ProcessorReady(2)) + agent.assign(wire_task(1)), RunBatch)
    assert batch_ids(batch) == [1] and batch.objects == [[FUNCTION, b"pickled function"]]


def test_a_stopping_scheduler_makes_the_worker_drop_everything_and_wait_for_another() -> None:
    agent = Agent()
    agent(AgentStarted())
    agent(SchedulerAccepted())
    agent(ProcessorReady(1))
    agent.assign(wire_task(1), wire_task(2))
    out = agent(SchedulerStopping("received SIGTERM"))
    (warning,) = of_type(out, LogWarning)
    assert "the scheduler stopped (received SIGTERM)" in warning.text
    assert of_type(out, KillProcessor) == [KillProcessor(1)] and out[-1] == SendConnect()
    assert agent.machine.task_count == 0 and not of_type(out, StopAgent)


def test_a_refused_worker_stops_as_failed() -> None:
    agent = Agent()
    agent.start()
    assert agent(Refused("the worker runs scaler 0.0.1")) == [
        StopAgent("the scheduler refused this worker: the worker runs scaler 0.0.1", failed=True)
    ]


def test_a_shutdown_request_stops_the_agent() -> None:
    agent = Agent()
    agent.start()
    assert agent(ShutdownRequested()) == [StopAgent("the scheduler shut the cluster down")]


def test_the_invariant_check_names_a_task_held_in_two_places() -> None:
    agent = Agent(prefetch_max=2)
    agent.start()
    agent.assign(wire_task(1), wire_task(2), wire_task(3))
    agent.machine.check_invariants()
    agent.machine.processors[1].in_flight[3] = wire_task(3)  # corrupt the state behind the machine's back
    with pytest.raises(InvariantError, match="task 0x3 is both queued and on processor 1"):
        agent.machine.check_invariants()


def test_an_assignment_resolves_frame_references_and_rejects_bad_ones() -> None:
    task = wire_task(1)
    task[WorkerTaskField.ARGS] = [[ArgumentKind.INLINE, 0], [ArgumentKind.OBJECT, b"o"]]
    event = agent_wire.parse_assign([[[b"o", 1]], [task]], [b"large argument", b"large object"])
    assert event.objects == [(b"o", b"large object")]
    args = event.tasks[0][WorkerTaskField.ARGS]
    assert args == [[ArgumentKind.INLINE, b"large argument"], [ArgumentKind.OBJECT, b"o"]]
    with pytest.raises(MalformedMessage):
        agent_wire.parse_assign([[], [wire_task(2)[:3]]], [])
    bad = wire_task(3)
    bad[WorkerTaskField.ARGS] = [[ArgumentKind.INLINE, 5]]
    with pytest.raises(MalformedMessage):
        agent_wire.parse_assign([[], [bad]], [b"only one frame"])
