"""Duration-aware dispatch on real clusters: long tasks spread at once, waiting work moves to idle workers,
every moved task runs and is answered once, and clients take turns.

Nothing here is timed: each test checks where tasks ran and what the scheduler reports.
"""

from __future__ import annotations

import concurrent.futures
import itertools
from typing import Any

import pytest

from scaler import Client
from scaler.protocol.ids import client_number_of_task, task_id_base
from scaler.protocol.messages import ArgumentKind, MessageType, TaskFlag
from scaler.scheduler.dispatch_policy import LONG_TASK_SECONDS, TURN_SECONDS
from tests import tasks
from tests.cluster_parts import Cluster, StatusReader
from tests.helpers import wait_until
from tests.scheduler_wiring import FUNCTION, Wiring
from tests.test_scheduler_managers import assigned_ids


def counters(status: StatusReader) -> dict[str, Any]:
    """The task counts of the status, with the task manager's counters beside them."""
    tasks = status.latest()["tasks"]
    return {**tasks["counters"], **tasks}


def on_workers(tasks: dict[str, Any]) -> int:
    """Tasks held by workers, started or not."""
    return int(tasks["assigned"] + tasks["running"])


def held_by_each_worker(status: StatusReader) -> list[int]:
    return [worker["queued"] + worker["running"] for worker in status.latest()["workers"]]


@pytest.mark.timeout(120)
def test_long_tasks_of_a_new_function_start_on_every_idle_worker_and_never_queue_behind_a_running_one() -> None:
    with Cluster() as cluster, StatusReader(cluster.monitor_address) as status:
        for _ in range(3):
            cluster.add_worker()
        assert wait_until(lambda: len(status.latest()["workers"]) == 3, timeout_seconds=30)
        with Client(cluster.address, timeout_seconds=30) as client:
            # Not yet measured: counts as long, so one per worker; the others wait in the scheduler.
            futures = [client.submit(tasks.sleep_and_report_worker, 1.0, i) for i in range(6)]
            assert wait_until(lambda: on_workers(counters(status)) == 3, timeout_seconds=30)
            snapshots = []
            while not all(f.done() for f in futures):
                snapshots.append(held_by_each_worker(status))
                concurrent.futures.wait(futures, timeout=0.1)
            results = [f.result() for f in futures]
        assert [value for value, _ in results] == list(range(6))
        assert len({pid for _, pid in results[:3]}) == 3  # the first three started on three workers
        assert all(max(held) <= 1 for held in snapshots if held), snapshots  # never one waiting behind another


@pytest.mark.timeout(120)
def test_a_waiting_task_moves_to_a_worker_that_joins_idle_and_runs_and_is_answered_once() -> None:
    with Cluster() as cluster, StatusReader(cluster.monitor_address) as status:
        cluster.add_worker()
        with Client(cluster.address, timeout_seconds=30) as client:
            # Measured shorter than a long task: one runs and one waits behind it on the only worker (these two
            # take longer than measured, so the waiting one is still waiting when the second worker joins).
            measured = LONG_TASK_SECONDS * 0.8
            assert client.submit(tasks.sleep_and_report_worker, measured, -1).result(timeout=30)[0] == -1
            futures = [client.submit(tasks.sleep_and_report_worker, 3.0, i) for i in range(2)]
            assert wait_until(lambda: held_by_each_worker(status) == [2], timeout_seconds=30)
            cluster.add_worker()  # joins idle: takes the waiting task back from the busy worker
            results = [f.result(timeout=30) for f in futures]
            assert wait_until(lambda: counters(status)["unfinished"] == 0, timeout_seconds=30)
            current = counters(status)
        assert [value for value, _ in results] == [0, 1]
        assert len({pid for _, pid in results}) == 2  # the waiting task ran on the joining worker
        assert current["steals"] >= 1 and current["balanced"] >= 1
        assert current["succeeded"] == 3 and current.get("stale_results", 0) == 0  # each answered once


