"""MapReduce: pyrallel's map-then-reduce, with the reducing done on the workers as a tree of tasks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from scaler.client.client import function_name
from scaler.client.future import ScalerFuture
from scaler.parallel.batches import ChunkReducer
from scaler.parallel.connection import ClientOption
from scaler.parallel.legacy import map_reduce_options
from scaler.parallel.run import WindowedRun
from scaler.parallel.window import default_in_flight

#: Items per map task unless told otherwise: enough that a tiny mapper is not dwarfed by a task's cost.
DEFAULT_CHUNK_SIZE = 100


class MapReduce(WindowedRun):
    """Map every task added with ``mapper`` and reduce all the values to one with ``reducer``, on the workers.

    ``MapReduce(num_of_processor, mapper, reducer, *, client=None, chunk_size=100, max_in_flight=None)``:
    ``start()``, ``add_task(*args, **kwargs)`` as often as needed, ``task_done()``, then ``join()`` returns
    ``reducer(reducer(m1, m2), ...)`` over every mapped value ``m`` (None when no task was added).

    - ``reducer(a, b)`` must be associative and commutative: values are combined in the grouping of a tree
      and in no particular order, not one after the other in the order the tasks were added.
    - Every ``chunk_size`` items make one task that maps them and reduces them on its worker. The chunks'
      values are then reduced pairwise, as they are produced, by reduce tasks whose arguments are the futures
      of earlier tasks: a balanced tree (two chunks, then two pairs of chunks, ...), built like a binary
      counter. A value still being computed when its reduce task is submitted goes from worker to worker
      through the scheduler without coming to this process; only the final value always does.
    - Memory stays bounded: at most ``max_in_flight`` tasks (map and reduce) are unfinished (``add_task``
      blocks meanwhile), and this process holds one future per level of the tree (a few dozen at most).
    - ``client`` is as in ParallelProcessor: None starts a local cluster of ``num_of_processor`` workers for
      the time of the run; a Client or an address uses that cluster and leaves it running.
    - The first exception of the mapper or the reducer cancels the tasks in flight and ends ``join()`` with it.
    - In a ``with`` block, call ``join()`` inside the block for the result; leaving the block stops the run.
    """

    _kind = "MapReduce"
    _window_name = "scaler-map-reduce"

    def __init__(
        self,
        num_of_processor: int,
        mapper: Callable[..., Any],
        reducer: Callable[[Any, Any], Any],
        *,
        client: ClientOption = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_in_flight: int | None = None,
        **legacy_options: Any,
    ) -> None:
        """``legacy_options``: pyrallel's ``mapper_queue_size`` and ``reducer_queue_size``, ignored."""
        map_reduce_options(legacy_options)
        if isinstance(num_of_processor, bool) or not isinstance(num_of_processor, int) or num_of_processor < 1:
            raise ValueError(f"num_of_processor must be a positive integer, not {num_of_processor!r}")
        if not callable(mapper) or not callable(reducer):
            raise TypeError("MapReduce needs a callable mapper and a callable reducer")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, not {chunk_size!r}")
        super().__init__(num_of_processor, max_in_flight or default_in_flight(num_of_processor), client)
        self.mapper = mapper
        self.reducer = reducer
        self.chunk_size = chunk_size
        self._chunk_reducer = ChunkReducer(mapper, reducer, function_name(mapper))
        # levels[k]: the future of a value that reduces 2**k chunks, waiting for a partner of its level.
        self._levels: list[ScalerFuture | None] = []

    # ------------------------------------------------------------------ public API

    def add_task(self, *args: Any, **kwargs: Any) -> None:
        """Add ``mapper(*args, **kwargs)`` to the reduction; blocks while ``max_in_flight`` tasks are in flight."""
        self._add(args, kwargs, self.chunk_size)

    def map(self, tasks: Iterable[Any]) -> None:
        """``add_task(item)`` for every item."""
        for item in tasks:
            self.add_task(item)

    def join(self) -> Any:
        """Reduce the values left on each level, wait, and return the total (None if no task was added); then
        stop the local cluster if this MapReduce started one. Raises the first exception of the mapper or the
        reducer, and RuntimeError when called a second time."""
        if self._ended:
            raise RuntimeError("join() was already called")
        self.task_done()
        self._ended = True
        if self._window is None:
            return None
        try:
            total = self._reduce_levels()
            self._window.finish()
            return total.result() if total is not None else None
        finally:
            self._close_connection()

    def close(self) -> None:
        """Stop at once: cancel the tasks in flight and stop the local cluster if any."""
        self._levels.clear()
        super().close()

    def __enter__(self) -> MapReduce:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: Any) -> None:
        if exc_type is not None or not self._ended:
            self.close()

    def __repr__(self) -> str:
        state = "ended" if self._ended else "running" if self._window is not None else "not started"
        return f"<MapReduce {function_name(self.mapper)} / {function_name(self.reducer)}, {state}>"

    # ------------------------------------------------------------------ internals

    def _send_batch(self, arguments: list[tuple[Any, ...]], keywords: list[dict[str, Any]] | None) -> None:
        chunk = self._submit(self._chunk_reducer, (arguments, keywords), {}, None)
        if chunk is not None:
            self._push(chunk)

    def _push(self, value: ScalerFuture) -> None:
        """Add a chunk's value to the tree: two values of one level make a reduce task of the next level."""
        levels = self._levels
        level = 0
        while level < len(levels):
            partner = levels[level]
            if partner is None:
                break
            levels[level] = None
            reduced = self._submit(self.reducer, (partner, value), {}, None)
            if reduced is None:
                return
            value = reduced
            level += 1
        if level == len(levels):
            levels.append(value)
        else:
            levels[level] = value

    def _reduce_levels(self) -> ScalerFuture | None:
        """Reduce the values left waiting on the levels into one, the lowest levels first."""
        total: ScalerFuture | None = None
        for value in self._levels:
            if value is not None:
                total = value if total is None else self._submit(self.reducer, (value, total), {}, None)
                if total is None:
                    break
        self._levels.clear()
        return total
