"""The nodes a ScalerStream adds to streamz: scatter, the task-submitting map, starmap and accumulate,
gather, a buffer that bounds the unfinished tasks, and ScalerStream versions of streamz's buffering,
windowing and joining nodes."""

from __future__ import annotations

import asyncio
import functools
import logging
import operator
from collections.abc import Callable
from typing import Any

from streamz import Stream, core  # type: ignore[import-untyped]
from tornado.locks import Event, Semaphore

from scaler.client.client import Client
from scaler.streams.remote import identity, star_apply
from scaler.streams.stream import ScalerStream
from scaler.streams.waiting import results_of

logger = logging.getLogger(__name__)

Metadata = list[dict[str, Any]]


@Stream.register_api()
class scatter(ScalerStream):
    """Send every element to the cluster: downstream, the stream carries ScalerFutures.

    Each element becomes a task that returns it, so the value is stored on the cluster and the tasks
    that take it receive it from there. ``client`` is the Client to use; by default the default client
    (see ``scaler.streams.default_client``) when the first element arrives.

    Examples
    --------
    >>> source.scatter().map(inc).buffer(8).gather().sink(print)
    """

    def __init__(self, upstream: Stream, client: Client | None = None, **kwargs: Any) -> None:
        super().__init__(upstream, client=client, **kwargs)

    def update(self, x: Any, who: Stream | None = None, metadata: Metadata | None = None) -> Any:
        return self._emit(self.client.submit(identity, x), metadata=metadata)


