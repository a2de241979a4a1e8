"""The worker agent's I/O shell: sockets, processes and timers around its state machine.

The agent never runs user code. Every decision (what to batch to which processor, whom to blame when a
processor dies, when to stop a cancelled or overdue task) is taken by the pure state machine in
scaler/worker/agent_machine.py. This shell turns each message, timer and process exit into an event for
it and carries out the instructions it returns: send bytes, start and kill processes, arm timers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket as socket_module
import time
import uuid
from collections.abc import Callable
from typing import Any

import psutil
import zmq

from scaler import version
from scaler.io.async_socket import AsyncSocket
from scaler.protocol import versions
from scaler.protocol.codec import MalformedMessage, decode, encode
from scaler.protocol.messages import HeartbeatField, MessageType, WorkerConnectField
from scaler.security import Security, apply_client, set_process_default
from scaler.utility.process_guard import trim_memory
from scaler.worker import agent_wire
from scaler.worker.agent_events import (
    AgentStarted,
    CancelRequested,
    Event,
    ProcessorExited,
    ProcessorReady,
    ProcessorResumed,
    ReconnectRequested,
    Refused,
    Running,
    SchedulerAccepted,
    SchedulerStopping,
    ShutdownRequested,
    Tick,
)
from scaler.worker.agent_instructions import (
    CancelOnProcessor,
    DeleteOnProcessor,
    DropOnProcessor,
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
from scaler.worker.agent_machine import AgentMachine, AgentSettings
from scaler.worker.config import WorkerConfig
from scaler.worker.processor_handle import ProcessorHandle

logger = logging.getLogger(__name__)

# Seconds between two ticks of the machine (task timeouts and cancel deadlines are checked on ticks).
_TICK_INTERVAL_SECONDS = 0.05
# Seconds of silence from the scheduler between two warnings in the log (and before the first).
_SILENCE_WARNING_SECONDS = 5.0
# Seconds after an object delete before memory is trimmed, once ZeroMQ has released the frames.
_TRIM_DELAY_SECONDS = 0.05


class WorkerAgent:
    """One worker: a DEALER to the scheduler, a socketpair to each processor, and the state machine between."""

    def __init__(self, config: WorkerConfig, context: zmq.Context) -> None:
        self.config = config
        self._context = context
        hostname = socket_module.gethostname()
        self.name = config.name or f"{hostname}-{os.getpid()}"
        self.identity = f"W|{self.name}|{uuid.uuid4().hex[:8]}".encode()
        self._hostname = hostname
        self._machine = AgentMachine(AgentSettings.from_config(config))
        self._handles: dict[int, ProcessorHandle] = {}  # every processor process not yet reaped, by number
        self._last_contact = time.monotonic()
        self._stopped = asyncio.Event()
        self._exit_reason = "stopped"
        self.failed = False  # stopped by the death timeout or a refusal rather than asked to: exit status 1
        self._connected = False
        self._last_silence_warning = 0.0
        self._process = psutil.Process()
        self._process.cpu_percent()
        self._scheduler: AsyncSocket | None = None
        self._executors: dict[type, Callable[[Any], None]] = {
            SendConnect: self._send_connect,
            SendTasksStarted: self._send_tasks_started,
            SendTaskSuspended: self._send_task_suspended,
            SendResults: self._send_results,
            SendTasksReturned: self._send_tasks_returned,
            StartProcessor: self._start_processor,
            RunBatch: self._run_batch,
            CancelOnProcessor: self._cancel_on_processor,
            DropOnProcessor: self._drop_on_processor,
            DeleteOnProcessor: self._delete_on_processor,
            RetireProcessor: self._retire_processor,
            KillProcessor: self._kill_processor,
            TrimMemory: self._trim_memory,
            LogWarning: self._log_warning,
            StopAgent: self._stop_agent,
        }
        self._scheduler_handlers: dict[MessageType, Callable[[list[Any], list[Any]], Event | None]] = {
            MessageType.TASK_ASSIGN: agent_wire.parse_assign,
            MessageType.TASK_CANCEL: self._cancel_event,
            MessageType.TASK_WITHDRAW: agent_wire.parse_withdraw,
            MessageType.OBJECT_DELETE: agent_wire.parse_object_delete,
            MessageType.WORKER_SHUTDOWN: lambda f, fr: ShutdownRequested(),
            MessageType.WORKER_RECONNECT: lambda f, fr: ReconnectRequested(),
            MessageType.WORKER_ACCEPT: self._accepted_event,
            MessageType.SCHEDULER_STOPPING: lambda f, fr: SchedulerStopping(agent_wire.parse_reason(f)),
            MessageType.WORKER_REFUSED: lambda f, fr: Refused(agent_wire.parse_reason(f)),
            MessageType.HEARTBEAT_ECHO: lambda f, fr: None,
        }

    # ------------------------------------------------------------------ life cycle

    async def run(self) -> str:
        """Serve until stopped; returns why the agent stopped."""
        loop = asyncio.get_running_loop()
        dealer = self._context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.IPV6, 1)  # IPv6 addresses as well as IPv4 ones
        dealer.setsockopt(zmq.IDENTITY, self.identity)
        dealer.setsockopt(zmq.SNDHWM, 0)
        dealer.setsockopt(zmq.RCVHWM, 0)
        dealer.setsockopt(zmq.LINGER, 1000)
        security = Security.from_settings(self.config)
        if security is not None:
            apply_client(dealer, security)
        set_process_default(security)  # nested clients in this worker's (forked) processors use its keys
        dealer.connect(self.config.scheduler_address)
        self._scheduler = AsyncSocket(dealer, self._on_scheduler_message, f"agent {self.name}")
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop, f"received {signal.Signals(signum).name}")
        self._apply(AgentStarted())
        routines = [
            asyncio.create_task(self._every(self.config.heartbeat_interval_seconds, self._heartbeat)),
            asyncio.create_task(self._every(_TICK_INTERVAL_SECONDS, self._tick)),
            asyncio.create_task(self._every(1.0, self._check_scheduler_alive)),
        ]
        try:
            await self._stopped.wait()
        finally:
            for routine in routines:
                routine.cancel()
            await asyncio.gather(*routines, return_exceptions=True)
            self._shutdown_processors()
            self._scheduler.send(encode(MessageType.WORKER_DISCONNECT))
            self._scheduler.close(linger_ms=500)
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        logger.info("worker %s stopped: %s", self.name, self._exit_reason)
        return self._exit_reason

    def stop(self, reason: str = "stopped", failed: bool = False) -> None:
        """Ask the agent to stop; ``failed``: it stops on its own because something is wrong (exit status 1)."""
        if not self._stopped.is_set():
            self._exit_reason = reason
            self.failed = failed
            self._stopped.set()

    async def _every(self, seconds: float, routine: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                routine()
            except Exception:
                logger.exception("worker %s: periodic routine failed", self.name)

    def _apply(self, event: Event) -> None:
        """Hand one event to the machine and carry out its instructions in order."""
        executors = self._executors
        for instruction in self._machine.handle(event):
            executors[type(instruction)](instruction)

    def _running(self) -> dict[int, Running]:
        """What each processor runs now, read from the memory it shares with the agent."""
        return {number: handle.running() for number, handle in self._handles.items()}

    # ------------------------------------------------------------------ events

    def _on_scheduler_message(self, parts: list[Any]) -> None:
        try:
            msg_type, fields, frames = decode(parts)
        except MalformedMessage as exc:
            logger.warning("worker %s: dropped a malformed message from the scheduler: %s", self.name, exc)
            return
        self._last_contact = time.monotonic()
        parse = self._scheduler_handlers.get(msg_type)
        if parse is None:
            logger.warning("worker %s: unexpected %s from the scheduler", self.name, msg_type.name)
            return
        try:
            event = parse(fields, frames)
        except MalformedMessage as exc:
            logger.warning("worker %s: dropped a malformed %s: %s", self.name, msg_type.name, exc)
            return
        if event is not None:
            self._apply(event)

    def _cancel_event(self, fields: list[Any], frames: list[Any]) -> CancelRequested:
        return CancelRequested(agent_wire.parse_task_ids(fields, "TASK_CANCEL"), time.monotonic(), self._running())

    def _on_processor_message(self, number: int, parts: list[Any]) -> None:
        msg_type, fields, frames = decode(parts)
        event: Event
        if msg_type is MessageType.PROCESSOR_RESULTS:
            event = agent_wire.parse_processor_results(number, fields, frames)
        elif msg_type is MessageType.PROCESSOR_READY:
            event = ProcessorReady(number)
        elif msg_type is MessageType.PROCESSOR_SUSPENDED:
            event = agent_wire.parse_processor_suspended(number, fields)
        elif msg_type is MessageType.PROCESSOR_RESUMED:
            event = ProcessorResumed(number)
        elif msg_type is MessageType.TASK_OUTPUT:
            # Printed lines take no decision: they go on to the scheduler as they came.
            self._send_scheduler(encode(MessageType.TASK_OUTPUT, fields))
            return
        else:
            logger.warning("worker %s: unexpected %s from processor %d", self.name, msg_type.name, number)
            return
        self._apply(event)

    def _on_processor_exit(self, number: int) -> None:
        handle = self._handles[number]
        asyncio.get_running_loop().remove_reader(handle.sentinel)
        # Results the processor sent before it ended may still wait in the socket: they come first (and what
        # the machine sends it meanwhile is lost with it, then settled by the exit event).
        handle.stream.drain_now()
        handle.stream.close()
        del self._handles[number]
        running_task = handle.running_task()
        description = handle.exit_description()
        self._apply(ProcessorExited(number, running_task, description, handle.pid))

    def _tick(self) -> None:
        self._apply(Tick(time.monotonic(), self._running()))

    def _heartbeat(self) -> None:
        agent_cpu = self._process.cpu_percent()
        agent_rss = self._process.memory_info().rss
        cpu, rss = agent_cpu, agent_rss
        figures: list[list[Any]] = []
        processors = self._machine.processors
        for number in processors:
            handle = self._handles.get(number)
            if handle is not None:
                processor_cpu, processor_rss = handle.figures()
                cpu += processor_cpu
                rss += processor_rss
                figures.append([handle.pid, processor_cpu, processor_rss, handle.running_task() != 0])
        fields: list[Any] = [None] * len(HeartbeatField)
        fields[HeartbeatField.CPU_PERCENT] = cpu
        fields[HeartbeatField.RSS_BYTES] = rss
        fields[HeartbeatField.QUEUED] = self._machine.task_count
        fields[HeartbeatField.PROCESSORS] = len(processors)
        fields[HeartbeatField.AGENT_CPU_PERCENT] = agent_cpu
        fields[HeartbeatField.AGENT_RSS_BYTES] = agent_rss
        fields[HeartbeatField.PROCESSOR_FIGURES] = figures
        self._send_scheduler(encode(MessageType.WORKER_HEARTBEAT, fields))

    def _accepted_event(self, fields: list[Any], frames: list[Any]) -> Event:
        refusal = versions.mismatch(
            f"scheduler at {self.config.scheduler_address}", agent_wire.parse_accept_version(fields), "this worker"
        )
        if refusal is not None:
            return Refused(refusal)
        if not self._connected:
            logger.info("worker %s connected to the scheduler at %s", self.name, self.config.scheduler_address)
        self._connected = True
        return SchedulerAccepted()

    def _check_scheduler_alive(self) -> None:
        now = time.monotonic()
        silent = now - self._last_contact
        if silent > self.config.death_timeout_seconds:
            self.stop(f"no word from the scheduler for {silent:.0f} s (death timeout)", failed=True)
            return
        quiet_limit = max(_SILENCE_WARNING_SECONDS, 2 * self.config.heartbeat_interval_seconds)
        if silent > quiet_limit and now - self._last_silence_warning >= _SILENCE_WARNING_SECONDS:
            self._last_silence_warning = now
            self._connected = False
            logger.warning(
                "worker %s: no answer from the scheduler at %s for %.0f s (the worker exits after %g s)",
                self.name,
                self.config.scheduler_address,
                silent,
                self.config.death_timeout_seconds,
            )

    # ------------------------------------------------------------------ instructions

    def _send_scheduler(self, parts: list[Any]) -> None:
        assert self._scheduler is not None
        self._scheduler.send(parts)

    def _send_connect(self, instruction: SendConnect) -> None:
        message: list[Any] = [None] * len(WorkerConnectField)
        message[WorkerConnectField.NAME] = self.name
        message[WorkerConnectField.PID] = os.getpid()
        message[WorkerConnectField.HOSTNAME] = self._hostname
        message[WorkerConnectField.PER_WORKER_QUEUE_SIZE] = self.config.per_worker_queue_size
        message[WorkerConnectField.VERSION] = version.__version__
        self._send_scheduler(encode(MessageType.WORKER_CONNECT, message))

    def _send_tasks_started(self, instruction: SendTasksStarted) -> None:
        self._send_scheduler(encode(MessageType.TASKS_STARTED, instruction.task_ids))

    def _send_task_suspended(self, instruction: SendTaskSuspended) -> None:
        self._send_scheduler(encode(MessageType.TASK_SUSPENDED, [instruction.task_id, instruction.suspended]))

    def _send_results(self, instruction: SendResults) -> None:
        self._send_scheduler(encode(MessageType.TASK_RESULTS, instruction.items, instruction.frames))

    def _send_tasks_returned(self, instruction: SendTasksReturned) -> None:
        self._send_scheduler(encode(MessageType.TASKS_RETURNED, [instruction.returned, instruction.kept]))

    def _start_processor(self, instruction: StartProcessor) -> None:
        number = instruction.processor
        handle = ProcessorHandle(number, self.config, lambda parts: self._on_processor_message(number, parts))
        handle.start()
        self._handles[number] = handle
        asyncio.get_running_loop().add_reader(handle.sentinel, self._on_processor_exit, number)

    def _run_batch(self, instruction: RunBatch) -> None:
        handle = self._handles[instruction.processor]
        message = encode(MessageType.PROCESSOR_RUN, [instruction.objects, instruction.tasks], instruction.frames)
        if instruction.delay_seconds > 0:
            asyncio.get_running_loop().call_later(instruction.delay_seconds, handle.stream.send, message)
        else:
            handle.stream.send(message)

    def _cancel_on_processor(self, instruction: CancelOnProcessor) -> None:
        self._handles[instruction.processor].stream.send(encode(MessageType.TASK_CANCEL, instruction.task_ids))

    def _drop_on_processor(self, instruction: DropOnProcessor) -> None:
        self._handles[instruction.processor].stream.send(encode(MessageType.PROCESSOR_DROP, instruction.task_ids))

    def _delete_on_processor(self, instruction: DeleteOnProcessor) -> None:
        self._handles[instruction.processor].stream.send(encode(MessageType.OBJECT_DELETE, instruction.object_ids))

    def _retire_processor(self, instruction: RetireProcessor) -> None:
        self._handles[instruction.processor].stream.send(encode(MessageType.WORKER_SHUTDOWN))

    def _kill_processor(self, instruction: KillProcessor) -> None:
        # The handle stays until its exit is seen, so the process is reaped and its socket closed then.
        self._handles[instruction.processor].kill()

    def _trim_memory(self, instruction: TrimMemory) -> None:
        asyncio.get_running_loop().call_later(_TRIM_DELAY_SECONDS, trim_memory)

    def _log_warning(self, instruction: LogWarning) -> None:
        logger.warning("worker %s: %s", self.name, instruction.text)

    def _stop_agent(self, instruction: StopAgent) -> None:
        if instruction.failed:
            logger.error("worker %s: %s", self.name, instruction.reason)
        self.stop(instruction.reason, instruction.failed)

    def _shutdown_processors(self) -> None:
        loop = asyncio.get_running_loop()
        for handle in self._handles.values():
            loop.remove_reader(handle.sentinel)
            handle.kill()
        for handle in self._handles.values():
            handle.process.join(timeout=2)
            handle.stream.close()
        self._handles.clear()
