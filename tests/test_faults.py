"""Faults with real processes: killed workers, poison tasks, dying processors, vanished clients and schedulers.

Each test starts its own scheduler and workers as separate processes (tests/cluster_parts.py), so it can kill
any of them. The long versions run with SCALER_SOAK=1 (``make test-soak``).
"""

from __future__ import annotations

import collections
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from scaler import Client, SchedulerClusterCombo
from scaler.errors import ProcessorDiedError, SchedulerLostError, WorkerDiedError
from tests import tasks
from tests.cluster_parts import Cluster, CurveKeys, StatusReader, supervised_workers
from tests.conftest import SOAK
from tests.helpers import wait_until

REPOSITORY = Path(__file__).resolve().parent.parent


def no_objects(status: dict[str, Any]) -> bool:
    """The scheduler stores no object, function or other."""
    return bool(status["objects"]["count"] == status["objects"]["functions"] == 0)


def assigned_tasks(status: StatusReader) -> int:
    """Tasks the scheduler has handed to workers and not yet seen end."""
    tasks = status.latest()["tasks"]
    return int(tasks["assigned"] + tasks["running"])


@pytest.mark.soak
@pytest.mark.timeout(600 if SOAK else 120)
@pytest.mark.parametrize("secured", [False, True], ids=["plain", "curve"])
def test_chaos_every_result_arrives_exactly_once_while_workers_are_killed(secured: bool, tmp_path: Path) -> None:
    """Also with CURVE on: every connection encrypted and authenticated, workers reconnecting with their keys."""
    n_tasks = 50_000 if SOAK else 5_000
    rng = random.Random(7)
    durations = [rng.uniform(0.001, 0.020) for _ in range(n_tasks)]
    keys = CurveKeys.create(tmp_path) if secured else None
    scheduler_options = keys.scheduler_options() if keys else {}
    worker_options = keys.worker_options() if keys else {}
    security = keys.client() if keys else None
    with Cluster(worker_options, worker_timeout_seconds=1.0, **scheduler_options) as cluster:
        with (
            StatusReader(cluster.monitor_address, security) as status,
            Client(cluster.address, timeout_seconds=30, security=security) as client,
        ):
            with supervised_workers(cluster, 4, kill_every_seconds=1.0) as dead:
                futures = [client.submit(tasks.sleep_and_return, seconds, i) for i, seconds in enumerate(durations)]
                results = [future.result(timeout=300) for future in futures]
            assert results == list(range(n_tasks))
            assert len(dead) >= 3, f"only {len(dead)} workers were killed during the run"

            def settled() -> bool:
                counts = status.latest()["tasks"]
                return counts.get("unfinished") == 0 and counts.get("succeeded") == n_tasks

            assert wait_until(settled, timeout_seconds=10), status.latest()["tasks"]
            counts = status.latest()["tasks"]
            assert counts["submitted"] == n_tasks
            assert counts["counters"].get("requeued", 0) > 0


@pytest.mark.timeout(120)
def test_a_task_that_kills_its_worker_fails_after_the_allowed_failures_and_others_go_on() -> None:
    allowed_failures = 3
    with Cluster(worker_timeout_seconds=1.0, allowed_failures=allowed_failures) as cluster:
        with Client(cluster.address, timeout_seconds=30) as client:
            with supervised_workers(cluster, 2) as dead:
                poison = client.submit(tasks.kill_own_worker)
                others = client.map(tasks.sleep_and_return, [(0.005, i) for i in range(300)])
                with pytest.raises(WorkerDiedError, match=f"task {poison.task_id:#x} lost its worker 4 times"):
                    poison.result(timeout=90)
                assert others == list(range(300))
                # One more death when the scheduler did not hear that the task started before its worker died.
                deaths = len(dead)
                assert allowed_failures + 1 <= deaths <= allowed_failures + 2, dead
                assert client.map(tasks.square, [(i,) for i in range(50)]) == [i * i for i in range(50)]
                assert len(dead) == deaths


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("function", "args", "description"),
    [(tasks.exit_processor, (3,), "code 3"), (tasks.crash_processor, (), "SIGSEGV")],
    ids=["exit", "segfault"],
)
def test_a_task_that_kills_its_processor_fails_clearly_and_the_worker_goes_on(function, args, description) -> None:
    with SchedulerClusterCombo(n_workers=1) as cluster, Client(cluster.get_address(), timeout_seconds=30) as client:
        worker_pid = cluster.worker_pids[0]
        future = client.submit(function, *args)
        expected = f"processor running task {future.task_id:#x} died: .*{description}"
        with pytest.raises(ProcessorDiedError, match=expected):
            future.result(timeout=60)
        assert client.map(tasks.square, [(i,) for i in range(20)]) == [i * i for i in range(20)]
        assert cluster.worker_pids == [worker_pid]


