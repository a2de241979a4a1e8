"""Every user error at once on one cluster: each fails the right way, and the cluster is whole afterwards.

Stale object references, unknown graph keys, cancels of finished futures, unpicklable arguments and results,
tasks that raise or kill their processor, a client disconnected in the middle of a map from another thread,
and a client process SIGKILLed with tasks in flight and objects stored: all thrown at one scheduler with
three workers, concurrently. Afterwards a fresh client's 1,000-task map is right and the scheduler's status
shows no client, no unfinished task and no object.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scaler import Client, SchedulerClusterCombo
from scaler.errors import GraphError, ProcessorDiedError, SerializationError, TaskFailedError
from scaler.io.address import default_monitor_address
from tests import tasks
from tests.cluster_parts import StatusReader
from tests.helpers import wait_until

REPOSITORY = Path(__file__).resolve().parent.parent
CLIENT_TIMEOUT_SECONDS = 3.0  # the scheduler forgets a silent client after this
RESULT_TIMEOUT_SECONDS = 15.0  # the longest wait for one result
STORM_SECONDS = 30.0  # every scenario has ended by then

_DOOMED_CLIENT = """
import sys, time
from scaler import Client
from tests import tasks
client = Client(sys.argv[1], timeout_seconds=30, heartbeat_interval_seconds=0.2)
client.send_object(b"x" * 1000, name="owned")
client.send_object(list(range(1000)), name="owned too")
futures = [client.submit(tasks.sleep_and_return, 300, i) for i in range(300)]
print(client.client_number, flush=True)
time.sleep(300)
"""


def _connect(address: str, **options: Any) -> Client:
    # Heartbeats well inside the scheduler's short client timeout, so only the killed client is forgotten; a
    # scheduler silent for 10 s fails every pending future, so no wait of a scenario outlives a dead cluster.
    return Client(address, timeout_seconds=10, heartbeat_interval_seconds=0.5, **options)


def _map_within(
    client: Client, fn: Any, arguments: list[tuple[Any, ...]], seconds: float = RESULT_TIMEOUT_SECONDS
) -> list[Any]:
    """client.map with a deadline: TimeoutError past it (the map ends when its client disconnects)."""
    runner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="bounded-map")
    try:
        return runner.submit(client.map, fn, arguments).result(timeout=seconds)
    finally:
        runner.shutdown(wait=False)


def _client_line(status: StatusReader, number: int) -> dict[str, Any] | None:
    return next((line for line in status.latest()["clients"] if line["number"] == number), None)


# ---------------------------------------------------------------------------------------------- the errors


def stale_object_references(address: str, monitor: str) -> None:
    with _connect(address) as client, StatusReader(monitor) as status:
        cleared = client.send_object([1, 2, 3], name="cleared")
        assert client.submit(tasks.length, cleared).result(timeout=RESULT_TIMEOUT_SECONDS) == 3
        client.clear()
        with pytest.raises(TaskFailedError, match=cleared.object_id.hex()[:12]):
            client.submit(tasks.length, cleared).result(timeout=RESULT_TIMEOUT_SECONDS)
        deleted = client.send_object("deleted")
        client.delete_object(deleted)
        with pytest.raises(TaskFailedError, match=deleted.object_id.hex()[:12]):
            client.submit(tasks.identity, deleted).result(timeout=RESULT_TIMEOUT_SECONDS)
        owner = _connect(address)
        orphan = owner.send_object("orphan")
        # a round trip on the owner's connection: the object is stored before the other client uses it
        assert owner.submit(tasks.identity, orphan).result(timeout=RESULT_TIMEOUT_SECONDS) == "orphan"
        assert client.submit(tasks.identity, orphan).result(timeout=RESULT_TIMEOUT_SECONDS) == "orphan"
        owner_number = owner.client_number
        owner.disconnect()
        assert wait_until(lambda: _client_line(status, owner_number) is None, timeout_seconds=10)
        with pytest.raises(TaskFailedError, match=orphan.object_id.hex()[:12]):
            client.submit(tasks.identity, orphan).result(timeout=RESULT_TIMEOUT_SECONDS)
        assert client.submit(tasks.add, 1, 1).result(timeout=RESULT_TIMEOUT_SECONDS) == 2
    with _connect(address, serializer=tasks.TaggingSerializer()) as tagged:
        kept = tagged.send_object({"k": 1})
        assert tagged.submit(tasks.receives_tagged_bytes, kept).result(timeout=RESULT_TIMEOUT_SECONDS) == {"k": 1}
        tagged.clear()
        with pytest.raises(TaskFailedError):
            tagged.submit(tasks.receives_tagged_bytes, kept).result(timeout=RESULT_TIMEOUT_SECONDS)
        assert _map_within(tagged, tasks.add, [(1, 2), (3, 4)]) == [3, 7]


def graph_and_call_mistakes(address: str, monitor: str) -> None:
    with _connect(address) as client:
        with pytest.raises(GraphError, match="not in the graph"):
            client.get({"a": (tasks.add, 1, 2)}, keys=["a", "nowhere"])
        with pytest.raises(GraphError, match="cycle"):
            client.get({"a": (tasks.add, "b", 1), "b": (tasks.add, "a", 1)}, keys=["a"])
        with pytest.raises(TypeError, match="argument tuples"):
            client.map(tasks.square, [1, 2, 3])
        with pytest.raises(TypeError, match="callable"):
            client.submit(42)
        graph = {
            "bad": (tasks.raise_value_error, "graph boom"),
            "after": (tasks.add, "bad", 1),
            "ok": (tasks.add, 1, 1),
        }
        with pytest.raises(ValueError, match="graph boom"):
            client.get(graph, keys=["after"], block=False)["after"].result(timeout=RESULT_TIMEOUT_SECONDS)
        assert client.get(graph, keys=["ok"], block=False)["ok"].result(timeout=RESULT_TIMEOUT_SECONDS) == 2


def cancels_of_finished_futures(address: str, monitor: str) -> None:
    with _connect(address) as client:
        done = client.submit(tasks.add, 2, 2)
        assert done.result(timeout=RESULT_TIMEOUT_SECONDS) == 4
        assert not done.cancel()
        assert done.result(timeout=0) == 4 and not done.cancelled()
        failed = client.submit(tasks.raise_value_error, "already failed")
        with pytest.raises(ValueError, match="already failed"):
            failed.result(timeout=RESULT_TIMEOUT_SECONDS)
        assert not failed.cancel()
        slow = client.submit(tasks.sleep_and_return, 30, "never")
        assert slow.cancel() and slow.cancel()  # cancelling twice is fine
        with pytest.raises(concurrent.futures.CancelledError):
            slow.result(timeout=0)
        late = client.submit(tasks.sleep_and_return, 0.2, "late")
        with pytest.raises(TimeoutError):
            late.result(timeout=0.01)
        assert late.result(timeout=RESULT_TIMEOUT_SECONDS) == "late"  # a result() timeout leaves the task running


def unpicklable_values(address: str, monitor: str) -> None:
    lock = threading.Lock()

    def uses_lock() -> bool:
        return lock.locked()

    with _connect(address) as client:
        with pytest.raises(SerializationError, match="argument 0"):
            client.submit(tasks.identity, lock)
        with pytest.raises(SerializationError, match="cannot serialize function"):
            client.submit(uses_lock)
        with pytest.raises(SerializationError, match="cannot serialize object"):
            client.send_object(lock)
        results = [client.submit(threading.Lock) for _ in range(20)]
        for future in results:
            with pytest.raises(SerializationError, match="cannot serialize the result"):
                future.result(timeout=RESULT_TIMEOUT_SECONDS)
        assert _map_within(client, tasks.square, [(i,) for i in range(20)]) == [i * i for i in range(20)]


def raising_tasks(address: str, monitor: str) -> None:
    with _connect(address) as client:
        futures = [client.submit(tasks.raise_value_error, f"boom {i}") for i in range(100)]
        for i, future in enumerate(futures):
            with pytest.raises(ValueError, match=f"^boom {i}$"):
                future.result(timeout=RESULT_TIMEOUT_SECONDS)
        with pytest.raises(ValueError, match="^map boom [0-9]+$"):
            _map_within(client, tasks.raise_value_error, [(f"map boom {i}",) for i in range(50)])


def processor_killers(address: str, monitor: str) -> None:
    with _connect(address) as client:
        killers = [client.submit(tasks.exit_processor, 3) for _ in range(3)]
        good = [client.submit(tasks.sleep_and_return, 0.005, i) for i in range(100)]
        for future in killers:
            with pytest.raises(ProcessorDiedError, match=f"task {future.task_id:#x} died: .*code 3"):
                future.result(timeout=RESULT_TIMEOUT_SECONDS)
        assert [f.result(timeout=RESULT_TIMEOUT_SECONDS) for f in good] == list(range(100))


def disconnect_in_the_middle_of_a_map(address: str, monitor: str) -> None:
    with StatusReader(monitor) as status:
        _disconnect_in_the_middle_of_a_map(address, status)


def _disconnect_in_the_middle_of_a_map(address: str, status: StatusReader) -> None:
    client = _connect(address)
    outcome: list[BaseException | list[Any]] = []

    def run_map() -> None:
        try:
            outcome.append(client.map(tasks.sleep_and_return, [(0.02, i) for i in range(1000)]))
        except BaseException as exc:  # checked by the thread that disconnected
            outcome.append(exc)

    mapper = threading.Thread(target=run_map, name="storm-map")
    mapper.start()

    def in_flight() -> bool:
        line = _client_line(status, client.client_number)
        return line is not None and line["tasks"] > 0

    try:
        assert wait_until(in_flight, timeout_seconds=20), "the map's tasks never reached the scheduler"
    finally:
        client.disconnect()
        mapper.join(timeout=RESULT_TIMEOUT_SECONDS)
    assert not mapper.is_alive(), "map() went on waiting after its client disconnected"
    assert len(outcome) == 1 and isinstance(outcome[0], concurrent.futures.CancelledError), outcome[:1]


STORM: list[Callable[[str, str], None]] = [
    stale_object_references,
    graph_and_call_mistakes,
    cancels_of_finished_futures,
    unpicklable_values,
    raising_tasks,
    processor_killers,
    disconnect_in_the_middle_of_a_map,
]


# ---------------------------------------------------------------------------------------------- the storm


def _last_lines(exc: BaseException) -> str:
    """The failing line of a scenario and its error, for a summary of every scenario that failed."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == __file__]
    where = f"line {frames[-1].lineno}: {frames[-1].line}: " if frames else ""
    return f"{where}{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


