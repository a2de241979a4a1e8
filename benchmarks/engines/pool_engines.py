"""Standard-library baselines: ``concurrent.futures.ProcessPoolExecutor`` and ``multiprocessing.Pool``."""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from benchmarks.engines.base import Engine, run_graph_client_side

_PUT_NOTE = "no object store: the object is pickled into every task"
_GET_NOTE = "no graph scheduler: client-side dependency driver over submit()"


class ProcessPoolEngine(Engine):
    """``ProcessPoolExecutor(max_workers=W)``; ``map`` uses ``chunksize=1``."""

    name = "processpool"

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._executor: ProcessPoolExecutor | None = None

    def start(self) -> None:
        self._executor = ProcessPoolExecutor(max_workers=self.workers)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def executor(self) -> ProcessPoolExecutor:
        """The running executor."""
        assert self._executor is not None, "engine not started"
        return self._executor

    def map(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return list(self.executor.map(fn, *zip(*args, strict=True), chunksize=1))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        return self.executor.submit(fn, *args)

    def put(self, obj: Any) -> Any:
        self.notes["f"] = _PUT_NOTE
        return obj

    def get(self, graph: dict[Any, Any], keys: Sequence[Any]) -> dict[Any, Any]:
        self.notes["g"] = _GET_NOTE
        return run_graph_client_side(self.submit, graph, keys)


class MultiprocessingPoolEngine(Engine):
    """``multiprocessing.Pool(W)``: ``map`` is ``starmap(chunksize=1)``, ``submit`` is ``apply_async``."""

    name = "mppool"

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._pool: multiprocessing.pool.Pool | None = None

    def start(self) -> None:
        self._pool = multiprocessing.Pool(self.workers)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    @property
    def pool(self) -> multiprocessing.pool.Pool:
        """The running pool."""
        assert self._pool is not None, "engine not started"
        return self._pool

    def map(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return self.pool.starmap(fn, args, chunksize=1)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """``apply_async`` wrapped in a :class:`concurrent.futures.Future`, the common handle type."""
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        self.pool.apply_async(fn, args, callback=future.set_result, error_callback=future.set_exception)
        return future

    def put(self, obj: Any) -> Any:
        self.notes["f"] = _PUT_NOTE
        return obj

    def get(self, graph: dict[Any, Any], keys: Sequence[Any]) -> dict[Any, Any]:
        self.notes["g"] = _GET_NOTE
        return run_graph_client_side(self.submit, graph, keys)
