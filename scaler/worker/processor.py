"""The processor: a process that runs the user's tasks, so a task that crashes takes only it down.

It receives batches of tasks from its agent, runs them one at a time in order, and sends results
back in batches. It writes the id and start time of the running task into memory shared with the
agent, which uses them to stop a cancelled or overdue task and to blame the right task when the
process dies.
"""

from __future__ import annotations

import collections
import gc
import logging
import os
import signal
import socket as socket_module
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import psutil

from scaler.errors import MissingObjects, SerializationError
from scaler.io.stream import BlockingStream
from scaler.protocol.checks import resolve_object_items
from scaler.protocol.codec import FrameWriter, Payload, decode, encode, payload_bytes, payload_view, resolve
from scaler.protocol.messages import ArgumentKind, MessageType, OutputStream, TaskFlag, TaskStatus, WorkerTaskField
from scaler.serializer import DefaultSerializer, Serializer
from scaler.task_context import ProcessorContext, set_current_processor
from scaler.utility.process_guard import die_with_parent, reset_inherited_signals, trim_memory
from scaler.worker.errors_wire import dump_exception
from scaler.worker.task_output import output_sent_home

logger = logging.getLogger(__name__)

SHARED_TASK_ID = 0  # index in the shared array: id of the running task, 0 when idle
SHARED_START_US = 1  # index in the shared array: monotonic start time of that task, microseconds
_PROFILING = int(TaskFlag.PROFILING)
_STREAM_OUTPUT = int(TaskFlag.STREAM_OUTPUT)


class ObjectStore:
    """Objects this processor received, kept as payloads until first used, then as values only."""

    def __init__(self) -> None:
        self.payloads: dict[bytes, Payload] = {}
        self._values: dict[bytes, Any] = {}  # an object has one owner, so one serializer
        self._serializers: dict[bytes, Serializer] = {}
        self.default_serializer = DefaultSerializer()

    def add(self, object_id: bytes, payload: Payload) -> None:
        self.payloads[object_id] = payload

    def delete(self, object_id: bytes) -> None:
        self.payloads.pop(object_id, None)
        self._serializers.pop(object_id, None)
        self._values.pop(object_id, None)

    def serializer(self, serializer_id: bytes | None) -> Serializer:
        """The serializer a client sent (itself serialized with cloudpickle), or the default."""
        if serializer_id is None:
            return self.default_serializer
        serializer = self._serializers.get(serializer_id)
        if serializer is None:
            payload = self._payload(serializer_id)
            serializer = self.default_serializer.deserialize(payload_view(payload))  # type: ignore[arg-type]
            self._serializers[serializer_id] = serializer
        return serializer

    def value(self, object_id: bytes, serializer_id: bytes | None) -> Any:
        """The object's value, deserialized once by its client's serializer and then cached."""
        try:
            return self._values[object_id]
        except KeyError:
            pass
        payload = self._payload(object_id)
        serializer = self.serializer(serializer_id)
        data = payload_view(payload) if serializer_id is None else payload_bytes(payload)
        value = serializer.deserialize(data)  # type: ignore[arg-type]
        del data
        self._values[object_id] = value
        del self.payloads[object_id]  # the value is all that is needed from now on: no second copy
        return value

    def _payload(self, object_id: bytes) -> Payload:
        try:
            return self.payloads[object_id]
        except KeyError:
            raise MissingObjects(f"object {object_id.hex()} is not on this worker (was it deleted?)") from None


