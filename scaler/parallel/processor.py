"""ParallelProcessor: pyrallel's and RLTK's parallel map with a collector, on a scaler cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from scaler.client.client import function_name
from scaler.client.future import ScalerFuture
from scaler.parallel.batches import BatchMapper
from scaler.parallel.connection import ClientOption
from scaler.parallel.legacy import processor_arguments
from scaler.parallel.run import WindowedRun
from scaler.parallel.window import call_unpacked, default_in_flight


class ParallelProcessor(WindowedRun):
    """Run ``mapper`` on a cluster's workers for every task added; hand each result to ``collector`` here.

    ``ParallelProcessor(num_of_processor, mapper, collector=None, *, client=None, max_in_flight=None,
    batch_size=1)``; RLTK's spelling ``ParallelProcessor(mapper, num_of_processor, output_handler=...)`` works
    too, and ``compute`` is ``add_task``. Use: ``start()``, ``add_task(*args, **kwargs)`` (or ``map``) as often
    as needed, ``task_done()``, ``join()``; or a ``with`` block, which does ``task_done`` and ``join`` at its end.

    - With ``client=None`` it starts a local cluster of ``num_of_processor`` workers at ``start()`` and stops it
      at ``join()``. With a Client, or a scheduler address (``'tcp://HOST:PORT'`` or ``'HOST:PORT'``), it runs on
      that cluster and leaves it running; ``num_of_processor`` then only sizes the default ``max_in_flight``.
    - ``collector`` runs in one thread of this process, once per task, in the order tasks finish, with the
      mapper's return value unpacked as its arguments when it is a tuple (``collector(*value)``), else as its only
      argument. It must not call ``add_task``.
    - Back-pressure: ``add_task`` blocks while ``max_in_flight`` tasks (batches) are unfinished or not yet
      collected; the default is ``max(256, 32 * num_of_processor)``.
    - ``batch_size > 1`` sends the items in batches, one task per batch, the mapper applied to each item on the
      worker: for mappers too quick to be worth a task each. ``task_done`` sends the last, partial batch.
    - The first exception of a mapper (or of the collector) cancels the tasks in flight, stops the collecting,
      makes later ``add_task`` calls drop their items, and ends ``join()`` with that exception. The collector is
      never called twice for one task, even when a worker dies and the scheduler runs its tasks again.

    Call ``add_task`` from one thread at a time.
    """

    _kind = "ParallelProcessor"

    def __init__(
        self,
        num_of_processor: int | Callable[..., Any],
        mapper: Callable[..., Any] | int | None = None,
        collector: Callable[..., Any] | None = None,
        *,
        client: ClientOption = None,
        max_in_flight: int | None = None,
        batch_size: int = 1,
        **legacy_options: Any,
    ) -> None:
        """``legacy_options``: pyrallel's and RLTK's other keywords (``output_handler``, ``input_handler``, the
        queue sizes, ...); the ones that have no meaning on a cluster are ignored."""
        arguments = processor_arguments(num_of_processor, mapper, collector, max_in_flight, legacy_options)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        max_in_flight = arguments.max_in_flight or default_in_flight(arguments.num_of_processor)
        super().__init__(arguments.num_of_processor, max_in_flight, client)
        self.mapper = arguments.mapper
        self.collector = arguments.collector
        self.batch_size = batch_size
        self._batch_mapper = BatchMapper(self.mapper, function_name(self.mapper))

    # ------------------------------------------------------------------ public API

    def add_task(self, *args: Any, **kwargs: Any) -> None:
        """Have ``mapper(*args, **kwargs)`` run on a worker; blocks while ``max_in_flight`` tasks are in flight."""
        if self.batch_size > 1 or self._no_more_tasks:
            self._add(args, kwargs, self.batch_size)
            return
        if self._window is None:
            self.start()
        self._submit(self.mapper, args, kwargs, self._collect_one if self.collector is not None else None)

    compute = add_task  # RLTK's name

    def map(self, tasks: Iterable[Any]) -> None:
        """``add_task(item)`` for every item, as pyrallel's ``map``: each item is the mapper's one argument."""
        for item in tasks:
            self.add_task(item)

    def starmap(self, tasks: Iterable[Iterable[Any]]) -> None:
        """``add_task(*arguments)`` for every tuple of arguments."""
        for arguments in tasks:
            self.add_task(*arguments)

    def join(self) -> None:
        """Wait until every task has run and been collected, then stop the local cluster if this processor
        started one. Raises the first exception of a mapper or of the collector. Calls ``task_done`` if needed."""
        if self._ended:
            return
        self.task_done()
        self._ended = True
        if self._window is None:
            return
        try:
            self._window.finish()
        finally:
            self._close_connection()

    def __enter__(self) -> ParallelProcessor:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: Any) -> None:
        if exc_type is None:
            self.join()
        else:
            self.close()

    def __repr__(self) -> str:
        state = "ended" if self._ended else "running" if self._window is not None else "not started"
        return f"<ParallelProcessor {function_name(self.mapper)} on {self.num_of_processor} processors, {state}>"

    # ------------------------------------------------------------------ internals

    def _send_batch(self, arguments: list[tuple[Any, ...]], keywords: list[dict[str, Any]] | None) -> None:
        self._submit(
            self._batch_mapper, (arguments, keywords), {}, self._collect_batch if self.collector is not None else None
        )

    def _collect_one(self, future: ScalerFuture) -> None:
        assert self.collector is not None
        call_unpacked(self.collector, future.result())

    def _collect_batch(self, future: ScalerFuture) -> None:
        collector = self.collector
        assert collector is not None
        for value in future.result():
            call_unpacked(collector, value)
