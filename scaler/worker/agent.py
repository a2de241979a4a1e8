"""The worker agent: speaks to the scheduler, queues tasks, and feeds them to its processor.

The agent never runs user code. It hands its processor a batch sized to a few milliseconds of
work, forwards results as they come, stops a processor whose task is cancelled or overdue, and
starts a fresh one when a processor dies, blaming the task that was running.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket as socket_module
import time
import uuid
from typing import Any

import psutil
import zmq

from scaler.io.async_socket import AsyncSocket
from scaler.protocol.checks import resolve_object_items
from scaler.protocol.codec import FrameWriter, MalformedMessage, Payload, decode, encode
from scaler.protocol.messages import ArgumentKind, MessageType, TaskFlag, TaskStatus, WorkerTaskField
from scaler.utility.process_guard import trim_memory
from scaler.worker.config import WorkerConfig
from scaler.worker.processor_handle import ProcessorHandle
from scaler.worker.task_queue import AgentTaskQueue

logger = logging.getLogger(__name__)

_SUSPECT = int(TaskFlag.SUSPECT)
# Seconds between telling the scheduler a suspect task starts and handing it to its processor.
_SUSPECT_DISPATCH_DELAY_SECONDS = 0.002
# Seconds between two checks of running tasks against the task timeout and pending cancels.
_WATCH_INTERVAL_SECONDS = 0.05
# Seconds a processor gets to drop a cancelled task from its inbox before it is stopped anyway.
_CANCEL_GRACE_SECONDS = 0.1


class WorkerAgent:
    """One worker: a DEALER to the scheduler and a ROUTER to its processors."""

    def __init__(self, config: WorkerConfig, context: zmq.Context) -> None:
        self.config = config
        self._context = context
        hostname = socket_module.gethostname()
        self.name = config.name or f"{hostname}-{os.getpid()}"
        self.identity = f"W|{self.name}|{uuid.uuid4().hex[:8]}".encode()
        self._hostname = hostname
        self._queue = AgentTaskQueue()
        self._objects: dict[bytes, Payload] = {}
        self._processors: list[ProcessorHandle] = []
        self._processor_number = 0
        self._cancel_deadlines: dict[int, float] = {}
        self._seconds_per_task = 0.001
        self._last_contact = time.monotonic()
        self._stopped = asyncio.Event()
        self._exit_reason = "stopped"
        self._accepted = False  # WORKER_ACCEPT received for the latest WORKER_CONNECT
        self._process = psutil.Process()
        self._process.cpu_percent()
        self._scheduler: AsyncSocket | None = None

    # ------------------------------------------------------------------ life cycle

    async def run(self) -> str:
        """Serve until stopped; returns why the agent stopped."""
        loop = asyncio.get_running_loop()
        dealer = self._context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.IDENTITY, self.identity)
        dealer.setsockopt(zmq.SNDHWM, 0)
        dealer.setsockopt(zmq.RCVHWM, 0)
        dealer.setsockopt(zmq.LINGER, 1000)
        dealer.connect(self.config.scheduler_address)
        self._scheduler = AsyncSocket(dealer, self._on_scheduler_message, f"agent {self.name}")
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop, f"received {signal.Signals(signum).name}")
        self._start_processor()
        self._connect()
        routines = [
            asyncio.create_task(self._every(self.config.heartbeat_interval_seconds, self._heartbeat)),
            asyncio.create_task(self._every(_WATCH_INTERVAL_SECONDS, self._watch_running_tasks)),
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

    def stop(self, reason: str = "stopped") -> None:
        """Ask the agent to stop."""
        if not self._stopped.is_set():
            self._exit_reason = reason
            self._stopped.set()

    async def _every(self, seconds: float, routine: Any) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                routine()
            except Exception:
                logger.exception("worker %s: periodic routine failed", self.name)

    def _connect(self) -> None:
        self._accepted = False
        message = [self.name, os.getpid(), self._hostname, self.config.per_worker_queue_size]
        self._send_scheduler(encode(MessageType.WORKER_CONNECT, message))

    def _send_scheduler(self, parts: list[Any]) -> None:
        assert self._scheduler is not None
        self._scheduler.send(parts)

    # ------------------------------------------------------------------ scheduler messages

    def _on_scheduler_message(self, parts: list[Any]) -> None:
        try:
            msg_type, fields, frames = decode(parts)
        except MalformedMessage as exc:
            logger.warning("worker %s: dropped a malformed message from the scheduler: %s", self.name, exc)
            return
        self._last_contact = time.monotonic()
        if msg_type is MessageType.TASK_ASSIGN:
            self._on_assign(fields, frames)
        elif msg_type is MessageType.TASK_CANCEL:
            self._on_cancel(fields)
        elif msg_type is MessageType.TASK_WITHDRAW:
            returned = [task_id for task_id in fields if self._queue.remove(task_id) is not None]
            returned_ids = set(returned)
            kept = [task_id for task_id in fields if task_id not in returned_ids]
            self._send_scheduler(encode(MessageType.TASKS_RETURNED, [returned, kept]))
        elif msg_type is MessageType.OBJECT_DELETE:
            self._on_object_delete(fields)
        elif msg_type is MessageType.WORKER_SHUTDOWN:
            self.stop("the scheduler shut the cluster down")
        elif msg_type is MessageType.WORKER_RECONNECT:
            # One answer per message sent while unknown; those arriving before WORKER_ACCEPT predate the reconnect.
            if self._accepted:
                self._reset("the scheduler did not know this worker")
        elif msg_type is MessageType.WORKER_ACCEPT:
            self._accepted = True
        elif msg_type is MessageType.HEARTBEAT_ECHO:
            pass
        else:
            logger.warning("worker %s: unexpected %s from the scheduler", self.name, msg_type.name)

    def _on_assign(self, fields: list[Any], frames: list[Any]) -> None:
        for object_id, payload in resolve_object_items(fields[0], frames):
            self._objects[object_id] = payload
        for task in fields[1]:
            if frames:
                for arg in task[WorkerTaskField.ARGS]:
                    if arg[0] == ArgumentKind.INLINE and type(arg[1]) is int:
                        arg[1] = frames[arg[1]]
            self._queue.push(task)
        self._feed()

    def _on_cancel(self, task_ids: list[int]) -> None:
        cancelled: list[list[Any]] = []
        for task_id in task_ids:
            if self._queue.remove(task_id) is not None:
                cancelled.append([task_id, TaskStatus.CANCELLED, None, None])
                continue
            handle = self._holder_of(task_id)
            if handle is None:
                continue
            if handle.running_task() == task_id:
                self._stop_processor(handle, task_id, TaskStatus.CANCELLED, None)
            else:
                handle.stream.send(encode(MessageType.TASK_CANCEL, [task_id]))
                self._cancel_deadlines[task_id] = time.monotonic() + _CANCEL_GRACE_SECONDS
        if cancelled:
            self._send_scheduler(encode(MessageType.TASK_RESULTS, cancelled))

    def _on_object_delete(self, object_ids: list[bytes]) -> None:
        for object_id in object_ids:
            self._objects.pop(object_id, None)
        asyncio.get_running_loop().call_later(0.05, trim_memory)  # once ZeroMQ has released the frames
        for handle in self._processors:
            held = [o for o in object_ids if o in handle.held]
            if held:
                handle.held.difference_update(held)
                handle.stream.send(encode(MessageType.OBJECT_DELETE, held))

    def _reset(self, reason: str) -> None:
        logger.warning("worker %s: dropping all tasks and reconnecting: %s", self.name, reason)
        self._queue.clear()
        self._objects.clear()
        for handle in list(self._processors):
            handle.in_flight.clear()
            handle.kill()
        self._processors.clear()
        self._start_processor()
        self._connect()

    # ------------------------------------------------------------------ processors

    def _start_processor(self) -> ProcessorHandle:
        self._processor_number += 1
        handle = ProcessorHandle(
            self._processor_number, self.config, lambda parts: self._on_processor_message(handle, parts)
        )
        handle.start()
        self._processors.append(handle)
        asyncio.get_running_loop().add_reader(handle.sentinel, self._on_processor_exit, handle)
        return handle

    def _active_processor(self) -> ProcessorHandle | None:
        """The processor new tasks go to: the first one that is ready and not waiting on nested tasks."""
        for handle in self._processors:
            if handle.ready and not handle.suspended and not handle.stopping:
                return handle
        return None

    def _feed(self) -> None:
        """Top up the active processor with a batch worth a few milliseconds of work."""
        if not self._queue:
            return
        handle = self._active_processor()
        if handle is None:
            return
        limit = int(self.config.prefetch_milliseconds / 1000 / max(self._seconds_per_task, 1e-6))
        limit = max(2, min(limit, self.config.prefetch_max))
        room = limit - len(handle.in_flight)
        if room <= 0:
            return
        writer = FrameWriter()
        object_items: list[list[Any]] = []
        task_items: list[list[Any]] = []
        started: list[int] = []
        suspect = False
        while room > 0:
            task = self._queue.pop()
            if task is None:
                break
            if task[WorkerTaskField.FLAGS] & _SUSPECT:
                # Once ran when a worker died: it runs on an otherwise idle processor, so only it takes the blame.
                if started or handle.in_flight:
                    self._queue.push(task, front=True)
                    break
                room = 1
                suspect = True
            room -= 1
            task_id = task[WorkerTaskField.TASK_ID]
            started.append(task_id)
            handle.in_flight[task_id] = task
            for object_id in self._objects_of(task):
                if object_id not in handle.held:
                    payload = self._objects.get(object_id)
                    if payload is not None:
                        handle.held.add(object_id)
                        object_items.append([object_id, writer.add(payload)])
            args = task[WorkerTaskField.ARGS]
            if any(kind == ArgumentKind.INLINE and type(value) is not bytes for kind, value in args):
                task = list(task)
                task[WorkerTaskField.ARGS] = [
                    [kind, writer.add(value) if kind == ArgumentKind.INLINE else value] for kind, value in args
                ]
            task_items.append(task)
        if not started:
            return
        # Told before the processor can run them, so a task that kills this worker is known to the scheduler.
        self._send_scheduler(encode(MessageType.TASKS_STARTED, started))
        message = encode(MessageType.PROCESSOR_RUN, [object_items, task_items], writer.frames)
        if suspect:
            # A suspect may kill this agent at once: give ZeroMQ's I/O thread time to send the notice first.
            asyncio.get_running_loop().call_later(_SUSPECT_DISPATCH_DELAY_SECONDS, handle.stream.send, message)
        else:
            handle.stream.send(message)

    @staticmethod
    def _objects_of(task: list[Any]) -> list[bytes]:
        ids = [task[WorkerTaskField.FUNCTION_ID]]
        if task[WorkerTaskField.SERIALIZER_ID] is not None:
            ids.append(task[WorkerTaskField.SERIALIZER_ID])
        ids.extend(value for kind, value in task[WorkerTaskField.ARGS] if kind == ArgumentKind.OBJECT)
        return ids

    def _on_processor_message(self, handle: ProcessorHandle, parts: list[Any]) -> None:
        if handle not in self._processors:
            return
        msg_type, fields, frames = decode(parts)
        if msg_type is MessageType.PROCESSOR_RESULTS:
            self._on_processor_results(handle, fields, frames)
        elif msg_type is MessageType.PROCESSOR_READY:
            handle.ready = True
            self._feed()
        elif msg_type is MessageType.PROCESSOR_SUSPENDED:
            self._on_processor_suspended(handle, fields[0])
        elif msg_type is MessageType.PROCESSOR_RESUMED:
            handle.suspended = False

    def _on_processor_results(self, handle: ProcessorHandle, fields: list[Any], frames: list[Any]) -> None:
        busy_seconds, items = fields
        in_flight = handle.in_flight
        forward = [item for item in items if in_flight.pop(item[0], None) is not None]
        for item in forward:
            self._cancel_deadlines.pop(item[0], None)
        if items:
            sample = busy_seconds / len(items)
            self._seconds_per_task = 0.8 * self._seconds_per_task + 0.2 * sample
        if forward:
            self._send_scheduler(encode(MessageType.TASK_RESULTS, forward, frames))
        self._retire_idle_processors()
        self._feed()

    def _on_processor_suspended(self, handle: ProcessorHandle, task_id: int) -> None:
        """The running task waits on nested tasks: give its queued work to another processor."""
        handle.suspended = True
        waiting = [t for t in handle.in_flight if t != task_id]
        if waiting:
            handle.stream.send(encode(MessageType.PROCESSOR_DROP, waiting))
            for other in reversed(waiting):
                self._queue.push(handle.in_flight.pop(other), front=True)
        if self._active_processor() is None and not any(not h.ready and not h.stopping for h in self._processors):
            self._start_processor()
        self._feed()

    def _retire_idle_processors(self) -> None:
        """Keep one processor that is not waiting on nested tasks; shut down the extra idle ones."""
        free = [h for h in self._processors if not h.suspended and not h.stopping and h.ready]
        for handle in free[1:]:
            if not handle.in_flight:
                handle.stopping = True
                handle.stream.send(encode(MessageType.WORKER_SHUTDOWN))

    def _holder_of(self, task_id: int) -> ProcessorHandle | None:
        for handle in self._processors:
            if task_id in handle.in_flight:
                return handle
        return None

    def _stop_processor(self, handle: ProcessorHandle, task_id: int, status: int, message: bytes | None) -> None:
        """Kill a processor because of its running task; that task ends with ``status``, the rest re-queue."""
        handle.kill()
        self._end_processor(handle, task_id, status, message)

    def _end_processor(self, handle: ProcessorHandle, blamed: int, status: int, message: bytes | None) -> None:
        if handle in self._processors:
            self._processors.remove(handle)
        results: list[list[Any]] = []
        for task_id in reversed(list(handle.in_flight)):
            task = handle.in_flight.pop(task_id)
            cancel_pending = self._cancel_deadlines.pop(task_id, None) is not None
            if task_id == blamed:
                results.append([task_id, status, message, None])
            elif cancel_pending:
                results.append([task_id, TaskStatus.CANCELLED, None, None])
            else:
                self._queue.push(task, front=True)
        if results:
            self._send_scheduler(encode(MessageType.TASK_RESULTS, results))
        if self._active_processor() is None and not any(not h.ready for h in self._processors):
            self._start_processor()
        self._feed()

    def _on_processor_exit(self, handle: ProcessorHandle) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(handle.sentinel)
        if handle.stopping:
            handle.stream.close()
            handle.process.join(timeout=1)
            if handle in self._processors:
                self._processors.remove(handle)
            return
        # Results the processor sent before it died may still wait in the socket: read them first.
        handle.stream.drain_now()
        handle.stream.close()
        blamed = handle.running_task()
        description = handle.exit_description()
        logger.warning("worker %s: processor %s died (%s)", self.name, handle.pid, description)
        message = f"the processor running task {blamed or 0:#x} died: {description}".encode()
        self._end_processor(handle, blamed, TaskStatus.PROCESSOR_DIED, message)

    # ------------------------------------------------------------------ periodic routines

    def _watch_running_tasks(self) -> None:
        timeout = self.config.task_timeout_seconds
        now = time.monotonic()
        for handle in list(self._processors):
            task_id = handle.running_task()
            if not task_id or handle.stopping:
                continue
            deadline = self._cancel_deadlines.get(task_id)
            if deadline is not None and now >= deadline:
                self._cancel_deadlines.pop(task_id, None)
                self._stop_processor(handle, task_id, TaskStatus.CANCELLED, None)
            elif timeout > 0 and handle.running_seconds() > timeout:
                message = f"the task ran for more than the task timeout of {timeout:g} seconds".encode()
                self._stop_processor(handle, task_id, TaskStatus.TIMED_OUT, message)
        for task_id, deadline in list(self._cancel_deadlines.items()):
            if now >= deadline + 1.0 and self._holder_of(task_id) is None:
                del self._cancel_deadlines[task_id]

    def _heartbeat(self) -> None:
        cpu = self._process.cpu_percent()
        rss = self._process.memory_info().rss
        for handle in self._processors:
            processor_cpu, processor_rss = handle.figures()
            cpu += processor_cpu
            rss += processor_rss
        queued = len(self._queue) + sum(len(h.in_flight) for h in self._processors)
        self._send_scheduler(encode(MessageType.WORKER_HEARTBEAT, [cpu, rss, queued, len(self._processors)]))

    def _check_scheduler_alive(self) -> None:
        silent = time.monotonic() - self._last_contact
        if silent > self.config.death_timeout_seconds:
            self.stop(f"no word from the scheduler for {silent:.0f} s (death timeout)")

    def _shutdown_processors(self) -> None:
        for handle in self._processors:
            handle.kill()
        for handle in self._processors:
            handle.process.join(timeout=2)
            handle.stream.close()
        self._processors.clear()