class Processor:
    """Runs tasks received on one DEALER socket connected to the agent."""

    def __init__(
        self,
        socket: BlockingStream,
        shared: Any,
        garbage_collect_interval_seconds: float,
        trim_memory_threshold_bytes: int,
        result_flush_seconds: float,
    ) -> None:
        self._socket = socket
        self._shared = shared
        self._store = ObjectStore()
        self._pending: collections.deque[list[Any]] = collections.deque()
        self._results: list[list[Any]] = []
        self._writer = FrameWriter()
        self._last_flush = time.monotonic()
        self._flush_seconds = result_flush_seconds
        self._gc_interval = garbage_collect_interval_seconds
        self._last_gc = time.monotonic()
        self._trim_threshold = trim_memory_threshold_bytes
        self._process = psutil.Process()
        self._running = True

    def serve(self) -> None:
        """Receive and run tasks until the agent says to stop or goes away."""
        self._socket.send(encode(MessageType.PROCESSOR_READY, [os.getpid()]))
        while self._running:
            if not self._pending:
                self._flush()
                self._housekeeping()
                self._receive(block=True)
            else:
                self._receive(block=False)
            if self._pending:
                self._run_next()
                if time.monotonic() - self._last_flush >= self._flush_seconds:
                    self._flush()

    # ------------------------------------------------------------------ messages

    def _receive(self, block: bool) -> None:
        for parts in self._socket.read(block):
            msg_type, fields, frames = decode(parts)
            if msg_type is MessageType.PROCESSOR_RUN:
                for object_id, payload in resolve_object_items(fields[0], frames):
                    self._store.add(object_id, payload)
                for task in fields[1]:
                    args = task[WorkerTaskField.ARGS]
                    for arg in args:
                        if arg[0] == ArgumentKind.INLINE:
                            arg[1] = resolve(arg[1], frames)
                    self._pending.append(task)
            elif msg_type is MessageType.TASK_CANCEL:
                self._cancel(fields, report=True)
            elif msg_type is MessageType.PROCESSOR_DROP:
                self._cancel(fields, report=False)
            elif msg_type is MessageType.OBJECT_DELETE:
                for object_id in fields:
                    self._store.delete(object_id)
                # Deleted objects are often large: give their memory back to the system now.
                gc.collect()
                trim_memory()
            elif msg_type is MessageType.WORKER_SHUTDOWN:
                self._running = False
                return
        if self._socket.closed:  # the agent is gone
            self._running = False

    def _cancel(self, task_ids: list[int], report: bool) -> None:
        wanted = set(task_ids)
        kept: collections.deque[list[Any]] = collections.deque()
        for task in self._pending:
            if task[WorkerTaskField.TASK_ID] in wanted:
                if report:
                    self._results.append([task[WorkerTaskField.TASK_ID], TaskStatus.CANCELLED, None, None])
            else:
                kept.append(task)
        self._pending = kept

    def _flush(self) -> None:
        if self._results:
            message = encode(MessageType.PROCESSOR_RESULTS, [self._results], self._writer.frames)
            self._socket.send(message)
            self._results = []
            self._writer = FrameWriter()
        self._last_flush = time.monotonic()

    # ------------------------------------------------------------------ running

    def _run_next(self) -> None:
        task = self._pending.popleft()
        task_id = task[WorkerTaskField.TASK_ID]
        flags = task[WorkerTaskField.FLAGS]
        profiling = bool(flags & _PROFILING)
        start = time.monotonic()
        self._shared[SHARED_START_US] = int(start * 1_000_000)
        self._shared[SHARED_TASK_ID] = task_id
        if profiling:
            cpu_start = time.process_time()
            tracemalloc.start()
        if flags & _STREAM_OUTPUT:
            with output_sent_home(self._send_output, task_id):
                status, payload = self._execute(task)
        else:
            status, payload = self._execute(task)
        end = time.monotonic()
        self._shared[SHARED_TASK_ID] = 0
        profile = None
        if profiling:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            profile = [end - start, time.process_time() - cpu_start, peak]
        ref = None if payload is None else self._writer.add(payload)
        self._results.append([task_id, status, ref, profile, end - start])
        if end - start > self._flush_seconds:
            self._flush()

    def _send_output(self, task_id: int, stream: OutputStream, text: str) -> None:
        self._socket.send(encode(MessageType.TASK_OUTPUT, [[task_id, int(stream), text]]))

    def _execute(self, task: list[Any]) -> tuple[int, bytes | None]:
        serializer_id = task[WorkerTaskField.SERIALIZER_ID]
        store = self._store
        context = _processor_context
        if context is not None:
            context.task_id = task[WorkerTaskField.TASK_ID]
            context.task_priority = task[WorkerTaskField.PRIORITY]
        try:
            serializer = store.serializer(serializer_id)
            function: Callable[..., Any] = store.value(task[WorkerTaskField.FUNCTION_ID], serializer_id)
            if serializer_id is None:
                loads = serializer.deserialize
                args = [
                    loads(value if type(value) is bytes else payload_view(value))  # type: ignore[arg-type]
                    if kind == ArgumentKind.INLINE
                    else store.value(value, None)
                    for kind, value in task[WorkerTaskField.ARGS]
                ]
            else:
                args = [
                    serializer.deserialize(payload_bytes(value))
                    if kind == ArgumentKind.INLINE
                    else store.value(value, serializer_id)
                    for kind, value in task[WorkerTaskField.ARGS]
                ]
        except MissingObjects as exc:
            return TaskStatus.RAISED, dump_exception(exc)
        except Exception as exc:
            hint = ""
            if isinstance(exc, ModuleNotFoundError) and exc.name:
                hint = (
                    f"; the module {exc.name!r} is not installed on this worker: install it there, or send it "
                    f"with the task by calling client.ship_module({exc.name.split('.')[0]}) before submitting"
                )
            error = SerializationError(f"cannot load the task: {exc}{hint}")
            return TaskStatus.RAISED, dump_exception(_with_cause(error, exc))
        keywords = task[WorkerTaskField.KEYWORDS]
        try:
            if keywords:
                split = len(args) - len(keywords)
                result = function(*args[:split], **dict(zip(keywords, args[split:], strict=True)))
            else:
                result = function(*args)
        except BaseException as exc:  # the task's own failure, SystemExit and KeyboardInterrupt included
            return TaskStatus.RAISED, dump_exception(exc)
        try:
            return TaskStatus.SUCCESS, serializer.serialize(result)
        except Exception as exc:
            error = SerializationError(f"cannot serialize the result of type {type(result).__name__}: {exc}")
            return TaskStatus.RAISED, dump_exception(_with_cause(error, exc))

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if self._gc_interval > 0 and now - self._last_gc >= self._gc_interval:
            self._last_gc = now
            gc.collect()
            if self._trim_threshold > 0 and self._process.memory_info().rss > self._trim_threshold:
                trim_memory()


