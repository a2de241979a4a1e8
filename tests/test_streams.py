"""scaler.streams: streamz pipelines whose map, starmap and accumulate run as tasks on real workers."""

from __future__ import annotations

import functools
import operator
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from scaler import Client, SchedulerClusterCombo
from scaler.io.address import default_monitor_address
from scaler.protocol.ids import client_number_of_task
from scaler.streams import ScalerStream, Stream, default_client, drain, set_default_client
from scaler.streams.remote import identity, star_apply
from tests.cluster_parts import StatusReader
from tests.helpers import wait_until

GATE_SECONDS = 30  # how long a gated task waits for its gate before giving up


def inc(x: int) -> int:
    """The seed's task: one second of work."""
    time.sleep(1)
    return x + 1


def double(x: int) -> int:
    return 2 * x


def add(a: int, b: int) -> int:
    return a + b


def scale(x: int, factor: int, offset: int = 0) -> int:
    return x * factor + offset


def count_and_total(state: tuple[int, int], x: int) -> tuple[tuple[int, int], int]:
    """returns_state accumulation: the state is (count, total), the result the running total."""
    count, total = state
    return (count + 1, total + x), total + x


def reciprocal(x: int) -> float:
    return 1 / x


def gated(x: int, gates: str) -> int:
    """Return ``x`` once the test has opened its gate (created the file ``gates/x``)."""
    gate = Path(gates) / str(x)
    deadline = time.monotonic() + GATE_SECONDS
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {x} never opened")
        time.sleep(0.01)
    return x


@pytest.fixture
def sync_client(client: Client) -> Iterator[Client]:
    """The module's client, made the default so no other client of the session is picked."""
    set_default_client(client)
    try:
        yield client
    finally:
        set_default_client(None)


def test_the_seed_pipeline_runs_ten_one_second_tasks_on_four_workers_in_under_four_seconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with SchedulerClusterCombo(n_workers=4) as cluster, Client(cluster.get_address()) as client:
        with StatusReader(default_monitor_address(cluster.get_address())) as status:
            assert wait_until(lambda: len(status.latest()["workers"]) == 4, timeout_seconds=30)
        set_default_client(client)
        try:
            source = Stream()
            source.scatter().map(inc).buffer(8).gather().sink(print)

            start = time.monotonic()
            for i in range(10):
                source.emit(i)
            drain(source, timeout=30)
            elapsed = time.monotonic() - start
        finally:
            set_default_client(None)

    assert capsys.readouterr().out.split() == [str(i) for i in range(1, 11)]
    print(f"seed pipeline: {elapsed:.2f} s")
    assert elapsed < 4, f"10 one-second tasks on 4 workers took {elapsed:.2f} s"


def test_emit_blocks_while_the_buffer_holds_n_unfinished_results(sync_client: Client, tmp_path: Path) -> None:
    source = Stream()
    results = source.scatter().map(gated, str(tmp_path)).buffer(2).gather().sink_to_list()

    def open_gate(x: int) -> None:
        (tmp_path / str(x)).touch()

    try:
        source.emit(0)
        source.emit(1)  # two unfinished results: the buffer is full
        third = threading.Thread(target=source.emit, args=(2,), daemon=True)
        third.start()
        assert not wait_until(lambda: not third.is_alive(), timeout_seconds=1), "emit did not block"
        assert results == []

        open_gate(0)  # one result completes: there is room for the third element
        assert wait_until(lambda: not third.is_alive(), timeout_seconds=30), "emit stayed blocked"
        assert wait_until(lambda: results == [0], timeout_seconds=30)
    finally:
        for x in range(3):
            open_gate(x)
        drain(source, timeout=30)
    assert results == [0, 1, 2]


def run_locally(build: Callable[[Stream], Stream], items: list[Any]) -> list[Any]:
    source = Stream()
    results = build(source).sink_to_list()
    for item in items:
        source.emit(item)
    return results


def run_on_cluster(build: Callable[[Stream], Stream], items: list[Any]) -> list[Any]:
    source = Stream()
    results = build(source.scatter()).buffer(4).gather().sink_to_list()
    for item in items:
        source.emit(item)
    drain(source, timeout=30)
    return results


