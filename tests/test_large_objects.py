"""A 100 MB object: sent once, stored once, read by 20 tasks, and its memory given back afterwards."""

from __future__ import annotations

import psutil
import pytest

from scaler import Client, SchedulerClusterCombo
from tests import tasks
from tests.helpers import wait_until

MB = 1024 * 1024
SIZE = 100 * MB


def _rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def _workers_uss(cluster: SchedulerClusterCombo) -> dict[int, int]:
    """Memory unique to each worker process: a forked processor shares pages with its agent."""
    unique: dict[int, int] = {}
    for pid in cluster.worker_pids:
        agent = psutil.Process(pid)
        for process in [agent, *agent.children(recursive=True)]:
            try:
                unique[process.pid] = process.memory_full_info().uss
            except psutil.NoSuchProcess:
                pass
    return unique


def _workers_rss(cluster: SchedulerClusterCombo) -> int:
    return sum(_workers_uss(cluster).values())


@pytest.mark.timeout(180)
@pytest.mark.parametrize("release", ["clear", "disconnect"])
def test_a_100_mb_object_is_stored_once_and_released(release: str) -> None:
    with SchedulerClusterCombo(n_workers=2) as cluster:
        scheduler_pid = cluster.scheduler_pid
        assert scheduler_pid is not None
        with Client(cluster.get_address()) as warm_up:  # processors started, functions cached
            assert warm_up.map(tasks.length, [(b"x",)] * 4) == [1] * 4
        scheduler_before = _rss(scheduler_pid)
        workers_before = _workers_rss(cluster)
        each_before = _workers_uss(cluster)

        client = Client(cluster.get_address())
        try:
            reference = client.send_object(b"\x07" * SIZE, name="blob")
            assert client.map(tasks.length, [(reference,)] * 20) == [SIZE] * 20
            scheduler_growth = _rss(scheduler_pid) - scheduler_before
            assert scheduler_growth < 2 * SIZE, f"scheduler grew by {scheduler_growth / MB:.0f} MB"
            if release == "clear":
                client.clear()
        finally:
            if release == "disconnect":
                client.disconnect()

        assert wait_until(lambda: _rss(scheduler_pid) - scheduler_before < 20 * MB, timeout_seconds=30), (
            f"scheduler +{(_rss(scheduler_pid) - scheduler_before) / MB:.0f} MB"
        )
        workers_released = wait_until(lambda: _workers_rss(cluster) - workers_before < 20 * MB, timeout_seconds=10)
        each_after = _workers_uss(cluster)
        growth = {pid: round((each_after.get(pid, 0) - each_before.get(pid, 0)) / MB, 1) for pid in each_after}
        if release == "clear":
            client.disconnect()
        assert workers_released, f"workers kept more than 20 MB of a {SIZE // MB} MB object (MB per process: {growth})"