def _with_cause(error: Exception, cause: Exception) -> Exception:
    error.__cause__ = cause
    return error


_processor_context: ProcessorContext | None = None


def processor_main(
    agent_socket: socket_module.socket,
    scheduler_address: str,
    shared: Any,
    garbage_collect_interval_seconds: float,
    trim_memory_threshold_bytes: int,
    result_flush_seconds: float,
) -> None:
    """Entry point of a processor process."""
    global _processor_context
    _reset_inherited_state()
    socket = BlockingStream(agent_socket)

    def send_wait_notice(msg_type: MessageType) -> Callable[[], None]:
        def notify() -> None:
            task_id = _processor_context.task_id if _processor_context else 0
            socket.send(encode(msg_type, [task_id]))

        return notify

    _processor_context = ProcessorContext(
        scheduler_address,
        on_wait_start=send_wait_notice(MessageType.PROCESSOR_SUSPENDED),
        on_wait_end=send_wait_notice(MessageType.PROCESSOR_RESUMED),
    )
    set_current_processor(_processor_context)
    processor = Processor(
        socket, shared, garbage_collect_interval_seconds, trim_memory_threshold_bytes, result_flush_seconds
    )
    try:
        processor.serve()
    finally:
        socket.close()


def _reset_inherited_state() -> None:
    """A forked processor must not share the agent's signal pipe; it ignores Ctrl-C (its agent handles it)."""
    reset_inherited_signals()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(signal.SIGKILL)
    # The collector would otherwise walk every object inherited from the agent and copy their pages.
    gc.freeze()
    sys.stdin = open(os.devnull)  # noqa: SIM115