@pytest.mark.timeout(60)
def test_a_storm_of_user_errors_fails_each_the_right_way_and_leaves_the_cluster_whole() -> None:
    with SchedulerClusterCombo(n_workers=3, client_timeout_seconds=CLIENT_TIMEOUT_SECONDS) as cluster:
        address = cluster.get_address()
        monitor = default_monitor_address(address)
        with StatusReader(monitor) as status:
            assert wait_until(lambda: len(status.latest()["workers"]) == 3, timeout_seconds=10)
            doomed = subprocess.Popen(
                [sys.executable, "-c", _DOOMED_CLIENT, address],
                stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
            )
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(STORM), thread_name_prefix="storm")
            storm: dict[concurrent.futures.Future[None], str] = {}
            try:
                for scenario in STORM:
                    storm[pool.submit(scenario, address, monitor)] = scenario.__name__
                assert doomed.stdout is not None
                first_line = doomed.stdout.readline()
                assert first_line.strip().isdigit(), f"the client to kill did not start: {first_line!r}"
                doomed_number = int(first_line)

                def doomed_holds_its_work() -> bool:
                    line = _client_line(status, doomed_number)
                    return line is not None and line["tasks"] == 300 and line["objects"] >= 2

                assert wait_until(doomed_holds_its_work, timeout_seconds=15), status.latest()["clients"]
            finally:
                doomed.kill()
                doomed.wait(timeout=10)
                if doomed.stdout is not None:
                    doomed.stdout.close()
                pool.shutdown(wait=False)
            concurrent.futures.wait(storm, timeout=STORM_SECONDS)
            failures = [(name, future.exception()) for future, name in storm.items() if future.done()]
            failures = [(name, exc) for name, exc in failures if exc is not None]
            unfinished = sorted(name for future, name in storm.items() if not future.done())
            if failures or unfinished:
                lines = [f"{name}: {_last_lines(exc)}" for name, exc in failures]
                lines += [f"{name}: still running after {STORM_SECONDS:g} s" for name in unfinished]
                first_error = failures[0][1] if failures else None
                raise AssertionError("storm scenarios failed:\n" + "\n".join(lines)) from first_error

            # The killed client is forgotten after the client timeout: its tasks stop and its objects go.
            assert wait_until(
                lambda: _client_line(status, doomed_number) is None, timeout_seconds=CLIENT_TIMEOUT_SECONDS + 5
            ), status.latest()["clients"]
            with _connect(address) as fresh:
                squares = _map_within(fresh, tasks.square, [(i,) for i in range(1000)])
                assert squares == [i * i for i in range(1000)]

            def nothing_left() -> bool:
                current = status.latest()
                counts = current["tasks"]
                return (
                    current["clients"] == []
                    and counts["unfinished"] == 0
                    and all(counts[state] == 0 for state in ("waiting", "queued", "assigned", "running"))
                    and current["objects"]["count"] == current["objects"]["functions"] == 0
                )

            assert wait_until(nothing_left, timeout_seconds=10), status.latest()
            assert len(status.latest()["workers"]) == 3
