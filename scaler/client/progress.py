"""Watching futures finish: a progress bar (``scaler.progress``) and completion order (``scaler.as_completed``).

The bar is tqdm's (``tqdm.auto``: a text bar in a terminal, a widget in Jupyter), installed with the
``progress`` extra: ``pip install 'scaler[progress]'``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from scaler.task_context import waiting_on_nested_tasks

T = TypeVar("T")


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


def as_completed(
    futures: Iterable[concurrent.futures.Future[T]], with_results: bool = False, timeout: float | None = None
) -> Iterator[Any]:
    """Yield the futures as they end, first ended first; with ``with_results``, (future, result) pairs.

    With ``with_results`` a future that failed raises its exception when its turn comes. ``timeout``
    bounds the whole iteration: TimeoutError once it has passed with futures still running. Inside a
    task, waiting here lets the worker run other tasks meanwhile, as ``future.result()`` does.
    """
    pending = list(dict.fromkeys(futures))
    ended: queue.SimpleQueue[concurrent.futures.Future[T]] = queue.SimpleQueue()
    for future in pending:
        future.add_done_callback(ended.put)
    deadline = None if timeout is None else time.monotonic() + timeout
    for _ in range(len(pending)):
        try:
            with waiting_on_nested_tasks():
                future = ended.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"futures still running after {timeout} seconds") from None
        yield (future, future.result()) if with_results else future
