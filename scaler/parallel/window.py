"""A bounded window of tasks in flight, and the one thread of the caller's process that collects their results.

A slot is taken (``reserve``, blocking while the window is full) before a task is submitted and given back
only once the collector thread has handled the task's end, so at most ``limit`` tasks are unfinished or
waiting to be collected at any time: memory stays bounded however many items are fed in.

The first failure (a task's exception, a collector's exception, a cancelled task) is kept; every task still
in flight is then cancelled, nothing more is collected, ``reserve`` refuses new tasks, and ``finish`` raises it.
"""

from __future__ import annotations

import concurrent.futures
import functools
import queue
import threading
from collections.abc import Callable
from typing import Any

from scaler.client.future import ScalerFuture

#: What the collector thread does with a task that succeeded (given its future); None: nothing.
Handler = Callable[[ScalerFuture], None] | None

#: Default window: this many tasks per worker, and never fewer than the minimum. Tiny tasks need a deep
#: pipeline to hide the round trips (a window of 32 halves a no-op map's rate on 2 workers; 256 keeps it),
#: and a few hundred futures in flight cost next to nothing.
IN_FLIGHT_PER_WORKER = 32
MIN_IN_FLIGHT = 256

_STOP = object()


def default_in_flight(workers: int) -> int:
    """The default bound on tasks in flight for ``workers`` workers."""
    return max(MIN_IN_FLIGHT, IN_FLIGHT_PER_WORKER * workers)


def call_unpacked(handler: Callable[..., Any], value: Any) -> None:
    """``handler(*value)`` when ``value`` is a tuple, else ``handler(value)`` (pyrallel's and RLTK's rule)."""
    if isinstance(value, tuple):
        handler(*value)
    else:
        handler(value)


class TaskWindow:
    """At most ``limit`` tasks in flight; their ends handled, one at a time, by one collector thread."""

    def __init__(self, limit: int, name: str = "scaler-parallel-collector") -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"the number of tasks in flight must be a positive integer, not {limit!r}")
        self.limit = limit
        self._condition = threading.Condition()
        self._count = 0  # slots taken: reserved, or tracked and not yet handled by the collector thread
        self._in_flight: set[ScalerFuture] = set()
        self._error: BaseException | None = None
        self._aborted = False
        self._ends: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._collect, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the submitting thread

    @property
    def error(self) -> BaseException | None:
        """The first failure, or None."""
        return self._error

    def reserve(self) -> bool:
        """Take a slot, waiting while all ``limit`` are taken; False (and no slot) once the window has failed."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("tasks cannot be added from the collector: it would wait for itself")
        with self._condition:
            while self._count >= self.limit and self._error is None and not self._aborted:
                self._condition.wait()
            if self._error is not None or self._aborted:
                return False
            self._count += 1
            return True

    def unreserve(self) -> None:
        """Give back a slot taken by ``reserve`` whose task could not be submitted."""
        with self._condition:
            self._count -= 1
            self._condition.notify_all()

    def track(self, future: ScalerFuture, handler: Handler) -> None:
        """Watch the task of ``future``, submitted on a reserved slot; ``handler`` gets it if it succeeds."""
        with self._condition:
            self._in_flight.add(future)
            stopping = self._error is not None or self._aborted
        future.add_done_callback(functools.partial(self._ended, handler))
        if stopping:
            future.cancel()

    def finish(self) -> None:
        """Wait until every task has ended and been collected, stop the collector thread, raise the first failure."""
        with self._condition:
            while self._count > 0:
                self._condition.wait()
        self._stop_thread()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Cancel every task in flight and stop the collector thread without raising."""
        with self._condition:
            self._aborted = True
            pending = list(self._in_flight)
            self._condition.notify_all()
        for future in pending:
            future.cancel()
        with self._condition:
            self._condition.wait_for(lambda: self._count <= 0, timeout=10)
        self._stop_thread()

    # ------------------------------------------------------------------ the client's I/O thread and the collector

    def _ended(self, handler: Handler, future: ScalerFuture) -> None:
        self._ends.put((future, handler))  # called on the client's I/O thread: nothing more

    def _collect(self) -> None:
        while True:
            item = self._ends.get()
            if item is _STOP:
                return
            future, handler = item
            try:
                self._handle(future, handler)
            except BaseException as exc:  # a collector's exception (or a result that cannot be decoded)
                self._fail(exc)
            finally:
                with self._condition:
                    self._in_flight.discard(future)
                    self._count -= 1
                    self._condition.notify_all()

    def _handle(self, future: ScalerFuture, handler: Handler) -> None:
        if future.cancelled():
            if not self._aborted:
                self._fail(concurrent.futures.CancelledError(f"task {future.task_id:#x} was cancelled"))
            return
        error = future.exception()
        if error is not None:
            self._fail(error)
        elif handler is not None and self._error is None and not self._aborted:
            handler(future)

    def _fail(self, error: BaseException) -> None:
        with self._condition:
            if self._error is not None or self._aborted:
                return
            self._error = error
            pending = list(self._in_flight)
            self._condition.notify_all()
        for future in pending:
            future.cancel()

    def _stop_thread(self) -> None:
        if self._thread.is_alive():
            self._ends.put(_STOP)
            if threading.current_thread() is not self._thread:
                self._thread.join()