@ScalerStream.register_api()
class map(ScalerStream):
    """Submit ``func(element, *args, **kwargs)`` for every element; passes its future on at once.

    The element, a future, is the task's argument: the task starts when it is ready and receives its
    value on the cluster, without a round trip through this process.
    """

    def __init__(self, upstream: Stream, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.func = func
        stream_name = kwargs.pop("stream_name", None)
        self.args = args
        self.kwargs = kwargs
        super().__init__(upstream, stream_name=stream_name)

    def update(self, x: Any, who: Stream | None = None, metadata: Metadata | None = None) -> Any:
        future = self.client.submit(self.func, x, *self.args, **self.kwargs)
        return self._emit(future, metadata=metadata)


@ScalerStream.register_api()
class starmap(ScalerStream):
    """Submit ``func(*element, *args, **kwargs)`` for every element (a future of a tuple)."""

    def __init__(self, upstream: Stream, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.func = func
        stream_name = kwargs.pop("stream_name", None)
        self.args = args
        self.kwargs = kwargs
        # One function object for all the tasks: the client serializes and sends it once.
        self._call = functools.partial(star_apply, func, args, kwargs)
        super().__init__(upstream, stream_name=stream_name)

    def update(self, x: Any, who: Stream | None = None, metadata: Metadata | None = None) -> Any:
        return self._emit(self.client.submit(self._call, x), metadata=metadata)


@ScalerStream.register_api()
class accumulate(ScalerStream):
    """Submit ``func(state, element, **kwargs)`` for every element; the state is the previous task's future.

    As streamz's ``accumulate``: ``start`` is the first state (by default the first element, passed on
    as it is), ``returns_state=True`` means ``func`` returns ``(state, result)``, and
    ``with_state=True`` emits ``(state, result)`` pairs.
    """

    def __init__(
        self,
        upstream: Stream,
        func: Callable[..., Any],
        start: Any = core.no_default,
        returns_state: bool = False,
        **kwargs: Any,
    ) -> None:
        self.func = func
        self.state = start
        self.returns_state = returns_state
        stream_name = kwargs.pop("stream_name", None)
        self.with_state = kwargs.pop("with_state", False)
        self.kwargs = kwargs
        super().__init__(upstream, stream_name=stream_name)

    def update(self, x: Any, who: Stream | None = None, metadata: Metadata | None = None) -> Any:
        if self.state is core.no_default:
            self.state = x
            return self._emit((x, x) if self.with_state else x, metadata=metadata)
        client = self.client
        result = client.submit(self.func, self.state, x, **self.kwargs)
        if self.returns_state:
            self.state = client.submit(operator.getitem, result, 0)
            result = client.submit(operator.getitem, result, 1)
        else:
            self.state = result
        return self._emit((self.state, result) if self.with_state else result, metadata=metadata)


@ScalerStream.register_api()
class gather(core.Stream):
    """Wait for every element's tasks and pass their results on, in order, as a local stream.

    An element may be a future or a list, tuple or dict of futures (``zip``, ``partition``). A task
    that failed raises its exception here: from ``emit`` when no ``buffer`` is upstream, else from the
    buffer (see ``buffer``). Put a ``buffer(n)`` before it to let ``n`` tasks run at once.
    """

    async def update(self, x: Any, who: Stream | None = None, metadata: Metadata | None = None) -> Any:
        self._retain_refs(metadata)
        try:
            value = await results_of(x)
            return await asyncio.gather(*self._emit(value, metadata=metadata))
        finally:
            self._release_refs(metadata)


@ScalerStream.register_api()
class buffer(ScalerStream, core.buffer):
    """Let up to ``n`` elements wait here for the nodes downstream: the back-pressure of the pipeline.

    ``emit`` returns while fewer than ``n`` elements are held (queued here, or being gathered
    downstream), and blocks while ``n`` are, until the oldest has gone through: with
    ``scatter().map(f).buffer(n).gather()``, at most ``n`` tasks are unfinished and ``n`` run at once.

    An element that fails downstream does not stop the pipeline: its exception is kept and raised by
    the next ``emit`` that reaches this buffer (after that element has been accepted), or by
    ``scaler.streams.drain``. ``held`` is the number of elements held now.
    """

    def __init__(self, upstream: Stream, n: int, **kwargs: Any) -> None:
        if n < 1:
            raise ValueError(f"buffer size must be at least 1, not {n!r}")
        self._free = Semaphore(n)
        self.held = 0  # elements accepted and not yet through the downstream nodes
        self._idle = Event()
        self._idle.set()
        self._error: BaseException | None = None
        super().__init__(upstream, n, **kwargs)

    async def update(self, x: Any, who: Stream | None = None, metadata: Metadata | None = None) -> None:
        await self._free.acquire()
        self.held += 1
        self._idle.clear()
        self._retain_refs(metadata)
        self.queue.put_nowait((x, metadata))  # never full: the semaphore admits at most n
        self.raise_kept_error()

    async def cb(self) -> None:
        """Pass the queued elements downstream one at a time, in order (runs on the loop for ever)."""
        while True:
            x, metadata = await self.queue.get()
            try:
                await asyncio.gather(*self._emit(x, metadata=metadata))
            except Exception as exc:
                self._keep(exc)
            finally:
                self._release_refs(metadata)
                self.held -= 1
                if self.held == 0:
                    self._idle.set()
                self._free.release()

    def raise_kept_error(self) -> None:
        """Raise, once, the exception of an element that failed downstream, if one did."""
        error, self._error = self._error, None
        if error is not None:
            raise error

    async def wait_idle(self) -> None:
        """Return once no element is held here."""
        await self._idle.wait()

    def _keep(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        else:  # one exception is raised at a time; the others are only logged
            logger.error("stream element failed after %r, which is not raised yet: %r", self._error, error)


@ScalerStream.register_api()
class combine_latest(ScalerStream, core.combine_latest):
    """streamz's ``combine_latest`` on futures."""


@ScalerStream.register_api()
class delay(ScalerStream, core.delay):
    """streamz's ``delay`` on futures."""


@ScalerStream.register_api()
class latest(ScalerStream, core.latest):
    """streamz's ``latest`` on futures."""


@ScalerStream.register_api()
class partition(ScalerStream, core.partition):
    """streamz's ``partition`` on futures: emits tuples of futures."""


@ScalerStream.register_api()
class rate_limit(ScalerStream, core.rate_limit):
    """streamz's ``rate_limit`` on futures."""


@ScalerStream.register_api()
class sliding_window(ScalerStream, core.sliding_window):
    """streamz's ``sliding_window`` on futures: emits tuples of futures."""


@ScalerStream.register_api()
class timed_window(ScalerStream, core.timed_window):
    """streamz's ``timed_window`` on futures: emits lists of futures."""


@ScalerStream.register_api()
class union(ScalerStream, core.union):
    """streamz's ``union`` of ScalerStreams."""


@ScalerStream.register_api()
class zip(ScalerStream, core.zip):
    """streamz's ``zip`` of ScalerStreams: emits tuples of futures."""
