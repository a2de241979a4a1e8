"""The future a client returns: a concurrent.futures.Future whose result is decoded on first use."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from scaler.errors import (
    MissingProfilingInfoError,
    ProcessorDiedError,
    SerializationError,
    TaskFailedError,
    WorkerDiedError,
)
from scaler.protocol.codec import Payload, payload_bytes
from scaler.protocol.messages import ProfileField, TaskStatus
from scaler.serializer import Serializer
from scaler.worker.errors_wire import load_exception
from scaler.worker.task_context import waiting_on_nested_tasks

_NO_PAYLOAD = object()


@dataclasses.dataclass(frozen=True)
class ProfilingInfo:
    """What a profiled task cost. Offered under the names programs for other versions read."""

    duration_s: float
    cpu_time_s: float
    memory_peak: int

    @property
    def duration_us(self) -> int:
        return int(self.duration_s * 1_000_000)

    @property
    def peak_memory(self) -> int:
        return self.memory_peak


class ScalerFuture(concurrent.futures.Future):
    """The future of one task. Works with ``concurrent.futures.wait`` and ``as_completed``."""

    def __init__(self, task_id: int, serializer: Serializer, cancel_remote: Callable[[list[int]], None]) -> None:
        super().__init__()
        self.task_id = task_id
        self._serializer = serializer
        self._cancel_remote = cancel_remote
        self._payload: Any = _NO_PAYLOAD
        self._decode_lock = threading.Lock()
        self._profiling: ProfilingInfo | None = None
        self.cancel_together: list[int] | None = None  # task ids cancelled with this one (its graph)

    # ------------------------------------------------------------------ user API

    def result(self, timeout: float | None = None) -> Any:
        """The task's value; raises the task's exception, CancelledError, or TimeoutError after ``timeout``."""
        if not self.done():
            with waiting_on_nested_tasks():
                super().result(timeout)
        super().result(timeout)
        return self._decoded()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's exception, or None if it succeeded; waits like ``result``."""
        if not self.done():
            with waiting_on_nested_tasks():
                return super().exception(timeout)
        return super().exception(timeout)

    def cancel(self) -> bool:
        """Stop the task: a queued one is removed, a running one is stopped. False once it is done."""
        with self._condition:
            if self._state == "FINISHED":
                return False
            if self._state in ("CANCELLED", "CANCELLED_AND_NOTIFIED"):
                return True
        self._cancel_remote(self.cancel_together or [self.task_id])
        return self._mark_cancelled()

    def profiling_info(self) -> ProfilingInfo:
        """Run time, CPU time and peak memory of a task submitted with profiling on."""
        if not self.done():
            raise MissingProfilingInfoError("the task has not finished; profiling info is not available yet")
        if self._profiling is None:
            raise MissingProfilingInfoError("no profiling info: submit the task with profiling=True")
        return self._profiling

    # ------------------------------------------------------------------ used by the client's I/O thread

    def deliver(self, status: int, payload: Payload | None, profile: list[Any] | None) -> None:
        """Settle the future with what the scheduler sent; a second delivery is ignored."""
        if self.done():
            return
        if profile is not None:
            self._profiling = ProfilingInfo(
                float(profile[ProfileField.DURATION_S]),
                float(profile[ProfileField.CPU_TIME_S]),
                int(profile[ProfileField.PEAK_MEMORY_BYTES]),
            )
        try:
            if status == TaskStatus.SUCCESS:
                self._payload = payload
                self.set_result(None)
            elif status == TaskStatus.CANCELLED:
                self._mark_cancelled()
            else:
                self.set_exception(_error_for(status, payload))
        except concurrent.futures.InvalidStateError:
            pass  # the user cancelled it at the same moment

    def fail(self, error: BaseException) -> None:
        """Settle the future with ``error`` unless it is already done."""
        try:
            if not self.done():
                self.set_exception(error)
        except concurrent.futures.InvalidStateError:
            pass

    def _mark_cancelled(self) -> bool:
        if not super().cancel():
            return self.cancelled()
        self.set_running_or_notify_cancel()  # wakes concurrent.futures.wait and as_completed
        return True

    def _decoded(self) -> Any:
        if self._payload is _NO_PAYLOAD:
            return self._result
        with self._decode_lock:
            if self._payload is not _NO_PAYLOAD:
                try:
                    self._result = self._serializer.deserialize(payload_bytes(self._payload))
                except Exception as exc:
                    raise SerializationError(f"cannot deserialize the result of task {self.task_id:#x}: {exc}") from exc
                self._payload = _NO_PAYLOAD
        return self._result


def _error_for(status: int, payload: Payload | None) -> BaseException:
    text = "" if payload is None else payload_bytes(payload).decode("utf-8", "replace")
    if status == TaskStatus.RAISED:
        return load_exception(payload_bytes(payload)) if payload is not None else TaskFailedError("the task raised")
    if status == TaskStatus.WORKER_DIED:
        return WorkerDiedError(text)
    if status == TaskStatus.PROCESSOR_DIED:
        return ProcessorDiedError(text)
    if status == TaskStatus.TIMED_OUT:
        return TimeoutError(text)
    return TaskFailedError(text or f"the task failed with status {status}")