@pytest.mark.timeout(120)
def test_a_task_running_past_the_task_timeout_fails_with_timeout_error() -> None:
    with SchedulerClusterCombo(n_workers=1, task_timeout_seconds=1) as cluster:
        with Client(cluster.get_address(), timeout_seconds=30) as client:
            slow = client.submit(tasks.sleep_and_return, 30, "late")
            with pytest.raises(TimeoutError):
                slow.result(timeout=20)
            assert client.submit(tasks.sleep_and_return, 0.1, "on time").result(timeout=20) == "on time"


_DOOMED_CLIENT = """
import sys, time
from scaler import Client
from tests import tasks
client = Client(sys.argv[1], timeout_seconds=30, heartbeat_interval_seconds=0.2)
client.send_object(b"x" * 1000, name="owned")
futures = [client.submit(tasks.sleep_and_return, 60, i) for i in range(1000)]
print("submitted", flush=True)
time.sleep(300)
"""


@pytest.mark.timeout(120)
def test_a_killed_client_loses_its_tasks_and_objects_and_its_running_tasks_stop() -> None:
    client_timeout = 1.0
    with Cluster(client_timeout_seconds=client_timeout) as cluster, StatusReader(cluster.monitor_address) as status:
        for _ in range(2):
            cluster.add_worker()
        doomed = subprocess.Popen(
            [sys.executable, "-c", _DOOMED_CLIENT, cluster.address],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        )
        try:
            assert doomed.stdout is not None and doomed.stdout.readline() == b"submitted\n"

            def holding_everything() -> bool:
                current = status.latest()
                return current["tasks"]["unfinished"] == 1000 and current["objects"]["functions"] >= 1

            assert wait_until(holding_everything, timeout_seconds=30), status.latest()
            # Tasks of a function not yet measured go one per worker; the others wait in the scheduler.
            assert wait_until(lambda: assigned_tasks(status) == 2, timeout_seconds=30)
        finally:
            doomed.kill()
            doomed.wait(timeout=10)
            doomed.stdout.close()
        killed_at = time.monotonic()

        def forgotten() -> bool:
            current = status.latest()
            return current["clients"] == [] and current["tasks"]["unfinished"] == 0 and no_objects(current)

        assert wait_until(forgotten, timeout_seconds=client_timeout + 2 + 1), status.latest()
        assert time.monotonic() - killed_at <= client_timeout + 2 + 0.5
        with Client(cluster.address, timeout_seconds=30) as client:  # the 60 s tasks were stopped, not waited for
            assert client.map(tasks.sleep_and_return, [(0.01, i) for i in range(4)]) == [0, 1, 2, 3]


@pytest.mark.timeout(120)
def test_a_killed_scheduler_fails_a_blocked_client_and_its_workers_exit() -> None:
    client_timeout = 3.0
    death_timeout = 3.0
    with Cluster() as cluster:
        for _ in range(2):
            cluster.add_worker(death_timeout_seconds=death_timeout)
        client = Client(cluster.address, timeout_seconds=client_timeout, heartbeat_interval_seconds=0.5)
        try:
            assert client.submit(tasks.square, 3).result(timeout=30) == 9
            future = client.submit(tasks.sleep_and_return, 60, "never")
            killer = threading.Timer(0.5, lambda: os.kill(cluster.scheduler.pid, signal.SIGKILL))
            killer.start()
            started = time.monotonic()
            with pytest.raises(SchedulerLostError):
                future.result()
            assert time.monotonic() - started < 0.5 + client_timeout + 3
            killer.join()
            assert cluster.join_workers(timeout_seconds=death_timeout + 10), "workers outlived their scheduler"
        finally:
            client.disconnect()


