"""The worker agent's decisions as a pure state machine: events in, instructions out.

The machine holds the agent's queue, its objects and its view of each processor. It owns no socket and
no process and reads no clock: time and what each processor runs come in with the events, and every
effect goes out as an instruction for the I/O shell (scaler/worker/agent.py) to carry out in order.

What it promises, and checks after every event when built with ``validate=True``:

- a task the agent holds is in exactly one place: the agent's queue or one processor's in-flight set;
- every task assigned is answered once (a result, or "returned" in answer to a withdrawal), unless the
  scheduler asks the worker to reconnect (it forgot the worker's tasks); every cancel gets an answer;
- a suspect task runs alone on its processor (nothing joins it until it ends), and its TASKS_STARTED
  notice goes out before it runs;
- a cancelled task never returns to the queue: when its processor dies, is stopped or lends its core to
  another one while the cancel is pending, the task ends cancelled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from scaler import defaults
from scaler.protocol.codec import FrameWriter, Payload
from scaler.protocol.messages import ArgumentKind, ResultField, TaskFlag, TaskStatus, WorkerTaskField
from scaler.utility.durations import UNKNOWN_SECONDS, DurationEstimates
from scaler.worker.agent_events import (
    NOTHING_RUNNING,
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
    ResultItem,
    SchedulerAccepted,
    SchedulerStopping,
    ShutdownRequested,
    TasksAssigned,
    Tick,
    WireTask,
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
from scaler.worker.config import WorkerConfig
from scaler.worker.processor_state import ProcessorState
from scaler.worker.task_queue import AgentTaskQueue

# Field positions bound once: the feed loop reads them for every task.
_TASK_ID = int(WorkerTaskField.TASK_ID)
_FUNCTION_ID = int(WorkerTaskField.FUNCTION_ID)
_FLAGS = int(WorkerTaskField.FLAGS)
_ARGS = int(WorkerTaskField.ARGS)
_SERIALIZER_ID = int(WorkerTaskField.SERIALIZER_ID)
_RESULT_TASK_ID = int(ResultField.TASK_ID)
_RUN_SECONDS = int(ResultField.RUN_SECONDS)
_SUSPECT = int(TaskFlag.SUSPECT)
_INLINE = int(ArgumentKind.INLINE)
_OBJECT = int(ArgumentKind.OBJECT)


class InvariantError(AssertionError):
    """The machine's state broke one of its invariants (raised only with ``validate=True``)."""


@dataclasses.dataclass(frozen=True)
class AgentSettings:
    """The numbers the agent's decisions depend on."""

    prefetch_milliseconds: float = defaults.WORKER_PROCESSOR_PREFETCH_MILLISECONDS
    prefetch_max: int = defaults.WORKER_PROCESSOR_PREFETCH_MAX
    task_timeout_seconds: float = defaults.WORKER_TASK_TIMEOUT_SECONDS  # 0: no limit
    # Seconds a processor gets to drop a cancelled task from its inbox before it is stopped anyway.
    cancel_grace_seconds: float = 0.1
    # Seconds between telling the scheduler a suspect task starts and handing it to its processor.
    suspect_dispatch_delay_seconds: float = 0.002
    # Estimate of a function's run time until its first task ends: long, so its first tasks go one at a time.
    unknown_seconds_per_task: float = UNKNOWN_SECONDS

    @classmethod
    def from_config(cls, config: WorkerConfig) -> AgentSettings:
        return cls(
            prefetch_milliseconds=config.prefetch_milliseconds,
            prefetch_max=config.prefetch_max,
            task_timeout_seconds=config.task_timeout_seconds,
        )


def cancelled_item(task_id: int) -> ResultItem:
    """The TASK_RESULTS item of a cancelled task."""
    return [task_id, TaskStatus.CANCELLED, None, None]


