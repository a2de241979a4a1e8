"""Waiting on a stream's event loop for ScalerFutures, without blocking the loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any


async def results_of(value: Any) -> Any:
    """``value`` with every future in it, alone or inside lists, tuples and dicts, replaced by its result.

    Waits on the running loop; a failed future raises its task's exception, a cancelled one
    ``concurrent.futures.CancelledError``.
    """
    if isinstance(value, concurrent.futures.Future):
        await _done(value)
        return value.result()
    kind = type(value)
    if kind is list or kind is tuple:
        return kind([await results_of(item) for item in value])
    if kind is dict:
        return {key: await results_of(item) for key, item in value.items()}
    return value


async def _done(future: concurrent.futures.Future[Any]) -> None:
    """Return once ``future`` is done; its callback (on the client's I/O thread) wakes this loop."""
    if future.done():
        return
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake(_: concurrent.futures.Future[Any]) -> None:
        try:
            loop.call_soon_threadsafe(_settle, woken)
        except RuntimeError:  # the loop has been closed: nobody waits any more
            pass

    future.add_done_callback(wake)
    await woken


def _settle(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)