@pytest.mark.timeout(120)
def test_idle_workers_take_queued_tasks_from_a_busy_one() -> None:
    with Cluster(load_balance_seconds=0.2, load_balance_trigger_times=2) as cluster:
        first = cluster.add_worker()
        with Client(cluster.address, timeout_seconds=30) as client:
            assert client.submit(tasks.square, 2).result(timeout=30) == 4
            futures = [client.submit(tasks.sleep_and_report_worker, 0.05, i) for i in range(80)]
            assert wait_until(lambda: futures[0].done(), timeout_seconds=30)  # all 80 sit with the first worker
            for _ in range(2):
                cluster.add_worker()
            results = [f.result(timeout=60) for f in futures]
        assert [value for value, _ in results] == list(range(80))
        workers = {worker for _, worker in results}
        assert first.pid in workers and len(workers) == 3, workers


@pytest.mark.timeout(60)
def test_a_combo_whose_scheduler_cannot_start_fails_at_once_instead_of_hanging() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(RuntimeError, match="Address already in use"):
            SchedulerClusterCombo(address=address, n_workers=1)


@pytest.mark.timeout(120)
def test_a_silent_worker_loses_its_tasks_to_others_and_its_late_results_are_ignored() -> None:
    with Cluster(worker_timeout_seconds=1.0) as cluster, StatusReader(cluster.monitor_address) as status:
        frozen = cluster.add_worker()
        with Client(cluster.address, timeout_seconds=30) as client:
            assert client.submit(tasks.square, 2).result(timeout=30) == 4
            futures = [client.submit(tasks.sleep_and_report_worker, 0.2, i) for i in range(20)]
            # A function not yet measured counts as long: one task per worker, the others wait in the scheduler.
            assert wait_until(lambda: assigned_tasks(status) == 1, timeout_seconds=30)
            os.kill(frozen.pid, signal.SIGSTOP)
            try:
                cluster.add_worker()
                assert wait_until(lambda: len(status.latest()["workers"]) == 1, timeout_seconds=30)
            finally:
                os.kill(frozen.pid, signal.SIGCONT)  # it wakes up, sends what it had, and is told to reconnect
            results = [f.result(timeout=60) for f in futures]
            assert [value for value, _ in results] == list(range(20))
            assert client.map(tasks.square, [(i,) for i in range(40)]) == [i * i for i in range(40)]
            assert wait_until(lambda: len(status.latest()["workers"]) == 2, timeout_seconds=30)
        assert status.latest()["tasks"]["succeeded"] == 1 + 20 + 40


@pytest.mark.timeout(120)
def test_a_shutdown_request_stops_every_process_and_ends_every_pending_future() -> None:
    with Cluster(protected=False) as cluster:
        for _ in range(2):
            cluster.add_worker()
        with StatusReader(cluster.monitor_address) as status:  # both workers must hear the shutdown
            assert wait_until(lambda: len(status.latest()["workers"]) == 2, timeout_seconds=30)
        with Client(cluster.address, timeout_seconds=30) as client:
            assert client.submit(tasks.square, 2).result(timeout=30) == 4
            pending = [client.submit(tasks.sleep_and_return, 60, i) for i in range(100)]
            client.shutdown()
            for future in pending:
                with pytest.raises(Exception) as raised:
                    future.result(timeout=30)
                assert not isinstance(raised.value, TimeoutError)
        cluster.scheduler.join(timeout=30)
        assert cluster.scheduler.exitcode == 0
        assert cluster.join_workers(timeout_seconds=30)
        assert all(worker.exitcode == 0 for worker in cluster.workers)


@pytest.mark.timeout(120)
def test_a_worker_that_joins_late_gets_queued_work_at_once() -> None:
    with Cluster(load_balance_seconds=60) as cluster:  # periodic balancing never runs within this test
        first = cluster.add_worker()
        with Client(cluster.address, timeout_seconds=30) as client:
            assert client.submit(tasks.square, 2).result(timeout=30) == 4
            futures = [client.submit(tasks.sleep_and_report_worker, 0.05, i) for i in range(60)]
            assert wait_until(lambda: futures[0].done(), timeout_seconds=30)
            late = cluster.add_worker()
            results = [f.result(timeout=60) for f in futures]
        assert [value for value, _ in results] == list(range(60))
        workers = collections.Counter(worker for _, worker in results)
        assert workers[late.pid] > 0 and workers[first.pid] > 0, workers
