"""The future a client returns: a concurrent.futures.Future whose result is decoded on first use."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import threading
import weakref
from collections.abc import Callable, Generator
from typing import Any, Protocol, TypeVar

import zmq

from scaler.errors import (
    MissingObjects,
    MissingProfilingInfoError,
    ProcessorDiedError,
    SerializationError,
    TaskFailedError,
    WorkerDiedError,
)
from scaler.protocol.codec import Payload, payload_bytes
from scaler.protocol.messages import ProfileField, TaskStatus
from scaler.serializer import Serializer
from scaler.task_context import waiting_on_nested_tasks
from scaler.worker.errors_wire import load_exception

logger = logging.getLogger(__name__)

_NO_PAYLOAD = object()
_HELD = object()  # the result succeeded and waits in the scheduler
# concurrent.futures' own state names (Future keeps its state in these strings).
_RUNNING = "RUNNING"
_CANCELLED = "CANCELLED"
_CANCELLED_AND_NOTIFIED = "CANCELLED_AND_NOTIFIED"
_FINISHED = "FINISHED"

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class ProfilingInfo:
    """What a profiled task cost. Offered under the names programs for other versions read."""

    duration_s: float
    cpu_time_s: float
    memory_peak: int

    @property
    def duration_us(self) -> int:
        """The task's run time in whole microseconds (the name Scaler 1.x's profiling result used)."""
        return int(self.duration_s * 1_000_000)

    @property
    def peak_memory(self) -> int:
        """The processor's peak resident memory in bytes while the task ran (Scaler 1.x's name)."""
        return self.memory_peak


class HeldResults(Protocol):
    """Where a held result is fetched from and released: the client's connection to the scheduler."""

    def fetch(self, task_id: int) -> Payload: ...

    def release(self, task_id: int) -> None: ...


class ScalerFuture(concurrent.futures.Future[T]):
    """The future of one task. Works with ``concurrent.futures.wait`` and ``as_completed``.

    It is ``running()`` from the moment its task is submitted until it is done, as in Scaler 1.x: the
    client is not told when a worker starts the task, and it can still be cancelled meanwhile.
    """

    def __init__(self, task_id: int, serializer: Serializer, cancel_remote: Callable[[list[int]], None]) -> None:
        super().__init__()
        self._state = _RUNNING  # nobody else sees the future yet: no lock, no waiter to tell
        self.task_id = task_id
        self._serializer = serializer
        self._cancel_remote = cancel_remote
        self._payload: Any = _NO_PAYLOAD
        self._decode_lock = threading.Lock()
        self._profiling: ProfilingInfo | None = None
        self.cancel_together: list[int] | None = None  # task ids cancelled with this one (its graph)
        # Set when a task took this future as an argument: its result is held in the scheduler (HeldResults).
        self.held_results: HeldResults | None = None
        self._release_held: weakref.finalize | None = None

    # ------------------------------------------------------------------ user API

    def result(self, timeout: float | None = None) -> T:
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
            if self._state == _FINISHED:
                return False
            if self._state in (_CANCELLED, _CANCELLED_AND_NOTIFIED):
                return True
        self._cancel_remote(self.cancel_together or [self.task_id])
        return self._mark_cancelled()

    def __await__(self) -> Generator[Any, None, T]:
        """``await future`` in a running event loop: the task's value, without blocking the loop.

        Raises as ``result()`` does; a cancelled future raises asyncio.CancelledError. Cancelling the
        awaiting asyncio task (``asyncio.wait_for`` timing out, for one) cancels this future's task too.
        """
        if not self.done():
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()

            def wake(_: concurrent.futures.Future[Any]) -> None:
                try:
                    loop.call_soon_threadsafe(_settle, waiter)
                except RuntimeError:  # the loop was closed meanwhile: nobody is waiting any more
                    pass

            self.add_done_callback(wake)
            try:
                yield from waiter.__await__()
            except asyncio.CancelledError:
                self.cancel()
                raise
        if self.cancelled():
            raise asyncio.CancelledError()
        return self.result()  # done: decoded here, on the loop's thread

    def profiling_info(self) -> ProfilingInfo:
        """Run time, CPU time and peak memory of a task submitted with profiling on."""
        if not self.done():
            raise MissingProfilingInfoError("the task has not finished; profiling info is not available yet")
        if self._profiling is None:
            raise MissingProfilingInfoError(
                "no profiling info: use Client(profiling=True) or submit_verbose(..., profiling=True)"
            )
        return self._profiling

    # ------------------------------------------------------------------ used by the client's I/O thread

    def deliver(self, status: int, payload: Payload | None, profile: Any) -> None:
        """Settle the future with what the scheduler sent; a second delivery is ignored.

        Never raises: a malformed profile only means no profiling info, and a result that makes no
        sense settles the future with TaskFailedError, so the client's I/O thread goes on.
        """
        if self.done():
            return
        self._profiling = _profiling_info(profile)
        try:
            if status == TaskStatus.SUCCESS:
                self._payload = _checked(payload)
                self.set_result(None)  # type: ignore[arg-type]  # the value is decoded lazily by result()
            elif status == TaskStatus.SUCCESS_HELD and self.held_results is not None:
                # The result waits in the scheduler: fetched if asked for, released when this future goes.
                self._payload = _HELD
                self._release_held = weakref.finalize(self, self.held_results.release, self.task_id)
                self.set_result(None)  # type: ignore[arg-type]
            elif status == TaskStatus.CANCELLED:
                self._mark_cancelled()
            else:
                self.set_exception(_error_for(status, payload))
        except concurrent.futures.InvalidStateError:
            pass  # the user cancelled it at the same moment
        except Exception as exc:
            logger.warning("task %r: malformed result from the scheduler: %r", self.task_id, exc)
            self.fail(TaskFailedError(f"the scheduler sent a malformed result for task {self.task_id!r}: {exc!r}"))

    def fail(self, error: BaseException) -> None:
        """Settle the future with ``error`` unless it is already done."""
        try:
            if not self.done():
                self.set_exception(error)
        except concurrent.futures.InvalidStateError:
            pass

    def _mark_cancelled(self) -> bool:
        """Cancel locally (also from RUNNING, which Future.cancel refuses); wakes wait, as_completed, callbacks."""
        with self._condition:
            if self._state == _FINISHED:
                return False
            if self._state in (_CANCELLED, _CANCELLED_AND_NOTIFIED):
                return True
            self._state = _CANCELLED_AND_NOTIFIED
            for waiter in self._waiters:
                waiter.add_cancelled(self)
            self._condition.notify_all()
        self._invoke_callbacks()  # type: ignore[attr-defined]
        return True

    def _decoded(self) -> Any:
        if self._payload is _NO_PAYLOAD:
            return self._result
        with self._decode_lock:
            if self._payload is _HELD:
                assert self.held_results is not None and self._release_held is not None
                self._payload = self.held_results.fetch(self.task_id)
                self._release_held()
            if self._payload is not _NO_PAYLOAD:
                try:
                    self._result = self._serializer.deserialize(payload_bytes(self._payload))
                except Exception as exc:
                    raise SerializationError(f"cannot deserialize the result of task {self.task_id:#x}: {exc}") from exc
                self._payload = _NO_PAYLOAD
        return self._result


