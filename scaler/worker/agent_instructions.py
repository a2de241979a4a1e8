"""What a worker agent's state machine asks its I/O shell to do, in order."""

from __future__ import annotations

import dataclasses

from scaler.protocol.codec import Payload
from scaler.worker.agent_events import ResultItem, WireTask

# ------------------------------------------------------------------ to the scheduler


@dataclasses.dataclass(slots=True)
class SendConnect:
    """Send WORKER_CONNECT (the shell knows the worker's name, pid, host and queue size)."""


@dataclasses.dataclass(slots=True)
class SendTasksStarted:
    """Send TASKS_STARTED: these tasks are handed to a processor and are blamed if this worker dies."""

    task_ids: list[int]


@dataclasses.dataclass(slots=True)
class SendTaskSuspended:
    """Send TASK_SUSPENDED: a running task waits on nested tasks (its core is free for others), or goes on."""

    task_id: int
    suspended: bool


@dataclasses.dataclass(slots=True)
class SendResults:
    """Send TASK_RESULTS with these items; integer payload references name ``frames``."""

    items: list[ResultItem]
    frames: list[Payload]


@dataclasses.dataclass(slots=True)
class SendTasksReturned:
    """Send TASKS_RETURNED, the answer to one TASK_WITHDRAW."""

    returned: list[int]
    kept: list[int]


# ------------------------------------------------------------------ to processors


@dataclasses.dataclass(slots=True)
class StartProcessor:
    """Start a processor process; later events name it by ``processor``."""

    processor: int


@dataclasses.dataclass(slots=True)
class RunBatch:
    """Send PROCESSOR_RUN [objects, tasks] with ``frames``, after ``delay_seconds`` if not 0."""

    processor: int
    objects: list[list[object]]  # [[object_id, payload_ref], ...]
    tasks: list[WireTask]
    frames: list[Payload]
    delay_seconds: float


@dataclasses.dataclass(slots=True)
class CancelOnProcessor:
    """Send TASK_CANCEL: the processor drops these tasks from its inbox and answers them cancelled."""

    processor: int
    task_ids: list[int]


@dataclasses.dataclass(slots=True)
class DropOnProcessor:
    """Send PROCESSOR_DROP: the processor forgets these tasks without answering (the agent re-queued them)."""

    processor: int
    task_ids: list[int]


@dataclasses.dataclass(slots=True)
class DeleteOnProcessor:
    """Send OBJECT_DELETE to the processor."""

    processor: int
    object_ids: list[bytes]


@dataclasses.dataclass(slots=True)
class RetireProcessor:
    """Send WORKER_SHUTDOWN to an idle extra processor: it exits by itself."""

    processor: int


@dataclasses.dataclass(slots=True)
class KillProcessor:
    """Kill the processor at once; the machine has already settled its tasks."""

    processor: int


# ------------------------------------------------------------------ the agent itself


@dataclasses.dataclass(slots=True)
class TrimMemory:
    """Give freed memory back to the system, once the transport has released deleted objects' frames."""


@dataclasses.dataclass(slots=True)
class LogWarning:
    """Something worth a line in the log."""

    text: str


@dataclasses.dataclass(slots=True)
class StopAgent:
    """Stop the agent; ``failed``: the worker process then exits with status 1."""

    reason: str
    failed: bool = False


Instruction = (
    SendConnect
    | SendTasksStarted
    | SendTaskSuspended
    | SendResults
    | SendTasksReturned
    | StartProcessor
    | RunBatch
    | CancelOnProcessor
    | DropOnProcessor
    | DeleteOnProcessor
    | RetireProcessor
    | KillProcessor
    | TrimMemory
    | LogWarning
    | StopAgent
)
