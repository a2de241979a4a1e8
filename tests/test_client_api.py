"""The public client API end to end: real scheduler, real workers, real sockets."""

from __future__ import annotations

import concurrent.futures
import math
import threading
import time
import traceback

import pytest

from scaler import Client, SchedulerClusterCombo, SchedulerLostError, SerializationError, ShutdownRefusedError
from scaler.io.address import local_address
from tests import tasks
from tests.helpers import wait_until


@pytest.mark.timeout(120)
def test_map_of_10000_tasks_on_two_workers_returns_every_result_in_order(client: Client) -> None:
    results = client.map(tasks.square, [(i,) for i in range(10_000)])
    assert results == [i * i for i in range(10_000)]


def test_submit_returns_a_concurrent_futures_future(client: Client) -> None:
    future = client.submit(math.sqrt, 81)
    assert isinstance(future, concurrent.futures.Future)
    assert future.result(timeout=30) == 9.0
    assert future.done() and not future.cancelled() and future.exception() is None


def test_submit_passes_keyword_arguments(client: Client) -> None:
    assert client.submit(tasks.describe_call, 1, 2, key="k").result(timeout=30) == ((1, 2), {"key": "k"})


def test_futures_work_with_wait_and_as_completed(client: Client) -> None:
    futures = [client.submit(tasks.add, i, i) for i in range(50)]
    done, not_done = concurrent.futures.wait(futures, timeout=30)
    assert not not_done and len(done) == 50
    seen = sorted(f.result() for f in concurrent.futures.as_completed(futures, timeout=30))
    assert seen == sorted(2 * i for i in range(50))


def test_done_callbacks_run_with_the_finished_future(client: Client) -> None:
    called = threading.Event()
    values: list[int] = []
    future = client.submit(tasks.add, 20, 22)
    future.add_done_callback(lambda f: (values.append(f.result()), called.set()))
    assert called.wait(30)
    assert values == [42]


def test_map_of_nothing_is_an_empty_list(client: Client) -> None:
    assert client.map(tasks.square, []) == []


def test_starmap_is_map(client: Client) -> None:
    assert client.starmap(tasks.add, [(1, 2), (3, 4)]) == [3, 7]


def test_map_rejects_items_that_are_not_argument_tuples(client: Client) -> None:
    with pytest.raises(TypeError, match="argument tuples"):
        client.map(tasks.square, [1, 2, 3])


def test_a_raising_task_reraises_its_exception_with_the_remote_traceback(client: Client) -> None:
    future = client.submit(tasks.raise_value_error, "x")
    with pytest.raises(ValueError, match="^x$") as caught:
        future.result(timeout=30)
    names = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert "raise_value_error" in names


def test_map_raises_the_exception_of_a_failing_task(client: Client) -> None:
    with pytest.raises(ValueError, match="bad"):
        client.map(tasks.raise_value_error, [("bad",)])


def test_result_timeout_raises_timeout_error_and_the_task_goes_on(client: Client) -> None:
    future = client.submit(tasks.sleep_and_return, 0.5, "late")
    with pytest.raises(TimeoutError):
        future.result(timeout=0.01)
    assert future.result(timeout=30) == "late"


def test_a_function_that_cannot_be_serialized_fails_in_the_caller(client: Client) -> None:
    lock = threading.Lock()

    def uses_lock() -> bool:
        return lock.locked()

    with pytest.raises(SerializationError, match="cannot serialize function"):
        client.submit(uses_lock)


def test_an_argument_that_cannot_be_serialized_fails_in_the_caller(client: Client) -> None:
    with pytest.raises(SerializationError, match="argument 0"):
        client.submit(tasks.identity, threading.Lock())
    assert client.submit(tasks.identity, 5).result(timeout=30) == 5  # the client still works


def test_a_result_that_cannot_be_serialized_fails_clearly(client: Client) -> None:
    future = client.submit(threading.Lock)
    with pytest.raises(SerializationError, match="cannot serialize the result"):
        future.result(timeout=30)


def test_shutdown_is_refused_while_the_scheduler_is_protected(client: Client) -> None:
    with pytest.raises(ShutdownRefusedError, match="protected"):
        client.shutdown()
    assert client.submit(tasks.add, 1, 1).result(timeout=30) == 2


def test_connecting_where_no_scheduler_listens_fails_within_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(SchedulerLostError, match="no scheduler answered"):
        Client(local_address(), timeout_seconds=1)
    assert time.monotonic() - started < 10


def test_a_disconnected_client_refuses_more_work(cluster: SchedulerClusterCombo) -> None:
    client = Client(cluster.get_address(), timeout_seconds=30)
    client.disconnect()
    with pytest.raises(RuntimeError, match="disconnected"):
        client.submit(tasks.add, 1, 2)


def test_an_unprotected_scheduler_shuts_down_on_request() -> None:
    combo = SchedulerClusterCombo(n_workers=1, protected=False)
    try:
        with Client(combo.get_address(), timeout_seconds=30) as client:
            assert client.submit(tasks.add, 2, 3).result(timeout=30) == 5
            client.shutdown()
        assert wait_until(lambda: combo._scheduler.exitcode is not None, timeout_seconds=10)
        assert combo._scheduler.exitcode == 0
    finally:
        combo.shutdown()


def test_task_keywords_named_like_options_reach_the_task(client: Client) -> None:
    assert client.submit(tasks.describe_call, 1, profiling=2, fn="f").result(timeout=30) == (
        (1,),
        {"profiling": 2, "fn": "f"},
    )
    future = client.submit_verbose(tasks.describe_call, (1,), {"profiling": 3}, profiling=True)
    assert future.result(timeout=30) == ((1,), {"profiling": 3})
    assert future.profiling_info().duration_s >= 0
    with pytest.raises(TypeError):
        client.map(tasks.add, [(1, 2)], True)  # type: ignore[misc]  # options are keyword-only


def test_scheduler_info_tells_the_workers_and_their_figures(client: Client) -> None:
    assert client.submit(tasks.square, 3).result(timeout=30) == 9
    info = client.scheduler_info()
    assert len(info["workers"]) == 2 and all("cpu_percent" in worker for worker in info["workers"])
    assert info["tasks"]["succeeded"] >= 1
    assert any(line["number"] == client.client_number for line in info["clients"])
    assert any(line["name"] == "square" for line in info["functions"])
