"""drain: wait, from synchronous code, until a pipeline's buffers have let every element through."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator

from streamz import Stream  # type: ignore[import-untyped]

from scaler.streams.nodes import buffer


def drain(stream: Stream, timeout: float | None = None) -> None:
    """Block until every element emitted so far into ``stream``'s pipeline has gone through its buffers.

    ``emit`` returns once an element is in a ``buffer``; ``drain`` waits until every buffer of the
    pipeline (all the nodes connected to ``stream``) is empty and its last element has reached the
    sinks. It raises the exception of an element that failed downstream of a buffer and was not yet
    raised by ``emit``, and TimeoutError after ``timeout`` seconds. Call it from outside the stream's
    event loop, as ``emit`` is called. Elements held by time-based nodes (``delay``, ``timed_window``,
    ``rate_limit``) are not waited for.
    """
    buffers = [node for node in _pipeline(stream) if isinstance(node, buffer)]
    if not buffers:
        return  # emit returns only once its element has gone all the way through
    loop = buffers[0].loop.asyncio_loop
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError("drain() blocks: call it from outside the stream's event loop")
    waiting = asyncio.run_coroutine_threadsafe(_drained(buffers), loop)
    try:
        waiting.result(timeout)
    except concurrent.futures.TimeoutError:
        waiting.cancel()
        raise TimeoutError(f"the stream's buffers still hold elements after {timeout:g} s") from None


async def _drained(buffers: list[buffer]) -> None:
    """Return once no buffer holds an element (all at once), raising a failure one of them kept."""
    while True:
        for node in buffers:
            node.raise_kept_error()
        busy = [node for node in buffers if node.held]
        if not busy:
            return
        await busy[0].wait_idle()


def _pipeline(stream: Stream) -> Iterator[Stream]:
    """Every node connected to ``stream``, upstream or downstream, ``stream`` included."""
    seen = {id(stream)}
    todo = [stream]
    while todo:
        node = todo.pop()
        yield node
        for other in [*node.upstreams, *node.downstreams]:
            if other is not None and id(other) not in seen:
                seen.add(id(other))
                todo.append(other)
