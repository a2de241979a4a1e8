"""What can happen to a worker agent: the events its state machine takes.

Events carry everything the machine needs, time included: the machine reads no clock and no process
state. ``running`` maps a processor number to what that processor reports running right now (the
shell reads it from the memory it shares with the processor).

Events and instructions are treated as immutable but not declared frozen: a frozen dataclass costs about
a quarter of a microsecond more to build, and several are built for every task's round trip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

from scaler.protocol.codec import Payload

WireTask = list[Any]  # one task as laid out by WorkerTaskField
ResultItem = list[Any]  # one TASK_RESULTS item as laid out by ResultField


class Running(NamedTuple):
    """What one processor runs now: a task id (0 for none) and when it started (monotonic seconds)."""

    task_id: int
    started_at: float


NOTHING_RUNNING = Running(0, 0.0)


# ------------------------------------------------------------------ from the shell itself


@dataclasses.dataclass(slots=True)
class AgentStarted:
    """The agent starts: it needs a processor and a connection to the scheduler."""


@dataclasses.dataclass(slots=True)
class Tick:
    """Time passes: running tasks are checked against the task timeout and pending cancels."""

    now: float
    running: Mapping[int, Running]


# ------------------------------------------------------------------ from the scheduler


@dataclasses.dataclass(slots=True)
class TasksAssigned:
    """TASK_ASSIGN: tasks to run and the objects they need (payload references already resolved)."""

    objects: list[tuple[bytes, Payload]]
    tasks: list[WireTask]


@dataclasses.dataclass(slots=True)
class CancelRequested:
    """TASK_CANCEL: stop these tasks; every one gets an answer."""

    task_ids: list[int]
    now: float
    running: Mapping[int, Running]


@dataclasses.dataclass(slots=True)
class WithdrawRequested:
    """TASK_WITHDRAW: give back these tasks if they have not been handed to a processor."""

    task_ids: list[int]


@dataclasses.dataclass(slots=True)
class ObjectsDeleted:
    """OBJECT_DELETE: forget these objects here and in every processor holding them."""

    object_ids: list[bytes]


@dataclasses.dataclass(slots=True)
class SchedulerAccepted:
    """WORKER_ACCEPT: the scheduler knows this worker since its latest WORKER_CONNECT."""


@dataclasses.dataclass(slots=True)
class SchedulerStopping:
    """SCHEDULER_STOPPING: the scheduler stops; drop everything and wait for a scheduler at the same address."""

    reason: str


@dataclasses.dataclass(slots=True)
class Refused:
    """WORKER_REFUSED: the scheduler will not take this worker (another scaler version, for instance)."""

    reason: str


@dataclasses.dataclass(slots=True)
class ReconnectRequested:
    """WORKER_RECONNECT: the scheduler does not know this worker; drop everything and connect again."""


@dataclasses.dataclass(slots=True)
class ShutdownRequested:
    """WORKER_SHUTDOWN from the scheduler: the cluster stops."""


# ------------------------------------------------------------------ from processors


@dataclasses.dataclass(slots=True)
class ProcessorReady:
    """PROCESSOR_READY: the processor started and takes tasks."""

    processor: int


@dataclasses.dataclass(slots=True)
class ProcessorResults:
    """PROCESSOR_RESULTS: results of tasks the processor ended, each with the seconds it ran."""

    processor: int
    items: list[ResultItem]
    frames: list[Payload]


@dataclasses.dataclass(slots=True)
class ProcessorSuspended:
    """PROCESSOR_SUSPENDED: the processor's running task waits on nested tasks."""

    processor: int
    task_id: int


@dataclasses.dataclass(slots=True)
class ProcessorResumed:
    """PROCESSOR_RESUMED: the waiting task goes on."""

    processor: int


@dataclasses.dataclass(slots=True)
class ProcessorExited:
    """The processor's process ended; every message it sent before has been handled."""

    processor: int
    running_task: int  # what it ran when it ended, 0 for nothing
    description: str  # its exit code or signal, for people
    pid: int | None = None  # for the log


Event = (
    AgentStarted
    | Tick
    | TasksAssigned
    | CancelRequested
    | WithdrawRequested
    | ObjectsDeleted
    | SchedulerAccepted
    | ReconnectRequested
    | SchedulerStopping
    | Refused
    | ShutdownRequested
    | ProcessorReady
    | ProcessorResults
    | ProcessorSuspended
    | ProcessorResumed
    | ProcessorExited
)