PIPELINES: dict[str, Callable[[Stream], Stream]] = {
    "map": lambda s: s.map(double),
    "map with arguments": lambda s: s.map(scale, 3, offset=1),
    "map then map": lambda s: s.map(double).map(scale, 10),
    "starmap": lambda s: s.map(lambda x: (x, x + 1)).starmap(add),
    "starmap with arguments": lambda s: s.map(lambda x: (x,)).starmap(scale, 5),
    "accumulate": lambda s: s.accumulate(add),
    "accumulate from start": lambda s: s.accumulate(add, start=100),
    "accumulate returns_state": lambda s: s.accumulate(count_and_total, start=(0, 0), returns_state=True),
    "accumulate with_state": lambda s: s.accumulate(add, start=0, with_state=True),
    "zip then starmap": lambda s: s.map(double).zip(s.map(scale, 3)).starmap(add),
    "partition then map": lambda s: s.partition(3).map(sum),
    "sliding_window then map": lambda s: s.sliding_window(2, return_partial=False).map(max),
}


@pytest.mark.parametrize("name", list(PIPELINES))
def test_results_equal_those_of_streamz_run_locally(sync_client: Client, name: str) -> None:
    build = PIPELINES[name]
    items = list(range(10))
    expected = run_locally(build, items)
    assert expected  # the comparison means something
    assert run_on_cluster(build, items) == expected


def test_a_failed_task_raises_from_emit_without_a_buffer(sync_client: Client) -> None:
    source = Stream()
    results = source.scatter().map(reciprocal).gather().sink_to_list()
    source.emit(4)
    with pytest.raises(ZeroDivisionError):
        source.emit(0)
    source.emit(2)  # the pipeline goes on
    assert results == [0.25, 0.5]


def test_a_failed_task_behind_a_buffer_raises_from_the_next_emit_and_the_pipeline_goes_on(sync_client: Client) -> None:
    source = Stream()
    buffered = source.scatter().map(reciprocal).buffer(4)
    results = buffered.gather().sink_to_list()

    source.emit(0)
    assert wait_until(lambda: buffered.held == 0, timeout_seconds=30)
    with pytest.raises(ZeroDivisionError):
        source.emit(4)  # raises the failure of 0, and still takes 4
    source.emit(2)
    drain(source, timeout=30)
    assert results == [0.25, 0.5]


def test_drain_raises_a_failure_no_emit_has_raised(sync_client: Client) -> None:
    source = Stream()
    results = source.scatter().map(reciprocal).buffer(4).gather().sink_to_list()
    source.emit(0)
    source.emit(1)
    with pytest.raises(ZeroDivisionError):
        drain(source, timeout=30)
    drain(source, timeout=30)  # raised once
    assert results == [1.0]


def test_the_default_client_is_the_most_recent_connected_one(cluster: SchedulerClusterCombo) -> None:
    def client_of(stream: ScalerStream, x: int) -> int:
        futures = stream.sink_to_list()
        stream.upstreams[0].emit(x)
        return client_number_of_task(futures[-1].task_id)

    with Client(cluster.get_address()) as older, Client(cluster.get_address()) as newer:
        assert default_client() is newer
        assert client_of(Stream().scatter(), 1) == newer.client_number

        set_default_client(older)
        try:
            assert default_client() is older
            assert client_of(Stream().scatter(), 2) == older.client_number
            assert client_of(Stream().scatter(client=newer), 3) == newer.client_number
        finally:
            set_default_client(None)
        assert default_client() is newer

        stream = Stream().scatter()
        assert client_of(stream, 4) == newer.client_number
        newer.disconnect()
        assert default_client() is older
        assert client_of(stream, 5) == older.client_number  # a pipeline moves on when its client leaves


def test_importing_scaler_streams_without_streamz_says_what_to_install() -> None:
    code = "import sys; sys.modules['streamz'] = None; import scaler.streams"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert 'ImportError: scaler.streams needs streamz: pip install "scaler[streams]"' in result.stderr


def test_the_functions_workers_run_need_neither_streamz_nor_scaler_streams() -> None:
    payload = cloudpickle.dumps((identity, functools.partial(star_apply, operator.add, (10,), {})))
    code = (
        "import sys, cloudpickle\n"
        "sys.modules['streamz'] = None\n"
        "sys.modules['scaler.streams'] = None\n"
        "identity, star = cloudpickle.loads(sys.stdin.buffer.read())\n"
        "print(identity('x'), star((1,)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == ["x", "11"]
