"""``scaler.ScalerExecutor``: a ``concurrent.futures.Executor`` whose work runs on a Scaler cluster.

Code written for ``ProcessPoolExecutor`` runs on a cluster by changing the line that makes the executor::

    with ScalerExecutor("tcp://127.0.0.1:2345") as executor:
        print(list(executor.map(pow, [2, 3], [10, 3])))

It also serves ``loop.run_in_executor(executor, fn, *args)``.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from scaler.client.future import ScalerFuture

if TYPE_CHECKING:
    from scaler.client.client import Client

P = ParamSpec("P")
T = TypeVar("T")


class ScalerExecutor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` that runs each call as a task of a Scaler cluster.

    ``ScalerExecutor(address)`` connects its own Client (``client_options`` go to ``Client``) and closes it
    at shutdown; ``ScalerExecutor(client)`` borrows a connected Client and leaves it open. The futures it
    returns are ``ScalerFuture`` objects: they work with ``concurrent.futures.wait``/``as_completed`` and
    can be awaited.

    As with ``Client.submit``, arguments that do not fit ``fn``'s signature, or that cannot be serialized,
    raise at ``submit`` rather than through the future.
    """

    def __init__(self, address_or_client: str | Client, **client_options: Any) -> None:
        from scaler.client.client import Client

        if isinstance(address_or_client, Client):
            if client_options:
                raise TypeError("client options only apply when the executor connects its own Client")
            self._client = address_or_client
            self._owns_client = False
        elif isinstance(address_or_client, str):
            self._client = Client(address_or_client, **client_options)
            self._owns_client = True
        else:
            raise TypeError(f"ScalerExecutor takes an address or a Client, not {type(address_or_client).__name__}")
        self._shutdown_lock = threading.Lock()  # held while submitting, so shutdown sees every future
        self._pending_lock = threading.Lock()  # guards _pending; also taken on the client's I/O thread
        self._pending: set[ScalerFuture] = set()
        self._shutdown = False

    # ------------------------------------------------------------------ properties

    @property
    def client(self) -> Client:
        """The Client the executor submits through."""
        return self._client

    @property
    def owns_client(self) -> bool:
        """Whether the executor connected the Client itself (and so closes it at shutdown)."""
        return self._owns_client

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "open"
        return f"<scaler.ScalerExecutor {state} on {self._client.address}>"

    # ------------------------------------------------------------------ Executor API

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[T]:
        """Run ``fn(*args, **kwargs)`` on a worker; returns its ScalerFuture at once.

        Every keyword goes to ``fn`` (``profiling`` included). RuntimeError after ``shutdown``.
        """
        return self._submit_many(fn, [args], dict(kwargs))[0]

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[T]:
        """Like ``map(fn, *iterables)``, the calls running on the cluster; the results come lazily, in order.

        Every call is submitted before ``map`` returns. ``timeout`` counts from this call: a result not ready
        by then raises TimeoutError. If the returned iterator raises (a failed call, a timeout) or is closed
        early, the calls not yet consumed are cancelled. With ``chunksize`` > 1, the calls go in chunks of
        that many, one task per chunk, as ``ProcessPoolExecutor`` sends them.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        end_time = None if timeout is None else timeout + time.monotonic()
        calls = zip(*iterables, strict=False)  # the shortest iterable ends the map, as builtin map
        if chunksize == 1:
            futures = self._submit_many(fn, list(calls), {})
            return _results_in_order(futures, end_time)
        chunks = [(fn, chunk) for chunk in iter(lambda: tuple(itertools.islice(calls, chunksize)), ())]
        chunk_futures = self._submit_many(_process_chunk, chunks, {})
        return _flattened(_results_in_order(chunk_futures, end_time))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work. Safe to call more than once.

        ``cancel_futures`` cancels every call not yet done. ``wait`` waits for the others to end. An owned
        Client is closed once they have (at once with ``wait``; from a background thread without); a
        borrowed Client is left open.
        """
        with self._shutdown_lock:
            already = self._shutdown
            self._shutdown = True
        with self._pending_lock:
            pending = list(self._pending)
        if cancel_futures:
            for future in pending:
                future.cancel()
        if wait:
            concurrent.futures.wait(pending)
            if self._owns_client:
                self._client.disconnect()
        elif self._owns_client and not already:
            closer = threading.Thread(
                target=_disconnect_when_done,
                args=(self._client, pending),
                name="scaler-executor-shutdown",
                daemon=True,
            )
            closer.start()

    # ------------------------------------------------------------------ internals

    def _submit_many(self, fn: Callable[..., Any], argument_tuples: list[Any], kwargs: dict[str, Any]) -> list[Any]:
        with self._shutdown_lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if not argument_tuples:
                return []
            futures = self._client._submit_batch(fn, argument_tuples, kwargs, None)
            with self._pending_lock:
                self._pending.update(futures)
            for future in futures:
                future.add_done_callback(self._forget)
        return futures

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(future)


def executor(client: Client) -> ScalerExecutor:
    """A ScalerExecutor that submits through ``client`` and leaves it open at shutdown (``Client.executor()``)."""
    return ScalerExecutor(client)


def _process_chunk(fn: Callable[..., Any], chunk: tuple[tuple[Any, ...], ...]) -> list[Any]:
    """Run on a worker: the results of ``fn`` over one chunk of argument tuples."""
    return [fn(*arguments) for arguments in chunk]


def _results_in_order(futures: list[Any], end_time: float | None) -> Iterator[Any]:
    """Yield each future's result in order; cancel the rest if stopped (closed, failed or timed out)."""
    remaining = list(reversed(futures))
    try:
        while remaining:
            future = remaining.pop()
            try:
                if end_time is None:
                    yield future.result()
                else:
                    yield future.result(end_time - time.monotonic())
            finally:
                future.cancel()  # a no-op once done; stops a future that timed out
    finally:
        for future in remaining:
            future.cancel()


def _flattened(chunk_results: Iterator[list[Any]]) -> Iterator[Any]:
    """The items of each chunk's result list, chunk by chunk; closing this closes ``chunk_results``."""
    try:
        for results in chunk_results:
            yield from results
    finally:
        close = getattr(chunk_results, "close", None)
        if close is not None:
            close()


def _disconnect_when_done(client: Client, futures: list[ScalerFuture]) -> None:
    concurrent.futures.wait(futures)
    client.disconnect()
