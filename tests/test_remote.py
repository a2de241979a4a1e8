"""scaler.remote: RLTK's Remote and Task with real worker processes over real sockets.

RLTK's example prints what the original prints; RLTK's 'HOST:PORT' address works; at most max_queue_size
chunks are in flight (read from the scheduler's status); handler exceptions end join().
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scaler import SchedulerClusterCombo
from scaler.errors import SchedulerLostError
from scaler.io.address import free_tcp_port
from scaler.parallel.connection import scheduler_address
from scaler.remote import Remote, Task
from tests.cluster_parts import Cluster, StatusReader, TaskCountsSampler
from tests.helpers import wait_until

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "remote_task.py"


def heavy_calculation(x: int, y: int) -> tuple[int, int]:
    return x * x, y + 5


def sleep_and_return(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def fail_on(bad: int, value: int) -> int:
    if value == bad:
        raise ValueError(f"bad input {value}")
    return value


def seed_result() -> list[int]:
    """What RLTK's remote example collects, computed here."""
    return [max(x * x, x + 1 + 5) for x in range(8)]


def host_port(address: str) -> str:
    return address.removeprefix("tcp://")


@pytest.fixture
def remote(cluster: SchedulerClusterCombo) -> Iterator[Remote]:
    with Remote(host_port(cluster.get_address()), timeout_seconds=30) as connected:
        yield connected


@pytest.mark.timeout(60)
def test_the_rltk_example_with_only_the_import_changed_prints_what_the_original_prints() -> None:
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines
    assert sorted(ast.literal_eval(lines[0])) == sorted(seed_result())


def test_addresses_in_rltk_form_and_zeromq_form() -> None:
    assert scheduler_address("127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    assert scheduler_address("tcp://10.0.0.2:8516") == "tcp://10.0.0.2:8516"
    for bad in ("127.0.0.1", "127.0.0.1:0", "nonsense", "http://127.0.0.1:80"):
        with pytest.raises(ValueError):
            scheduler_address(bad)


def test_a_remote_where_no_scheduler_answers_fails_within_its_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(SchedulerLostError):
        Remote(f"127.0.0.1:{free_tcp_port()}", timeout_seconds=1)
    assert time.monotonic() - started < 10


def test_a_task_over_a_host_port_address_hands_every_output_to_the_handler(remote: Remote) -> None:
    assert remote.address.startswith("tcp://127.0.0.1:")
    result: list[int] = []
    threads: set[int] = set()

    def output_handler(r1: int, r2: int) -> None:
        threads.add(threading.get_ident())
        result.append(r1 if r1 > r2 else r2)

    task = Task(remote, input_handler=heavy_calculation, output_handler=output_handler, chunk_size=3)
    task.start()
    for i in range(8):
        task.compute(i, i + 1)
    task.task_done()
    task.join()
    assert sorted(result) == sorted(seed_result())
    assert len(threads) == 1 and threading.get_ident() not in threads  # one handler thread, in this process
    assert remote.submit(pow, 2, 5).result(timeout=30) == 32  # join leaves the remote connected


def test_remote_submit_scatter_fetch_and_cancel(remote: Remote) -> None:
    reference = remote.scatter(list(range(100)))
    futures = [remote.submit(sum, reference), remote.submit(pow, 3, 2)]
    assert remote.fetch(futures, timeout=30) == [4950, 9]
    slow = remote.submit(sleep_and_return, 30, 0)
    remote.cancel([slow])
    assert slow.cancelled()


@pytest.mark.timeout(60)
def test_at_most_max_queue_size_chunks_are_in_flight() -> None:
    chunk_size, max_queue_size, n_inputs = 2, 3, 60
    outputs: list[int] = []
    backlog: list[int] = []  # inputs given to compute minus inputs handled, each time compute returns
    with Cluster() as cluster, StatusReader(cluster.monitor_address) as status, TaskCountsSampler(status) as sampler:
        cluster.add_worker()
        cluster.add_worker()
        with Remote(host_port(cluster.address), timeout_seconds=30) as remote:
            task = Task(remote, sleep_and_return, outputs.append, chunk_size=chunk_size, max_queue_size=max_queue_size)
            task.start()
            for i in range(n_inputs):
                task.compute(0.03, i)
                backlog.append(i + 1 - len(outputs))
            task.task_done()
            task.join()
            chunks = n_inputs // chunk_size
            assert wait_until(lambda: bool(sampler.counts) and sampler.counts[-1]["succeeded"] == chunks, 10)
    assert sorted(outputs) == list(range(n_inputs))
    assert sampler.counts[-1]["submitted"] == chunks  # one task per chunk
    # In flight: at most max_queue_size chunks, plus the inputs of the chunk being filled.
    assert max(backlog) <= max_queue_size * chunk_size + chunk_size - 1
    assert max(backlog) >= max_queue_size * chunk_size  # compute had to wait
    unfinished = [counts["unfinished"] for counts in sampler.counts]
    assert len(unfinished) >= 3
    assert max(unfinished) <= max_queue_size, unfinished


def test_an_input_handler_exception_ends_join_with_it(remote: Remote) -> None:
    outputs: list[Any] = []
    task = Task(remote, fail_on, outputs.append, chunk_size=5, max_queue_size=2)
    for i in range(200):
        task.compute(42, i)
    task.task_done()
    with pytest.raises(ValueError, match="bad input 42"):
        task.join()
    assert isinstance(task.error, ValueError)
    assert len(outputs) == len(set(outputs)) and 42 not in outputs


def test_an_output_handler_exception_ends_join_with_it(remote: Remote) -> None:
    def output_handler(value: int) -> None:
        raise OSError(f"cannot store {value}")

    with pytest.raises(OSError, match="cannot store"):
        with Task(remote, abs, output_handler, chunk_size=4) as task:
            for i in range(10):
                task.compute(i)


def test_a_task_without_output_handler_runs_every_input(remote: Remote, tmp_path: Path) -> None:
    with Task(remote, os.makedirs, chunk_size=2) as task:
        for i in range(5):
            task.compute(str(tmp_path / str(i)))
    assert sorted(path.name for path in tmp_path.iterdir()) == [str(i) for i in range(5)]


def test_wrong_arguments_are_refused(remote: Remote) -> None:
    with pytest.raises(TypeError):
        Task("127.0.0.1:8786", abs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Task(remote, abs, max_queue_size=0)
    with pytest.raises(ValueError):
        Task(remote, abs, chunk_size=0)
