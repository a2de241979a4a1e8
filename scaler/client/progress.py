"""Watching futures finish: a progress bar (``scaler.progress``) and completion order (``scaler.as_completed``).

The bar is tqdm's (``tqdm.auto``: a text bar in a terminal, a widget in Jupyter), installed with the
``progress`` extra: ``pip install 'scaler[progress]'``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from scaler.task_context import waiting_on_nested_tasks


def require_tqdm() -> Any:
    """tqdm's auto bar class; ImportError saying which extra to install if tqdm is missing."""
    try:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ImportError("progress bars need tqdm: pip install 'scaler[progress]'") from exc
    return tqdm


@contextlib.contextmanager
def progress_bar(
    futures: Sequence[concurrent.futures.Future[Any]], description: str | None = None, **tqdm_options: Any
) -> Iterator[Any]:
    """A bar that advances by one as each of ``futures`` ends (done, failed or cancelled); closed on exit."""
    bar = require_tqdm()(total=len(futures), desc=description, unit="task", **tqdm_options)
    lock = threading.Lock()

    def one_more(_: concurrent.futures.Future[Any]) -> None:
        with lock:  # futures end on the client's I/O thread, or on this one if already done
            bar.update(1)

    try:
        for future in futures:
            future.add_done_callback(one_more)
        yield bar
    finally:
        with lock:
            bar.close()


def progress(work: Any, description: str | None = None, **tqdm_options: Any) -> Any:
    """Show a progress bar while work finishes, and return when it has.

    ``work`` is a future or a collection of futures (returned as given, once every one has ended), or any
    other iterable, such as a generator of results (its items are returned as a list). Extra keywords go
    to tqdm (``file=``, ``leave=``, ``ncols=``...).
    """
    if isinstance(work, concurrent.futures.Future):
        progress([work], description, **tqdm_options)
        return work
    if isinstance(work, (list, tuple, set, frozenset)) and all(
        isinstance(item, concurrent.futures.Future) for item in work
    ):
        futures = list(work)
        with progress_bar(futures, description, **tqdm_options):
            with waiting_on_nested_tasks():
                concurrent.futures.wait(futures)
        return work
    items: Iterable[Any] = work
    return list(require_tqdm()(items, desc=description, unit="task", **tqdm_options))


class as_completed:  # a class named like the function it replaces: callers see no difference
    """Yield the futures as they end, first ended first; with ``with_results``, (future, result) pairs.

    ``for future in as_completed(futures)`` waits in this thread; ``async for future in
    as_completed(futures)`` waits without blocking the running event loop. With ``with_results`` a
    future that failed raises its exception when its turn comes. ``timeout`` bounds the whole iteration,
    counted from its start: TimeoutError once it has passed with futures still running. Inside a task,
    waiting (the ``for`` form) lets the worker run other tasks meanwhile, as ``future.result()`` does.
    """

    def __init__(
        self,
        futures: Iterable[concurrent.futures.Future[Any]],
        with_results: bool = False,
        timeout: float | None = None,
    ) -> None:
        self._futures = list(dict.fromkeys(futures))
        self._with_results = with_results
        self._timeout = timeout
        self._iterator: Iterator[Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._wait_in_thread()
        return next(self._iterator)

    def close(self) -> None:
        """Stop iterating (as a generator's ``close``)."""
        if self._iterator is not None:
            close = getattr(self._iterator, "close", None)
            if close is not None:
                close()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._wait_in_loop()

    def _wait_in_thread(self) -> Iterator[Any]:
        ended: queue.SimpleQueue[concurrent.futures.Future[Any]] = queue.SimpleQueue()
        for future in self._futures:
            future.add_done_callback(ended.put)
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        for _ in range(len(self._futures)):
            try:
                with waiting_on_nested_tasks():
                    future = ended.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"futures still running after {self._timeout} seconds") from None
            yield (future, future.result()) if self._with_results else future

    async def _wait_in_loop(self) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        ended: asyncio.Queue[concurrent.futures.Future[Any]] = asyncio.Queue()

        def wake(future: concurrent.futures.Future[Any]) -> None:
            try:
                loop.call_soon_threadsafe(ended.put_nowait, future)
            except RuntimeError:  # the loop was closed meanwhile: nobody is iterating any more
                pass

        for future in self._futures:
            future.add_done_callback(wake)
        deadline = None if self._timeout is None else loop.time() + self._timeout
        for _ in range(len(self._futures)):
            try:
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                future = await asyncio.wait_for(ended.get(), remaining)
            except asyncio.TimeoutError:
                raise TimeoutError(f"futures still running after {self._timeout} seconds") from None
            yield (future, future.result()) if self._with_results else future
