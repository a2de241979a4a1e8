"""Objects, graphs, nested tasks, the serializer plug-in, profiling and cancellation, end to end."""

from __future__ import annotations

import operator
import time

import psutil
import pytest

from scaler import Client, GraphError, MissingProfilingInfoError, SchedulerClusterCombo
from tests import tasks
from tests.helpers import wait_until


def test_an_object_sent_once_arrives_in_tasks_as_the_original(client: Client) -> None:
    reference = client.send_object({"numbers": list(range(100))}, name="numbers")
    assert client.map(operator.getitem, [(reference, "numbers")] * 3) == [list(range(100))] * 3


def _layered_graph(layers: int, width: int) -> tuple[dict, list]:
    graph: dict = {("x", 0, i): i for i in range(width)}
    expected = {("x", 0, i): i for i in range(width)}
    for layer in range(1, layers):
        for i in range(width):
            left, right = ("x", layer - 1, i), ("x", layer - 1, (i + 1) % width)
            graph[("x", layer, i)] = (operator.add, left, right)
            expected[("x", layer, i)] = expected[left] + expected[right]
    keys = [("x", layers - 1, i) for i in range(width)]
    return graph, [(key, expected[key]) for key in keys]


@pytest.mark.timeout(120)
def test_a_5000_node_layered_graph_returns_the_right_values(client: Client) -> None:
    graph, expected = _layered_graph(50, 100)
    result = client.get(graph, keys=[key for key, _ in expected])
    assert [result[key] for key, _ in expected] == [value for _, value in expected]


def test_a_graph_runs_only_what_its_keys_need(client: Client) -> None:
    graph = {"a": 1, "b": (tasks.add, "a", 10), "c": (sum, ["a", "b"]), "never": (tasks.raise_value_error, "ran")}
    assert client.get(graph, keys=["c", "b"]) == {"c": 12, "b": 11}


def test_a_cyclic_graph_and_a_missing_key_fail_at_once(client: Client) -> None:
    with pytest.raises(GraphError, match="cycle"):
        client.get({"a": (tasks.add, "b", 1), "b": (tasks.add, "a", 1)}, keys=["a"])
    with pytest.raises(GraphError, match="not in the graph"):
        client.get({"a": 1}, keys=["missing"])


def test_a_graph_without_blocking_returns_futures(client: Client) -> None:
    futures = client.get({"a": (tasks.add, 1, 2), "b": (tasks.square, "a")}, keys=["b"], block=False)
    assert futures["b"].result(timeout=30) == 9


def test_a_failing_graph_node_fails_its_dependents(client: Client) -> None:
    graph = {"bad": (tasks.raise_value_error, "boom"), "after": (tasks.add, "bad", 1)}
    with pytest.raises(ValueError, match="boom"):
        client.get(graph, keys=["after"])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("n_workers", [1, 4])
def test_nested_fibonacci_does_not_deadlock(n_workers: int) -> None:
    with SchedulerClusterCombo(n_workers=n_workers) as cluster, Client(cluster.get_address()) as client:
        assert client.submit(tasks.fibonacci, client, 8).result(timeout=100) == 21


@pytest.mark.timeout(60)
def test_a_task_waiting_on_a_nested_graph_and_map_does_not_deadlock_a_single_worker() -> None:
    with SchedulerClusterCombo(n_workers=1) as cluster, Client(cluster.get_address()) as client:
        assert client.submit(tasks.nested_graph_and_map, client, 10).result(timeout=30) == 21 + 30


def test_a_client_created_inside_a_task_without_address_finds_its_scheduler(client: Client) -> None:
    assert client.submit(tasks.nested_without_address, 21).result(timeout=60) == 42


def test_a_custom_serializer_is_used_end_to_end(cluster: SchedulerClusterCombo) -> None:
    with Client(cluster.get_address(), serializer=tasks.TaggingSerializer()) as client:
        assert client.submit(tasks.receives_tagged_bytes, {"k": [1, 2]}).result(timeout=30) == {"k": [1, 2]}
        assert client.map(tasks.add, [(1, 2), (3, 4)]) == [3, 7]
        reference = client.send_object([5, 6])
        assert client.submit(tasks.length, reference).result(timeout=30) == 2


def test_profiling_info_under_both_spellings(client: Client) -> None:
    future = client.submit_verbose(tasks.sleep_and_return, (0.05, "x"), profiling=True)
    with pytest.raises(MissingProfilingInfoError):
        future.profiling_info()
    assert future.result(timeout=30) == "x"
    info = future.profiling_info()
    assert info.duration_s >= 0.04 and info.duration_us >= 40_000
    assert info.cpu_time_s >= 0 and info.memory_peak >= 0 and info.peak_memory == info.memory_peak


def test_cancelling_a_queued_and_a_running_task_ends_both_cancelled_and_the_worker_goes_on() -> None:
    with SchedulerClusterCombo(n_workers=1) as cluster, Client(cluster.get_address()) as client:
        running = client.submit(tasks.sleep_and_return, 30, "never")
        queued = client.submit(tasks.sleep_and_return, 30, "never either")
        assert wait_until(lambda: _busy(cluster), timeout_seconds=20)
        started = time.monotonic()
        assert queued.cancel() and running.cancel()
        assert queued.cancelled() and running.cancelled()
        assert client.submit(tasks.add, 2, 2).result(timeout=10) == 4
        assert time.monotonic() - started < 10


def _busy(cluster: SchedulerClusterCombo) -> bool:
    for pid in cluster.worker_pids:
        for child in psutil.Process(pid).children():
            if child.cpu_times().user >= 0 and child.status() == psutil.STATUS_SLEEPING:
                return True
    return False


def test_clear_cancels_pending_futures(cluster: SchedulerClusterCombo) -> None:
    with Client(cluster.get_address()) as client:
        futures = [client.submit(tasks.sleep_and_return, 5, i) for i in range(6)]
        client.clear()
        assert all(f.cancelled() for f in futures)
        assert client.submit(tasks.add, 1, 1).result(timeout=30) == 2