@pytest.mark.timeout(120)
def test_a_second_clients_small_job_is_not_stuck_behind_a_large_one() -> None:
    with Cluster() as cluster, StatusReader(cluster.monitor_address) as status:
        for _ in range(2):
            cluster.add_worker()
        with Client(cluster.address, timeout_seconds=60) as large, Client(cluster.address, timeout_seconds=60) as small:
            big_job = [large.submit(tasks.sleep_and_return, 0.01, i) for i in range(2000)]
            assert wait_until(lambda: counters(status)["succeeded"] >= 10, timeout_seconds=30)
            small_job = [small.submit(tasks.square, i) for i in range(10)]
            assert [f.result(timeout=30) for f in small_job] == [i * i for i in range(10)]
            unfinished_of_large = sum(not f.done() for f in big_job)
            for future in big_job:
                future.cancel()
        # Served in turn: the small job ended while most of the large one still waited.
        assert unfinished_of_large > 1000, unfinished_of_large


# ---------------------------------------------------------------------------------------------- through the core


def submit_items(client: Any, first: int, count: int) -> list[list[Any]]:
    base = task_id_base(client.number)
    flags = int(TaskFlag.RESULT_TO_CLIENT)
    return [[base + i, FUNCTION, 0, flags, [[ArgumentKind.INLINE, b"x"]], []] for i in range(first, first + count)]


def test_clients_of_equal_priority_take_turns_in_the_scheduler_queue() -> None:
    wiring = Wiring(queue_size=1, function_seconds=TURN_SECONDS)  # one task makes a turn
    large = wiring.connect_client(b"large")
    small = wiring.connect_client(b"small")
    wiring.deliver(b"large", MessageType.TASK_SUBMIT, submit_items(large, 1, 100))
    wiring.deliver(b"small", MessageType.TASK_SUBMIT, submit_items(small, 1, 3))
    wiring.connect_worker("w")
    order: list[int] = []
    for _ in range(6):
        (assignment,) = wiring.take(MessageType.TASK_ASSIGN)
        (task_id,) = assigned_ids(assignment[1])
        order.append(task_id)
        wiring.deliver(b"w", MessageType.TASK_RESULTS, [[task_id, 0, b"r", None, TURN_SECONDS]])
    owners = ["large" if client_number_of_task(task_id) == large.number else "small" for task_id in order]
    assert owners == ["large", "small", "large", "small", "large", "small"], owners


def test_a_turn_of_tiny_tasks_is_a_batch_of_them() -> None:
    wiring = Wiring(function_seconds=TURN_SECONDS / 100)  # a hundred tasks make a turn
    first = wiring.connect_client(b"first")
    second = wiring.connect_client(b"second")
    wiring.deliver(b"first", MessageType.TASK_SUBMIT, submit_items(first, 1, 300))
    wiring.deliver(b"second", MessageType.TASK_SUBMIT, submit_items(second, 1, 300))
    wiring.connect_worker("w")
    owners: list[int] = []
    while len(owners) < 600:
        for _, fields in wiring.take(MessageType.TASK_ASSIGN):
            ids = assigned_ids(fields)
            owners.extend(client_number_of_task(task_id) for task_id in ids)
            results = [[task_id, 0, b"r", None, TURN_SECONDS / 100] for task_id in ids]
            wiring.deliver(b"w", MessageType.TASK_RESULTS, results)
    runs = [len(list(group)) for _, group in itertools.groupby(owners)]
    assert runs == [100] * 6, runs


def test_a_long_task_goes_to_an_idle_worker_not_behind_a_running_one() -> None:
    wiring = Wiring(function_seconds=LONG_TASK_SECONDS * 4)
    client = wiring.connect_client()
    wiring.connect_worker("busy")
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, submit_items(client, 1, 1))
    wiring.deliver(b"busy", MessageType.TASKS_STARTED, [task_id_base(client.number) + 1])
    wiring.connect_worker("idle")
    wiring.take(MessageType.TASK_ASSIGN)
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, submit_items(client, 2, 2))
    placed = {identity: assigned_ids(fields) for identity, fields in wiring.take(MessageType.TASK_ASSIGN)}
    assert placed == {b"idle": [task_id_base(client.number) + 2]}  # the third waits in the scheduler
    assert wiring.tasks.describe()["queued"] == 1