class AgentMachine:
    """A worker agent's state and decisions: ``handle(event)`` returns the instructions to carry out, in order."""

    def __init__(self, settings: AgentSettings | None = None, validate: bool = False) -> None:
        self.settings = settings or AgentSettings()
        self.validate = validate
        self._queue = AgentTaskQueue()
        self._objects: dict[bytes, Payload] = {}
        self._processors: dict[int, ProcessorState] = {}  # in start order: the first free one is fed
        self._cancel_deadlines: dict[int, float] = {}  # in-flight task id -> when its processor is stopped
        self._durations = DurationEstimates(self.settings.unknown_seconds_per_task)
        self._last_processor = 0
        self._accepted = False  # WORKER_ACCEPT received for the latest WORKER_CONNECT
        self._started = False
        self._out: list[Instruction] = []
        self._handlers: dict[type, Callable[[Any], None]] = {
            AgentStarted: self._on_started,
            Tick: self._on_tick,
            TasksAssigned: self._on_assigned,
            CancelRequested: self._on_cancel,
            WithdrawRequested: self._on_withdraw,
            ObjectsDeleted: self._on_objects_deleted,
            SchedulerAccepted: self._on_accepted,
            ReconnectRequested: self._on_reconnect,
            SchedulerStopping: self._on_scheduler_stopping,
            Refused: self._on_refused,
            ShutdownRequested: self._on_shutdown,
            ProcessorReady: self._on_processor_ready,
            ProcessorResults: self._on_processor_results,
            ProcessorSuspended: self._on_processor_suspended,
            ProcessorResumed: self._on_processor_resumed,
            ProcessorExited: self._on_processor_exited,
        }

    def handle(self, event: Event) -> list[Instruction]:
        """Apply one event; return what the shell must do, in order."""
        out: list[Instruction] = []
        self._out = out
        self._handlers[type(event)](event)
        if self.validate:
            self.check_invariants()
        return out

    # ------------------------------------------------------------------ what the shell may read

    @property
    def task_count(self) -> int:
        """Tasks held: queued here or in flight on a processor."""
        return len(self._queue) + sum(len(p.in_flight) for p in self._processors.values())

    @property
    def processors(self) -> Mapping[int, ProcessorState]:
        """Every processor the machine knows, by number (read only)."""
        return self._processors

    @property
    def queued_task_ids(self) -> list[int]:
        return self._queue.task_ids()

    def seconds_per_task(self, function_id: bytes) -> float:
        """The estimated run time of a task of ``function_id``, from the tasks of it that ended here."""
        return self._durations.of(function_id)

    def cancel_deadline(self, task_id: int) -> float | None:
        """When the processor holding a cancelled task is stopped if the task has not ended."""
        return self._cancel_deadlines.get(task_id)

    def holder_of(self, task_id: int) -> ProcessorState | None:
        """The processor that has the task in flight, if any."""
        for processor in self._processors.values():
            if task_id in processor.in_flight:
                return processor
        return None

    # ------------------------------------------------------------------ the agent and its scheduler

    def _on_started(self, event: AgentStarted) -> None:
        self._started = True
        self._start_processor()
        self._connect()

    def _connect(self) -> None:
        self._accepted = False
        self._out.append(SendConnect())

    def _on_accepted(self, event: SchedulerAccepted) -> None:
        self._accepted = True

    def _on_reconnect(self, event: ReconnectRequested) -> None:
        # One answer comes per message sent while unknown; those arriving before WORKER_ACCEPT predate the reconnect.
        if not self._accepted:
            return
        self._drop_everything_and_reconnect(
            "dropping all tasks and reconnecting: the scheduler did not know this worker"
        )

    def _on_scheduler_stopping(self, event: SchedulerStopping) -> None:
        self._drop_everything_and_reconnect(
            f"the scheduler stopped ({event.reason}): dropping all tasks and waiting for a scheduler at the same "
            "address until the death timeout"
        )

    def _on_refused(self, event: Refused) -> None:
        self._out.append(StopAgent(f"the scheduler refused this worker: {event.reason}", failed=True))

    def _drop_everything_and_reconnect(self, warning: str) -> None:
        out = self._out
        out.append(LogWarning(warning))
        self._queue.clear()
        self._objects.clear()
        self._cancel_deadlines.clear()
        for number in self._processors:
            out.append(KillProcessor(number))
        self._processors.clear()
        self._start_processor()
        self._connect()

    def _on_shutdown(self, event: ShutdownRequested) -> None:
        self._out.append(StopAgent("the scheduler shut the cluster down"))

    def _on_assigned(self, event: TasksAssigned) -> None:
        if event.objects:
            self._objects.update(event.objects)
        push = self._queue.push
        for task in event.tasks:
            push(task)
        self._feed()

    def _on_cancel(self, event: CancelRequested) -> None:
        answered: list[ResultItem] = []
        to_kill: dict[int, int] = {}  # processor number -> its running task, killed once every id is placed
        for task_id in dict.fromkeys(event.task_ids):
            if self._queue.remove(task_id) is not None:
                answered.append(cancelled_item(task_id))
                continue
            processor = self.holder_of(task_id)
            if processor is None:
                # Already answered or returned, or never here: the scheduler still waits for an answer.
                answered.append(cancelled_item(task_id))
            elif event.running.get(processor.number, NOTHING_RUNNING).task_id == task_id:
                to_kill[processor.number] = task_id
            else:
                self._out.append(CancelOnProcessor(processor.number, [task_id]))
                self._cancel_deadlines[task_id] = event.now + self.settings.cancel_grace_seconds
        if answered:
            self._out.append(SendResults(answered, []))
        for number, task_id in to_kill.items():
            # Its other cancelled tasks end with it, answered once.
            self._kill(self._processors[number], task_id, TaskStatus.CANCELLED, None)

    def _on_withdraw(self, event: WithdrawRequested) -> None:
        returned = [task_id for task_id in event.task_ids if self._queue.remove(task_id) is not None]
        returned_ids = set(returned)
        kept = [task_id for task_id in event.task_ids if task_id not in returned_ids]
        self._out.append(SendTasksReturned(returned, kept))

    def _on_objects_deleted(self, event: ObjectsDeleted) -> None:
        object_ids = event.object_ids
        for object_id in object_ids:
            self._objects.pop(object_id, None)
        self._out.append(TrimMemory())
        for processor in self._processors.values():
            held = [object_id for object_id in object_ids if object_id in processor.held]
            if held:
                processor.held.difference_update(held)
                self._out.append(DeleteOnProcessor(processor.number, held))

    def _on_tick(self, event: Tick) -> None:
        """Stop a processor whose running task was cancelled past its grace, or ran past the task timeout."""
        deadlines = self._cancel_deadlines
        timeout = self.settings.task_timeout_seconds
        if not deadlines and timeout <= 0:
            return
        now = event.now
        for processor in list(self._processors.values()):
            running = event.running.get(processor.number)
            if running is None or running.task_id not in processor.in_flight:
                continue
            task_id = running.task_id
            deadline = deadlines.get(task_id)
            if deadline is not None and now >= deadline:
                self._kill(processor, task_id, TaskStatus.CANCELLED, None)
            elif timeout > 0 and now - running.started_at > timeout:
                message = f"the task ran for more than the task timeout of {timeout:g} seconds".encode()
                self._kill(processor, task_id, TaskStatus.TIMED_OUT, message)

    # ------------------------------------------------------------------ processors

    def _start_processor(self) -> None:
        self._last_processor += 1
        number = self._last_processor
        self._processors[number] = ProcessorState(number)
        self._out.append(StartProcessor(number))

    def _ensure_processor(self) -> None:
        """Start a processor unless one takes tasks or is starting."""
        for processor in self._processors.values():
            if processor.takes_tasks or processor.starting:
                return
        self._start_processor()

    def _active_processor(self) -> ProcessorState | None:
        """The processor new tasks go to: the first one that takes tasks."""
        for processor in self._processors.values():
            if processor.takes_tasks:
                return processor
        return None

    def _on_processor_ready(self, event: ProcessorReady) -> None:
        processor = self._processors.get(event.processor)
        if processor is None:
            return
        processor.ready = True
        self._feed()

    def _on_processor_results(self, event: ProcessorResults) -> None:
        processor = self._processors.get(event.processor)
        if processor is None:  # killed: its tasks were settled then
            return
        in_flight = processor.in_flight
        observe = self._durations.observe
        forward: list[ResultItem] = []
        for item in event.items:
            task = in_flight.pop(item[_RESULT_TASK_ID], None)
            if task is None:
                continue
            forward.append(item)
            if len(item) > _RUN_SECONDS:
                observe(task[_FUNCTION_ID], item[_RUN_SECONDS])
        deadlines = self._cancel_deadlines
        if deadlines:
            for item in forward:
                deadlines.pop(item[_RESULT_TASK_ID], None)
        if forward:
            self._out.append(SendResults(forward, event.frames))
        self._retire_idle_processors()
        self._feed()

    def _on_processor_suspended(self, event: ProcessorSuspended) -> None:
        """The running task waits on nested tasks: its processor's other tasks go to another processor."""
        processor = self._processors.get(event.processor)
        if processor is None:
            return
        processor.suspended = event.task_id
        if event.task_id in processor.in_flight:  # its core is free while it waits: the scheduler may send more
            self._out.append(SendTaskSuspended(event.task_id, True))
        waiting = [task_id for task_id in processor.in_flight if task_id != event.task_id]
        if waiting:
            self._out.append(DropOnProcessor(processor.number, waiting))
            cancelled: list[ResultItem] = []
            for task_id in reversed(waiting):
                task = processor.in_flight.pop(task_id)
                if self._cancel_deadlines.pop(task_id, None) is not None:
                    cancelled.append(cancelled_item(task_id))
                else:
                    self._queue.push(task, front=True)
            if cancelled:
                self._out.append(SendResults(cancelled, []))
        self._ensure_processor()
        self._feed()

    def _on_processor_resumed(self, event: ProcessorResumed) -> None:
        processor = self._processors.get(event.processor)
        if processor is not None and processor.suspended is not None:
            if processor.suspended in processor.in_flight:
                self._out.append(SendTaskSuspended(processor.suspended, False))
            processor.suspended = None

    def _on_processor_exited(self, event: ProcessorExited) -> None:
        processor = self._processors.get(event.processor)
        if processor is None:  # killed by the agent: settled then
            return
        if processor.retiring:
            del self._processors[processor.number]
            return
        self._out.append(LogWarning(f"processor {event.pid} died ({event.description})"))
        blamed = event.running_task
        message = f"the processor running task {blamed:#x} died: {event.description}".encode()
        self._end_processor(processor, blamed, TaskStatus.PROCESSOR_DIED, message)

    def _retire_idle_processors(self) -> None:
        """Keep one processor that takes tasks; the extra idle ones exit."""
        first = True
        for processor in self._processors.values():
            if not processor.takes_tasks:
                continue
            if first:
                first = False
            elif not processor.in_flight:
                processor.retiring = True
                self._out.append(RetireProcessor(processor.number))

    def _kill(self, processor: ProcessorState, task_id: int, status: int, message: bytes | None) -> None:
        """Kill a processor because of its running task: that task ends with ``status``, the others re-queue."""
        self._out.append(KillProcessor(processor.number))
        self._end_processor(processor, task_id, status, message)

    def _end_processor(self, processor: ProcessorState, blamed: int, status: int, message: bytes | None) -> None:
        """Settle the tasks of a processor that is gone: the blamed one ends, cancelled ones end, others re-queue."""
        del self._processors[processor.number]
        results: list[ResultItem] = []
        for task_id in reversed(list(processor.in_flight)):
            task = processor.in_flight[task_id]
            cancel_pending = self._cancel_deadlines.pop(task_id, None) is not None
            if task_id == blamed:
                results.append([task_id, status, message, None])
            elif cancel_pending:
                results.append(cancelled_item(task_id))
            else:
                self._queue.push(task, front=True)
        processor.in_flight.clear()
        if results:
            self._out.append(SendResults(results, []))
        self._ensure_processor()
        self._feed()

    # ------------------------------------------------------------------ batching

    def _batch_size(self, function_id: bytes) -> int:
        """Tasks of ``function_id`` handed to a processor at once: a few milliseconds of work, at least one."""
        settings = self.settings
        limit = int(settings.prefetch_milliseconds / 1000 / max(self._durations.of(function_id), 1e-6))
        return max(1, min(limit, settings.prefetch_max))

    def _feed(self) -> None:
        """Top up the processor that takes tasks with a batch worth a few milliseconds of work.

        A task that takes longer than that goes alone, so it never waits inside a processor where the
        scheduler cannot take it back for an idle worker.
        """
        queue = self._queue
        if not queue:
            return
        processor = self._active_processor()
        if processor is None or processor.runs_suspect:
            return
        in_flight = processor.in_flight
        settings = self.settings
        head = queue.peek()
        assert head is not None
        if in_flight and self._batch_size(next(iter(in_flight.values()))[_FUNCTION_ID]) == 1:
            return  # nothing joins a long task: what waits stays here, where the scheduler can take it back
        room = self._batch_size(head[_FUNCTION_ID]) - len(in_flight)
        if room <= 0:
            return
        processor.suspect = 0  # any earlier suspect has ended (its id may come back as an ordinary task)
        held = processor.held
        writer = FrameWriter()
        object_items: list[list[object]] = []
        task_items: list[WireTask] = []
        started: list[int] = []
        suspect = False
        while room > 0:
            task = queue.pop()
            if task is None:
                break
            if task[_FUNCTION_ID] != head[_FUNCTION_ID] and self._batch_size(task[_FUNCTION_ID]) == 1:
                queue.push(task, front=True)  # a long task does not join a batch: it goes alone next time
                break
            if task[_FLAGS] & _SUSPECT:
                # Once ran when a worker died: it runs on an otherwise idle processor, so only it takes the blame.
                if in_flight:
                    queue.push(task, front=True)
                    break
                room = 1
                suspect = True
            room -= 1
            task_id = task[_TASK_ID]
            started.append(task_id)
            in_flight[task_id] = task
            if suspect:
                processor.suspect = task_id
            function_id = task[_FUNCTION_ID]
            if function_id not in held:
                self._hand_object(function_id, held, object_items, writer)
            serializer_id = task[_SERIALIZER_ID]
            if serializer_id is not None and serializer_id not in held:
                self._hand_object(serializer_id, held, object_items, writer)
            args = task[_ARGS]
            in_frames = False
            for kind, value in args:
                if kind == _OBJECT:
                    if value not in held:
                        self._hand_object(value, held, object_items, writer)
                elif kind == _INLINE and type(value) is not bytes:
                    in_frames = True
            if in_frames:  # payloads that travel as frames get references into this batch's frames
                task = list(task)
                task[_ARGS] = [[kind, writer.add(value) if kind == _INLINE else value] for kind, value in args]
            task_items.append(task)
        if not started:
            return
        # Told before the processor can run them, so a task that kills this worker is known to the scheduler.
        self._out.append(SendTasksStarted(started))
        # A suspect may kill this agent at once: the notice gets time to leave first.
        delay = settings.suspect_dispatch_delay_seconds if suspect else 0.0
        self._out.append(RunBatch(processor.number, object_items, task_items, writer.frames, delay))

    def _hand_object(
        self, object_id: bytes, held: set[bytes], object_items: list[list[object]], writer: FrameWriter
    ) -> None:
        payload = self._objects.get(object_id)
        if payload is not None:
            held.add(object_id)
            object_items.append([object_id, writer.add(payload)])

    # ------------------------------------------------------------------ invariants

    def check_invariants(self) -> None:
        """Raise InvariantError naming every invariant the state breaks."""
        problems = list(self._broken_invariants())
        if problems:
            raise InvariantError("; ".join(problems))

    def _broken_invariants(self) -> Iterator[str]:
        places: dict[int, str] = {}

        def place(task_ids: Iterable[int], where: str) -> Iterator[str]:
            for task_id in task_ids:
                if task_id in places:
                    yield f"task {task_id:#x} is both {places[task_id]} and {where}"
                places[task_id] = where

        queued = self._queue.task_ids()
        if len(queued) != len(self._queue):
            yield f"the queue counts {len(self._queue)} tasks but yields {len(queued)}"
        yield from place(queued, "queued")
        for processor in self._processors.values():
            where = f"on processor {processor.number}"
            yield from place(processor.in_flight, where)
            for task_id, task in processor.in_flight.items():
                if task[_TASK_ID] != task_id:
                    yield f"in-flight entry {task_id:#x} {where} holds task {task[_TASK_ID]:#x}"
            if processor.in_flight and (not processor.ready or processor.retiring):
                yield f"processor {processor.number} has tasks in flight but takes none ({processor!r})"
            if processor.runs_suspect and len(processor.in_flight) != 1:
                yield f"suspect {processor.suspect:#x} does not run alone {where}"
            for task_id, task in processor.in_flight.items():
                if task[_FLAGS] & _SUSPECT and processor.suspect != task_id:
                    yield f"suspect task {task_id:#x} {where} was not handed over alone"
            if not processor.held <= self._objects.keys():
                yield f"processor {processor.number} holds objects the agent deleted"
        for task_id in self._cancel_deadlines:
            if not places.get(task_id, "").startswith("on processor"):
                yield f"a cancel deadline for task {task_id:#x}, which no processor has in flight"
        if self._started and not any(p.takes_tasks or p.starting for p in self._processors.values()):
            yield f"no processor takes tasks or is starting: {list(self._processors.values())}"
