"""What ParallelProcessor and MapReduce share: a connection to a cluster, a window of tasks in flight, the
items waiting to make a batch, and the life cycle start -> add tasks -> task_done -> join or close."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scaler.client.client import Client
from scaler.client.future import ScalerFuture
from scaler.parallel.connection import ClientOption, ClusterConnection
from scaler.parallel.window import TaskWindow


class WindowedRun:
    """A run of tasks through a Client, at most ``max_in_flight`` of them unfinished at once."""

    _kind = "run"  # the name errors give the run ("ParallelProcessor", "MapReduce")
    _window_name = "scaler-parallel-collector"  # the name of the window's collector thread

    def __init__(self, num_of_processor: int, max_in_flight: int, client: ClientOption) -> None:
        self.num_of_processor = num_of_processor
        self.max_in_flight = max_in_flight
        self._client_option = client
        self._connection: ClusterConnection | None = None
        self._window: TaskWindow | None = None
        self._arguments: list[tuple[Any, ...]] = []
        self._keywords: list[dict[str, Any]] = []
        self._no_more_tasks = False
        self._ended = False

    @property
    def client(self) -> Client | None:
        """The Client the tasks go through, once started."""
        return self._connection.client if self._connection is not None else None

    @property
    def error(self) -> BaseException | None:
        """The first exception of the run's tasks (or of its collector) so far, or None."""
        return self._window.error if self._window is not None else None

    def start(self) -> None:
        """Connect (starting the local cluster when there is no ``client``); ``add_task`` calls it when needed,
        and calling it again does nothing."""
        if self._ended:
            raise RuntimeError(f"this {self._kind} has ended; make a new one")
        if self._window is not None:
            return
        window = TaskWindow(self.max_in_flight, name=self._window_name)
        try:
            self._connection = ClusterConnection(self._client_option, self.num_of_processor)
        except BaseException:
            window.abort()
            raise
        self._window = window

    def task_done(self) -> None:
        """No more tasks: send the last partial batch. Calling it again does nothing."""
        if self._window is not None:
            self._flush()
        self._no_more_tasks = True

    def close(self) -> None:
        """Stop at once: cancel the tasks in flight and stop the local cluster if any."""
        self._no_more_tasks = True
        self._ended = True
        if self._window is not None:
            try:
                self._window.abort()
            finally:
                self._close_connection()

    # ------------------------------------------------------------------ for the subclasses

    def _add(self, args: tuple[Any, ...], kwargs: dict[str, Any], batch_size: int) -> None:
        """Keep one item for the next batch; send the batch once it has ``batch_size`` items."""
        if self._no_more_tasks:
            raise RuntimeError("add_task after task_done(): no more tasks can be added")
        if self._window is None:
            self.start()
        self._arguments.append(args)
        self._keywords.append(kwargs)
        if len(self._arguments) >= batch_size:
            self._flush()

    def _flush(self) -> None:
        """Send the items kept so far as one task (the subclass's ``_send_batch``)."""
        if not self._arguments:
            return
        arguments, keywords = self._arguments, self._keywords
        self._arguments, self._keywords = [], []
        self._send_batch(arguments, keywords if any(keywords) else None)

    def _send_batch(self, arguments: list[tuple[Any, ...]], keywords: list[dict[str, Any]] | None) -> None:
        raise NotImplementedError

    def _submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        handler: Callable[[ScalerFuture], None] | None,
    ) -> ScalerFuture | None:
        """Submit ``fn(*args, **kwargs)`` on a free slot of the window (waiting for one); ``handler`` gets the
        done future on the collector thread. None once a task has failed: nothing more is sent, join() raises."""
        window, connection = self._window, self._connection
        assert window is not None and connection is not None
        if not window.reserve():
            return None
        try:
            future = connection.client.submit(fn, *args, **kwargs)
        except BaseException:
            window.unreserve()
            raise
        window.track(future, handler)
        return future

    def _close_connection(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()
