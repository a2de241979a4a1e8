"""scaler.ScalerExecutor: a concurrent.futures.Executor over a cluster, checked against ProcessPoolExecutor."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import time
from typing import Any

import pytest

from scaler import Client, ScalerExecutor, SchedulerClusterCombo
from scaler.client.executor import executor as client_executor
from tests import tasks
from tests.helpers import wait_until


def workload(executor: concurrent.futures.Executor) -> list[Any]:
    """Code written for any Executor: the same results whichever one runs it."""
    single = executor.submit(tasks.add, 1, 2).result()
    squares = list(executor.map(tasks.square, range(20)))
    sums = list(executor.map(tasks.add, range(7), range(100, 107), chunksize=3))
    futures = [executor.submit(tasks.square, i) for i in range(10)]
    completed = sorted(f.result() for f in concurrent.futures.as_completed(futures, timeout=60))
    try:
        executor.submit(tasks.raise_value_error, "boom").result(timeout=60)
        failure = None
    except ValueError as exc:
        failure = str(exc)
    return [single, squares, sums, completed, failure]


def test_the_same_code_gives_the_same_results_on_a_process_pool_and_on_scaler(client: Client) -> None:
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        expected = workload(pool)
    with ScalerExecutor(client) as executor:
        assert workload(executor) == expected
    assert expected[0] == 3 and expected[4] == "boom"


def test_map_yields_results_in_order_as_they_come_and_closing_it_cancels_the_rest(client: Client) -> None:
    executor = ScalerExecutor(client)
    results = executor.map(tasks.sleep_and_return, [0.2, 0, 60], ["a", "b", "c"])
    assert next(results) == "a" and next(results) == "b"  # while "c" still sleeps: the results are lazy
    results.close()
    started = time.monotonic()
    executor.shutdown(wait=True)  # returns at once only if the 60 s task was cancelled
    assert time.monotonic() - started < 30


def test_map_zips_several_iterables_stopping_at_the_shortest(client: Client) -> None:
    with ScalerExecutor(client) as executor:
        assert list(executor.map(tasks.add, range(5), range(10, 1000))) == [10, 12, 14, 16, 18]
        assert list(executor.map(tasks.add, [], [1, 2])) == []
        assert list(executor.map(tasks.describe_call, "ab", (1, 2), [None, True])) == [
            (("a", 1, None), {}),
            (("b", 2, True), {}),
        ]


def test_map_with_a_chunksize_sends_one_task_per_chunk(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[int] = []
    submit_batch = client._submit_batch

    def counting(fn: Any, argument_tuples: list[Any], kwargs: dict[str, Any], profiling: bool | None) -> Any:
        batches.append(len(argument_tuples))
        return submit_batch(fn, argument_tuples, kwargs, profiling)

    monkeypatch.setattr(client, "_submit_batch", counting)
    with ScalerExecutor(client) as executor:
        assert list(executor.map(tasks.add, range(10), range(10), chunksize=4)) == [2 * i for i in range(10)]
        assert batches == [3]  # chunks of 4, 4 and 2 calls
        assert list(executor.map(tasks.square, range(3), chunksize=100)) == [0, 1, 4]
        with pytest.raises(ValueError, match="chunksize"):
            executor.map(tasks.square, range(3), chunksize=0)


def test_a_closed_chunked_map_cancels_its_remaining_chunks(client: Client) -> None:
    executor = ScalerExecutor(client)
    results = executor.map(tasks.sleep_and_return, [0, 0, 60, 60], "abcd", chunksize=2)
    assert next(results) == "a"
    results.close()
    started = time.monotonic()
    executor.shutdown(wait=True)
    assert time.monotonic() - started < 30


def test_map_raises_timeout_error_counted_from_the_call_and_cancels_what_is_left(client: Client) -> None:
    executor = ScalerExecutor(client)
    results = executor.map(tasks.sleep_and_return, [0, 60, 60], "abc", timeout=0.5)
    assert next(results) == "a"
    with pytest.raises(TimeoutError):
        next(results)
    started = time.monotonic()
    executor.shutdown(wait=True)
    assert time.monotonic() - started < 30


def test_exceptions_of_calls_propagate_through_submit_and_map(client: Client) -> None:
    with ScalerExecutor(client) as executor:
        future = executor.submit(tasks.raise_value_error, "boom")
        with pytest.raises(ValueError, match="boom"):
            future.result(timeout=60)
        assert isinstance(future.exception(), ValueError)
        results = executor.map(tasks.identity, [1, 2])
        assert list(results) == [1, 2]
        failing = executor.map(tasks.raise_value_error, ["first"])
        with pytest.raises(ValueError, match="first"):
            list(failing)


def test_submit_hands_every_keyword_to_the_function(client: Client) -> None:
    with ScalerExecutor(client) as executor:
        future = executor.submit(tasks.describe_call, 1, profiling=True, x=2)
        assert future.result(timeout=60) == ((1,), {"profiling": True, "x": 2})


def test_shutdown_waits_for_running_calls_and_refuses_new_ones(client: Client) -> None:
    executor = ScalerExecutor(client)
    future = executor.submit(tasks.sleep_and_return, 0.3, "done")
    executor.shutdown(wait=True)
    assert future.done() and future.result() == "done"
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(tasks.square, 2)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.map(tasks.square, [2])
    executor.shutdown()  # a second shutdown does nothing
    assert client.connected  # a borrowed client stays open
    assert client.submit(tasks.square, 3).result(timeout=60) == 9


def test_shutdown_with_cancel_futures_cancels_what_has_not_ended(client: Client) -> None:
    executor = ScalerExecutor(client)
    quick = executor.submit(tasks.square, 4)
    assert quick.result(timeout=60) == 16
    sleepers = [executor.submit(tasks.sleep_and_return, 60, i) for i in range(3)]
    executor.shutdown(wait=True, cancel_futures=True)
    assert all(f.cancelled() for f in sleepers) and not quick.cancelled()


def test_shutdown_without_wait_returns_at_once(client: Client) -> None:
    executor = ScalerExecutor(client)
    sleeper = executor.submit(tasks.sleep_and_return, 60, "late")
    started = time.monotonic()
    executor.shutdown(wait=False)
    assert time.monotonic() - started < 5 and not sleeper.done()
    sleeper.cancel()


def test_the_context_manager_waits_for_every_call(client: Client) -> None:
    with ScalerExecutor(client) as executor:
        futures = [executor.submit(tasks.sleep_and_return, 0.1, i) for i in range(5)]
    assert all(f.done() for f in futures) and [f.result() for f in futures] == list(range(5))
    assert client.connected


def test_an_executor_given_an_address_owns_its_client_and_closes_it(cluster: SchedulerClusterCombo) -> None:
    with ScalerExecutor(cluster.get_address(), timeout_seconds=30) as executor:
        assert executor.owns_client and executor.client.connected
        assert executor.submit(tasks.add, 2, 3).result(timeout=60) == 5
    assert not executor.client.connected


def test_an_owned_client_closes_after_its_calls_when_shut_down_without_wait(cluster: SchedulerClusterCombo) -> None:
    executor = ScalerExecutor(cluster.get_address(), timeout_seconds=30)
    future = executor.submit(tasks.sleep_and_return, 0.3, "kept")
    executor.shutdown(wait=False)
    assert future.result(timeout=60) == "kept"  # not cancelled by the shutdown
    assert wait_until(lambda: not executor.client.connected, timeout_seconds=30)


def test_a_borrowed_client_is_not_owned_and_takes_no_client_options(client: Client) -> None:
    executor = client_executor(client)
    assert not executor.owns_client and executor.client is client
    executor.shutdown()
    assert client.connected
    with pytest.raises(TypeError):
        ScalerExecutor(client, timeout_seconds=3)
    with pytest.raises(TypeError):
        ScalerExecutor(42)  # type: ignore[arg-type]


async def test_run_in_executor_runs_the_call_on_the_cluster(client: Client) -> None:
    loop = asyncio.get_running_loop()
    with ScalerExecutor(client) as executor:
        assert await loop.run_in_executor(executor, tasks.add, 1, 2) == 3
        values = await asyncio.gather(*(loop.run_in_executor(executor, tasks.square, i) for i in range(20)))
        assert values == [i * i for i in range(20)]
        with pytest.raises(ValueError, match="boom"):
            await loop.run_in_executor(executor, tasks.raise_value_error, "boom")


def test_client_executor_leaves_its_client_open(cluster: SchedulerClusterCombo) -> None:
    with Client(cluster.get_address()) as client:
        with client.executor() as pool:
            assert list(pool.map(pow, [2, 3], [10, 3])) == [1024, 27]
        assert client.connected and client.submit(pow, 2, 3).result(timeout=30) == 8
