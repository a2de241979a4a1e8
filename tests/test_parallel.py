"""scaler.parallel: ParallelProcessor and MapReduce with real worker processes over real sockets.

The seeds' pyrallel and RLTK examples print what the originals print; add_task blocks while max_in_flight
tasks are unfinished (read from the scheduler's status); a worker killed mid-run loses no item and collects
none twice; a mapper's exception ends join() with it; MapReduce reduces on the workers.
"""

from __future__ import annotations

import ast
import collections
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from scaler import Client, SchedulerClusterCombo
from scaler.parallel import MapReduce, ParallelProcessor
from tests.cluster_parts import Cluster, StatusReader, TaskCountsSampler
from tests.helpers import live_children, wait_until

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
N_SUM = 10_000
SUM = N_SUM * (N_SUM - 1) // 2  # 49,995,000
MEGABYTE = 1_000_000


# ---------------------------------------------------------------------- task functions (run on the workers)


def heavy_calculation(x: int, y: int) -> tuple[int, int]:
    return x * x, y + 5


def identity(x: Any) -> Any:
    return x


def add(a: int, b: int) -> int:
    return a + b


def sleep_and_return(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def wait_for_file(path: str, value: int) -> int:
    """Return ``value`` once ``path`` exists (at most 30 s)."""
    deadline = time.monotonic() + 30
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


def fail_on(bad: int, value: int) -> int:
    if value == bad:
        raise ValueError(f"bad item {value}")
    return value


def with_no_pid(x: int) -> tuple[int, frozenset[int]]:
    return x, frozenset()


def sum_recording_pid(a: tuple[int, frozenset[int]], b: tuple[int, frozenset[int]]) -> tuple[int, frozenset[int]]:
    """Add, and remember every process that reduced."""
    return a[0] + b[0], a[1] | b[1] | {os.getpid()}


def megabyte_after(seconds: float) -> tuple[int, bytes]:
    time.sleep(seconds)
    return 1, bytes(MEGABYTE)


def count_keeping_one(a: tuple[int, bytes], b: tuple[int, bytes]) -> tuple[int, bytes]:
    return a[0] + b[0], a[1]


def labelled(x: int, *, label: str = "") -> str:
    return f"{label}{x}"


# ---------------------------------------------------------------------- helpers


def run_example(name: str) -> list[str]:
    result = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.splitlines()


def seed_result() -> list[int]:
    """What the seeds' heavy_calculation / output_handler example collects, computed here in order."""
    result: list[int] = []

    def output_handler(r1: int, r2: int) -> None:
        result.append(r1 if r1 > r2 else r2)

    for i in range(8):
        output_handler(*heavy_calculation(i, i + 1))
    return result


def processor_pids(combo: SchedulerClusterCombo) -> set[int]:
    """The worker agents of ``combo`` and every process under them."""
    pids = set()
    for pid in combo.worker_pids:
        agent = psutil.Process(pid)
        pids.add(pid)
        pids.update(child.pid for child in agent.children(recursive=True))
    return pids


@pytest.fixture
def status_cluster() -> Iterator[tuple[Cluster, StatusReader]]:
    """A scheduler publishing its status every 0.2 s, with two workers."""
    with Cluster(worker_timeout_seconds=1.0) as cluster, StatusReader(cluster.monitor_address) as status:
        cluster.add_worker()
        cluster.add_worker()
        yield cluster, status


# ---------------------------------------------------------------------- the seeds' examples


@pytest.mark.timeout(60)
def test_the_seed_examples_with_only_the_import_changed_print_what_the_originals_print() -> None:
    lines = run_example("parallel_processor.py")
    assert len(lines) == 2, lines
    for line in lines:  # the pyrallel spelling, then RLTK's; the collecting order is arbitrary in both
        assert sorted(ast.literal_eval(line)) == sorted(seed_result())
    assert run_example("map_reduce.py") == [str(SUM)]


def test_rltk_spelling_mapper_first_with_output_handler_and_compute(client: Client) -> None:
    result: list[int] = []

    def output_handler(r1: int, r2: int) -> None:
        result.append(r1 if r1 > r2 else r2)

    pp = ParallelProcessor(heavy_calculation, 8, output_handler=output_handler, client=client)
    pp.start()
    for i in range(8):
        pp.compute(i, i + 1)
    pp.task_done()
    pp.join()
    assert sorted(result) == sorted(seed_result())


def test_without_a_client_it_starts_its_own_cluster_and_stops_it_at_join() -> None:
    collected: list[int] = []
    before = {process.pid for process in live_children()}
    pp = ParallelProcessor(2, identity, collected.append)
    pp.start()
    started = {process.pid for process in live_children()} - before
    assert len(started) >= 3  # a scheduler and two workers (and their processors)
    pp.map(range(20))
    pp.join()
    assert sorted(collected) == list(range(20))
    assert pp.client is None
    assert wait_until(lambda: not started & {process.pid for process in live_children()}, timeout_seconds=10)


# ---------------------------------------------------------------------- collecting


def test_a_tuple_is_unpacked_into_the_collector_and_anything_else_is_its_one_argument(client: Client) -> None:
    pairs: list[tuple[int, int]] = []
    singles: list[Any] = []
    with ParallelProcessor(2, heavy_calculation, lambda a, b: pairs.append((a, b)), client=client) as pp:
        pp.starmap((i, i) for i in range(5))
    with ParallelProcessor(2, identity, singles.append, client=client) as pp:
        pp.map([[1, 2], {"a": 1}, None, 7])
    assert sorted(pairs) == [(i * i, i + 5) for i in range(5)]
    assert sorted(singles, key=repr) == sorted([[1, 2], {"a": 1}, None, 7], key=repr)


def test_the_collector_runs_in_one_thread_of_the_calling_process(client: Client) -> None:
    threads: set[int] = set()
    pids: set[int] = set()

    def collect(_: int) -> None:
        threads.add(threading.get_ident())
        pids.add(os.getpid())

    with ParallelProcessor(2, identity, collect, client=client, batch_size=3) as pp:
        pp.map(range(50))
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert pids == {os.getpid()}


def test_a_scheduler_address_without_scheme_works_as_client(cluster: SchedulerClusterCombo) -> None:
    collected: list[int] = []
    address = cluster.get_address().removeprefix("tcp://")
    with ParallelProcessor(2, add, collected.append, client=address) as pp:
        for i in range(10):
            pp.add_task(i, 1)
    assert sorted(collected) == list(range(1, 11))


@pytest.mark.timeout(60)
def test_batches_make_one_task_per_batch_and_keep_every_item(status_cluster: tuple[Cluster, StatusReader]) -> None:
    cluster, status = status_cluster
    collected: list[str] = []
    with Client(cluster.address, timeout_seconds=30) as client:
        with ParallelProcessor(2, labelled, collected.append, client=client, batch_size=7) as pp:
            for i in range(1000):
                if i % 2:
                    pp.add_task(i, label="odd ")
                else:
                    pp.add_task(i)
        assert sorted(collected) == sorted(f"odd {i}" if i % 2 else str(i) for i in range(1000))
        assert wait_until(lambda: status.latest()["tasks"]["submitted"] == 143, timeout_seconds=10)  # ceil(1000 / 7)


# ---------------------------------------------------------------------- back-pressure


@pytest.mark.timeout(60)
def test_never_more_than_max_in_flight_tasks_are_unfinished(status_cluster: tuple[Cluster, StatusReader]) -> None:
    cluster, status = status_cluster
    collected: list[int] = []
    backlog: list[int] = []  # added minus collected, each time add_task returns
    with Client(cluster.address, timeout_seconds=30) as client, TaskCountsSampler(status) as sampler:
        pp = ParallelProcessor(2, sleep_and_return, collected.append, client=client, max_in_flight=10)
        for i in range(80):
            pp.add_task(0.04, i)
            backlog.append(i + 1 - len(collected))
        pp.task_done()
        pp.join()
        assert wait_until(lambda: len(sampler.unfinished) >= 2 and sampler.unfinished[-1] == 0, timeout_seconds=10)
    assert sorted(collected) == list(range(80))
    assert max(backlog) == 10  # add_task had to wait for a slot, and never let an eleventh task out
    assert len(sampler.unfinished) >= 5
    assert max(sampler.unfinished) <= 10, sampler.unfinished
    assert max(sampler.unfinished) >= 5, sampler.unfinished  # the run was seen under load


def test_add_task_blocks_until_a_task_ends(client: Client, tmp_path: Path) -> None:
    gate = tmp_path / "open"
    collected: list[int] = []
    pp = ParallelProcessor(2, wait_for_file, collected.append, client=client, max_in_flight=3)
    for i in range(3):
        pp.add_task(str(gate), i)  # three slots: returns at once
    fourth = threading.Thread(target=pp.add_task, args=(str(gate), 3))
    fourth.start()
    fourth.join(timeout=1.0)
    assert fourth.is_alive(), "the fourth add_task returned while three tasks were unfinished"
    assert collected == []
    gate.touch()
    assert wait_until(lambda: not fourth.is_alive(), timeout_seconds=30)
    pp.join()
    assert sorted(collected) == [0, 1, 2, 3]


# ---------------------------------------------------------------------- faults


@pytest.mark.timeout(90)
def test_a_worker_killed_mid_run_loses_no_item_and_collects_none_twice() -> None:
    n_items = 5_000
    collected: list[int] = []
    killed_at: list[int] = []
    with Cluster(worker_timeout_seconds=1.0) as cluster, StatusReader(cluster.monitor_address) as status:
        workers = [cluster.add_worker() for _ in range(3)]
        with Client(cluster.address, timeout_seconds=30) as client:

            def kill_one_worker() -> None:
                if wait_until(lambda: len(collected) >= 1_000, timeout_seconds=60):
                    cluster.kill_worker(workers[0])
                    killed_at.append(len(collected))

            killer = threading.Thread(target=kill_one_worker, daemon=True)
            killer.start()
            pp = ParallelProcessor(3, sleep_and_return, collected.append, client=client)
            for i in range(n_items):
                pp.add_task(0.001, i)
            pp.join()
            killer.join(timeout=10)
        assert killed_at and killed_at[0] < n_items - 500, killed_at  # the kill came in the middle of the run
        assert workers[0].exitcode is not None
        counts = collections.Counter(collected)
        assert len(collected) == n_items and set(counts) == set(range(n_items)), "an item was lost or collected twice"
        assert status.latest()["tasks"]["counters"].get("requeued", 0) > 0  # the dead worker's tasks ran again


@pytest.mark.parametrize("batch_size", [1, 10])
def test_a_mapper_exception_ends_join_with_it_and_no_result_is_collected_twice(
    client: Client, batch_size: int
) -> None:
    collected: list[int] = []
    pp = ParallelProcessor(2, fail_on, collected.append, client=client, batch_size=batch_size, max_in_flight=8)
    for i in range(1_000):
        pp.add_task(300, i)  # once a task failed, the remaining items are dropped at once
    with pytest.raises(ValueError, match="bad item 300"):
        pp.join()
    assert isinstance(pp.error, ValueError)
    assert 300 not in collected
    assert len(collected) == len(set(collected)) < 1_000
    pp.join()  # a second join does nothing


def test_arguments_that_do_not_fit_the_mapper_raise_type_error_in_add_task(client: Client) -> None:
    collected: list[int] = []
    with ParallelProcessor(2, add, collected.append, client=client, max_in_flight=2) as pp:
        for _ in range(3):  # more than the window: a refused task gives its slot back
            with pytest.raises(TypeError):
                pp.add_task(1, 2, 3)
        pp.add_task(1, 2)
    assert collected == [3]


def test_a_collector_exception_ends_join_with_it_and_stops_the_collecting(client: Client) -> None:
    calls: list[int] = []

    def collector(value: int) -> None:
        calls.append(value)
        if len(calls) == 5:
            raise RuntimeError("collector gave up")

    pp = ParallelProcessor(2, identity, collector, client=client, max_in_flight=4)
    pp.map(range(200))
    with pytest.raises(RuntimeError, match="collector gave up"):
        pp.join()
    assert len(calls) == 5


def test_leaving_a_with_block_by_an_exception_cancels_the_run(client: Client) -> None:
    collected: list[int] = []
    with pytest.raises(KeyError):
        with ParallelProcessor(2, sleep_and_return, collected.append, client=client) as pp:
            for i in range(20):
                pp.add_task(0.5, i)
            raise KeyError("stop")
    with pytest.raises(RuntimeError, match="ended"):
        pp.start()
    assert len(collected) < 20
    assert client.submit(add, 1, 2).result(timeout=30) == 3  # the borrowed client goes on


def test_wrong_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        ParallelProcessor(2)  # no mapper
    with pytest.raises(ValueError):
        ParallelProcessor(0, identity)
    with pytest.raises(ValueError):
        ParallelProcessor(2, identity, batch_size=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colector'"):
        ParallelProcessor(2, identity, colector=print)
    with pytest.raises(ValueError, match="enable_process_id"):
        ParallelProcessor(2, identity, enable_process_id=True)
    assert ParallelProcessor(2, identity, max_size_per_mapper_queue=3).max_in_flight == 6

    class PyrallelMapper:
        def enter(self) -> None: ...

        def process(self, x: int) -> int:
            return x

    with pytest.raises(ValueError, match="Mapper classes"):
        ParallelProcessor(2, PyrallelMapper)
    pp = ParallelProcessor(2, identity)
    pp.task_done()
    with pytest.raises(RuntimeError, match="task_done"):
        pp.add_task(1)
    pp.join()  # never started: nothing to stop


# ---------------------------------------------------------------------- MapReduce


@pytest.mark.timeout(60)
def test_map_reduce_sums_10000_inputs_and_reduces_on_the_workers(
    cluster: SchedulerClusterCombo, client: Client
) -> None:
    mr = MapReduce(2, with_no_pid, sum_recording_pid, client=client)
    mr.start()
    for i in range(N_SUM):
        mr.add_task(i)
    mr.task_done()
    total, reducers = mr.join()
    assert total == SUM
    assert reducers and os.getpid() not in reducers
    assert reducers <= processor_pids(cluster)


@pytest.mark.timeout(60)
def test_map_reduce_values_go_from_worker_to_worker_not_through_the_client(client: Client) -> None:
    received_before = client.bytes_received
    mr = MapReduce(2, megabyte_after, count_keeping_one, client=client, chunk_size=1)
    for _ in range(40):  # 40 values of 1 MB, each still being computed when its reduce task is submitted
        mr.add_task(0.05)
    count, kept = mr.join()
    assert count == 40 and len(kept) == MEGABYTE
    assert client.bytes_received - received_before < 5 * MEGABYTE  # the total, not 79 values of 1 MB


def test_map_reduce_with_the_seed_functions_and_small_chunks(client: Client) -> None:
    mr = MapReduce(2, identity, add, client=client, chunk_size=7, max_in_flight=6)
    mr.map(range(1_000))
    assert mr.join() == 999 * 1_000 // 2


def test_map_reduce_without_tasks_returns_none_and_a_mapper_exception_ends_join(client: Client) -> None:
    empty = MapReduce(2, identity, add, client=client)
    empty.start()
    assert empty.join() is None
    failing = MapReduce(2, fail_on, add, client=client, chunk_size=10)
    for i in range(500):
        failing.add_task(123, i)
    with pytest.raises(ValueError, match="bad item 123"):
        failing.join()


@pytest.mark.timeout(60)
def test_map_reduce_keeps_at_most_max_in_flight_tasks_unfinished(status_cluster: tuple[Cluster, StatusReader]) -> None:
    cluster, status = status_cluster
    with Client(cluster.address, timeout_seconds=30) as client, TaskCountsSampler(status) as sampler:
        mr = MapReduce(2, sleep_and_return, add, client=client, chunk_size=1, max_in_flight=4)
        for i in range(60):
            mr.add_task(0.02, i)
        assert mr.join() == sum(range(60))
    assert len(sampler.unfinished) >= 3
    assert max(sampler.unfinished) <= 4, sampler.unfinished