def _settle(waiter: asyncio.Future[None]) -> None:
    """Wake a coroutine awaiting a ScalerFuture (run on its loop's thread)."""
    if not waiter.done():
        waiter.set_result(None)


def _profiling_info(profile: Any) -> ProfilingInfo | None:
    """The profile a result carries, or None when there is none or it is not three numbers."""
    if profile is None:
        return None
    try:
        duration = profile[ProfileField.DURATION_S]
        cpu_time = profile[ProfileField.CPU_TIME_S]
        peak = profile[ProfileField.PEAK_MEMORY_BYTES]
        if not all(type(value) in (int, float) for value in (duration, cpu_time, peak)):
            return None
        return ProfilingInfo(float(duration), float(cpu_time), int(peak))
    except Exception:  # not indexable, too short, an infinite peak...
        return None


_ERRORS_WITH_TEXT: dict[int, type[BaseException]] = {
    TaskStatus.WORKER_DIED: WorkerDiedError,
    TaskStatus.PROCESSOR_DIED: ProcessorDiedError,
    TaskStatus.TIMED_OUT: TimeoutError,
    TaskStatus.OBJECT_MISSING: MissingObjects,
}


def _checked(payload: Any) -> Payload:
    """``payload`` if it is one (bytes, a buffer or a ZeroMQ frame), else ValueError."""
    if type(payload) in (bytes, memoryview) or isinstance(payload, zmq.Frame):
        return payload
    raise ValueError(f"a payload of type {type(payload).__name__}")


def _error_for(status: int, payload: Payload | None) -> BaseException:
    if status == TaskStatus.RAISED:
        if payload is None:
            return TaskFailedError("the task raised")
        return load_exception(payload_bytes(_checked(payload)))
    text = "" if payload is None else payload_bytes(_checked(payload)).decode("utf-8", "replace")
    error_class = _ERRORS_WITH_TEXT.get(status, TaskFailedError) if isinstance(status, int) else TaskFailedError
    if error_class is TaskFailedError and not text:
        text = f"the task failed with status {status!r}"
    return error_class(text)
