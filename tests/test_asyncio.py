"""asyncio: awaiting a ScalerFuture, asyncio.gather, and ``async for`` over scaler.as_completed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import scaler
from scaler import Client
from tests import tasks
from tests.helpers import wait_until


async def test_await_a_submitted_task_gives_its_value(client: Client) -> None:
    assert await client.submit(tasks.add, 1, 2) == 3
    done = client.submit(tasks.square, 5)
    done.result(timeout=60)
    assert await done == 25  # already done: no waiting at all


async def test_gather_awaits_many_futures_in_order(client: Client) -> None:
    values = await asyncio.gather(*(client.submit(tasks.square, i) for i in range(200)))
    assert values == [i * i for i in range(200)]


async def test_a_failing_task_raises_its_exception_in_await(client: Client) -> None:
    with pytest.raises(ValueError, match="boom"):
        await client.submit(tasks.raise_value_error, "boom")
    results = await asyncio.gather(
        client.submit(tasks.raise_value_error, "again"), client.submit(tasks.square, 3), return_exceptions=True
    )
    assert isinstance(results[0], ValueError) and results[1] == 9


async def test_the_loop_runs_other_coroutines_while_a_future_is_awaited(client: Client) -> None:
    sleeper = client.submit(tasks.sleep_and_return, 60, "late")
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")  # runs only if the loop is not blocked by the await
        sleeper.cancel()

    waiting = asyncio.create_task(_await(sleeper))
    await asyncio.sleep(0)  # let the waiting task start awaiting first
    await asyncio.create_task(other())
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 30)  # a cancelled future raises CancelledError in await
    assert ran == ["other"]


async def test_timing_out_an_await_cancels_the_task(client: Client) -> None:
    sleeper = client.submit(tasks.sleep_and_return, 60, "late")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(sleeper, 0.2)
    assert wait_until(sleeper.cancelled, timeout_seconds=10)


async def test_async_as_completed_yields_first_ended_first(client: Client) -> None:
    sleeper = client.submit(tasks.sleep_and_return, 60, "late")
    quick = client.submit(tasks.square, 3)
    order = []
    async for future in scaler.as_completed([sleeper, quick, quick]):
        order.append(future)
        if future is quick:
            sleeper.cancel()  # ends the sleeper, which then comes second
    assert order == [quick, sleeper] and sleeper.cancelled()


async def test_async_as_completed_with_results_pairs_futures_and_values(client: Client) -> None:
    futures = [client.submit(tasks.square, i) for i in range(20)]
    pairs: list[tuple[Any, Any]] = [pair async for pair in scaler.as_completed(futures, with_results=True)]
    assert sorted(value for _, value in pairs) == [i * i for i in range(20)]
    assert all(future.result() == value for future, value in pairs)
    with pytest.raises(ValueError, match="boom"):
        async for _ in scaler.as_completed([client.submit(tasks.raise_value_error, "boom")], with_results=True):
            pass


async def test_async_as_completed_raises_timeout_error(client: Client) -> None:
    sleeper = client.submit(tasks.sleep_and_return, 60, "late")
    with pytest.raises(TimeoutError):
        async for _ in scaler.as_completed([sleeper], timeout=0.2):
            pass
    sleeper.cancel()


def test_as_completed_keeps_its_iterator_form(client: Client) -> None:
    futures = [client.submit(tasks.square, i) for i in range(5)]
    completed = scaler.as_completed(futures)
    first = next(completed)
    assert first in futures
    assert sorted([first, *completed], key=futures.index) == futures


async def _await(future: Any) -> Any:
    return await future
