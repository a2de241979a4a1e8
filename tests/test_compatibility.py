"""Programs written for the original Scaler 1.x run unchanged against scaler.

Each test states one thing the original's classes, command lines or public tests rely on, with real
processes over real sockets (the ScalerFuture.deliver checks excepted: they feed the future directly).
"""

from __future__ import annotations

import concurrent.futures
import graphlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import cloudpickle
import msgpack
import pytest
import zmq

from scaler import (
    Client,
    Cluster,
    MissingObjects,
    ScalerError,
    ScalerFuture,
    Scheduler,
    SchedulerClusterCombo,
    SchedulerLostError,
    SerializationError,
    Serializer,
    TaskFailedError,
)
from scaler.io.address import local_address
from scaler.protocol.codec import encode
from scaler.protocol.messages import MessageType, TaskStatus
from scaler.scheduler.config import SchedulerConfig
from scaler.serializer import DefaultSerializer
from scaler.version import __version__
from scaler.worker.processor import ObjectStore
from tests import tasks
from tests.helpers import wait_until

FAST_HEARTBEAT_SECONDS = 0.5


class ZMQConfigLike:
    """Stands for Scaler 1.x's ZMQConfig, which its Cluster took as address: anything with to_address()."""

    def __init__(self, address: str) -> None:
        self._address = address

    def to_address(self) -> str:
        return self._address


class StaticSerializer(Serializer):
    """A serializer written the way Scaler 1.x asked: a Serializer subclass with static methods."""

    @staticmethod
    def serialize(obj: Any) -> bytes:
        return b"S" + cloudpickle.dumps(obj)

    @staticmethod
    def deserialize(payload: bytes) -> Any:
        payload = bytes(payload)
        assert payload[:1] == b"S", "a payload this serializer did not write"
        return cloudpickle.loads(payload[1:])


def keyword_only(a: int, b: int, *, c: int, d: int = 0) -> tuple[int, int, int, int]:
    return a, b, c, d


def four_arguments(a: int, b: int, c: int, d: int = 0) -> tuple[int, int, int, int]:
    return a, b, c, d


@pytest.fixture
def stopped_at_end() -> Iterator[list[Any]]:
    """Scheduler and Cluster processes a test starts; each is shut down at the end, whatever happened."""
    started: list[Any] = []
    yield started
    for process in reversed(started):
        process.shutdown()


# ------------------------------------------------------------------ Scheduler and Cluster classes


@pytest.mark.timeout(120)
def test_scheduler_and_cluster_run_in_their_own_processes_and_stop_with_nothing_left(
    stopped_at_end: list[Any],
) -> None:
    scheduler = Scheduler(local_address(), protected=False, client_timeout_seconds=30)
    stopped_at_end.append(scheduler)
    scheduler.start()  # returns once it listens
    assert scheduler.is_alive()
    cluster = Cluster(
        scheduler.get_address(), worker_names=["first", "second"], heartbeat_interval_seconds=FAST_HEARTBEAT_SECONDS
    )
    stopped_at_end.append(cluster)
    cluster.start()
    with Client(scheduler.get_address(), timeout_seconds=30) as client:
        assert client.map(tasks.add, [(i, i) for i in range(500)]) == [2 * i for i in range(500)]
        assert client.submit(tasks.square, 12).result(timeout=30) == 144
    cluster.shutdown()
    scheduler.shutdown()
    assert cluster.exitcode == 0 and scheduler.exitcode == 0


@pytest.mark.timeout(120)
def test_scheduler_and_cluster_take_the_positional_settings_of_the_original(stopped_at_end: list[Any]) -> None:
    address = local_address()
    # SchedulerProcess(address, monitor_address, io_threads, max_number_of_tasks_waiting, per_worker_queue_size,
    # client_timeout_seconds, worker_timeout_seconds, object_retention_seconds, load_balance_seconds,
    # load_balance_trigger_times, protected, event_loop, logging_path, logging_config_file)
    scheduler = Scheduler(
        ZMQConfigLike(address), None, 1, -1, 100, 30, 30, 3600, 1, 2, True, "builtin", ("/dev/stderr",), None
    )
    stopped_at_end.append(scheduler)
    # Cluster(address, worker_io_threads, worker_names, heartbeat_interval_seconds, task_timeout_seconds,
    # death_timeout_seconds, garbage_collect_interval_seconds, trim_memory_threshold_bytes, hard_processor_suspend,
    # event_loop, logging_paths, logging_level, logging_config_file)
    cluster = Cluster(
        ZMQConfigLike(address), 1, ["only"], 1, 0, 300, 30, 1 << 30, False, "builtin", ("/dev/stderr",), "WARNING", None
    )
    stopped_at_end.append(cluster)
    with scheduler, cluster, Client(address, timeout_seconds=30) as client:
        assert client.submit(tasks.add, 2, 3).result(timeout=30) == 5
    assert scheduler.exitcode == 0 and cluster.exitcode == 0


@pytest.mark.timeout(60)
def test_a_scheduler_config_can_be_given_whole(stopped_at_end: list[Any]) -> None:
    config = SchedulerConfig(address=local_address(), protected=False)
    scheduler = Scheduler(config)
    stopped_at_end.append(scheduler)
    scheduler.start()
    assert scheduler.get_address() == config.address
    cluster = Cluster(config.address, num_of_workers=1, heartbeat_interval_seconds=FAST_HEARTBEAT_SECONDS)
    stopped_at_end.append(cluster)
    cluster.start()
    client = Client(config.address, timeout_seconds=30)
    assert client.submit(tasks.square, 3).result(timeout=30) == 9
    pending = [client.submit(tasks.sleep_and_return, 60, i) for i in range(3)]
    client.shutdown()  # unprotected: the whole cluster stops, and the asking client's pending work is cancelled
    assert all(future.cancelled() for future in pending)
    assert wait_until(lambda: scheduler.exitcode is not None and cluster.exitcode is not None, timeout_seconds=30)
    assert scheduler.exitcode == 0 and cluster.exitcode == 0


@pytest.mark.timeout(60)
def test_scheduler_start_raises_when_its_address_is_taken(stopped_at_end: list[Any]) -> None:
    first = Scheduler()
    stopped_at_end.append(first)
    first.start()
    second = Scheduler(first.get_address())
    with pytest.raises(
        RuntimeError, match=f"cannot listen on its address {first.get_address()}: Address already in use$"
    ):
        second.start()
    assert second.exitcode is not None
    assert first.is_alive()


@pytest.mark.timeout(60)
def test_a_cluster_without_a_scheduler_ends_by_itself_after_its_death_timeout(stopped_at_end: list[Any]) -> None:
    cluster = Cluster(local_address(), worker_names=["a", "b"], death_timeout_seconds=1)
    stopped_at_end.append(cluster)
    cluster.start()
    cluster.join(timeout=30)
    assert cluster.exitcode == 0


@pytest.mark.timeout(120)
def test_a_combo_of_no_workers_serves_a_cluster_that_joins_later(stopped_at_end: list[Any]) -> None:
    with SchedulerClusterCombo(0) as combo, Client(combo.get_address(), timeout_seconds=30) as client:
        assert combo.worker_pids == []
        future = client.submit(tasks.add, 40, 2)
        assert not future.done()
        cluster = Cluster(combo.get_address(), num_of_workers=1, heartbeat_interval_seconds=FAST_HEARTBEAT_SECONDS)
        stopped_at_end.append(cluster)
        cluster.start()
        assert future.result(timeout=30) == 42
        cluster.shutdown()
        assert cluster.exitcode == 0


# ------------------------------------------------------------------ TimeoutError for a scheduler that is not there


def test_no_scheduler_answering_a_new_client_is_a_timeout_error() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        Client(local_address(), timeout_seconds=1)
    assert isinstance(caught.value, SchedulerLostError) and isinstance(caught.value, ConnectionError)
    assert time.monotonic() - started < 10


def test_a_client_without_address_outside_a_task_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="No scheduler address provided"):
        Client()


@pytest.mark.timeout(60)
def test_a_lost_scheduler_fails_pending_futures_with_a_timeout_error(stopped_at_end: list[Any]) -> None:
    scheduler = Scheduler()  # no workers: the task stays pending
    stopped_at_end.append(scheduler)
    scheduler.start()
    client = Client(scheduler.get_address(), timeout_seconds=2, heartbeat_interval_seconds=0.2)
    try:
        future = client.submit(tasks.add, 1, 2)
        scheduler.kill()
        scheduler.join(timeout=10)
        with pytest.raises(TimeoutError):
            future.result(timeout=30)
    finally:
        client.disconnect()


# ------------------------------------------------------------------ what the original's tests expect


def test_a_refused_shutdown_is_a_value_error(client: Client) -> None:
    with pytest.raises(ValueError):
        client.shutdown()
    assert client.submit(tasks.add, 1, 1).result(timeout=30) == 2  # refused, the client goes on


def test_profiling_info_of_an_unfinished_task_is_a_value_error(client: Client) -> None:
    future = client.submit_verbose(tasks.sleep_and_return, (0.5, "done"), profiling=True)
    with pytest.raises(ValueError):
        future.profiling_info()
    assert future.result(timeout=30) == "done"
    assert future.profiling_info().duration_s > 0


def test_a_cyclic_graph_is_a_graphlib_cycle_error(client: Client) -> None:
    with pytest.raises(graphlib.CycleError):
        client.get({"b": (tasks.square, "c"), "c": (tasks.square, "b")}, ["b", "c"])


def test_graph_keys_named_twice_or_not_in_the_graph_are_key_errors(client: Client) -> None:
    graph = {"a": 2, "b": 2, "c": (tasks.add, "a", "b")}
    with pytest.raises(KeyError, match="more than once"):
        client.get(graph, keys=["c", "a", "c"])
    with pytest.raises(KeyError, match="not in the graph"):
        client.get(graph, keys=["z"])
    assert client.get(graph, keys=["c", "a"]) == {"c": 4, "a": 2}


@pytest.mark.timeout(60)
def test_a_failing_graph_task_fails_every_task_after_it_with_its_exception(client: Client) -> None:
    graph = {
        "a": (tasks.add, 1, 1),
        "b": (tasks.add, "a", 1),
        "e": (tasks.raise_value_error, "some error"),
        "f": (tasks.add, "e", "b"),
        "g": (tasks.square, "f"),
    }
    futures = client.get(graph, keys=["e", "f", "g"], block=False)
    for future in futures.values():
        with pytest.raises(ValueError, match="some error"):
            future.result(timeout=30)


def test_a_task_using_a_deleted_object_fails_with_missing_objects(client: Client) -> None:
    deleted = client.send_object("gone")
    client.delete_object(deleted)
    with pytest.raises(MissingObjects):
        client.submit(tasks.length, deleted).result(timeout=30)
    cleared = client.send_object("cleared")
    unfinished = client.submit(tasks.sleep_and_return, 5, "never")
    client.clear()
    assert unfinished.cancelled()
    with pytest.raises(concurrent.futures.CancelledError):
        unfinished.result(timeout=1)
    with pytest.raises(MissingObjects) as caught:
        client.submit(tasks.length, cleared).result(timeout=30)
    assert isinstance(caught.value, TaskFailedError)
    assert client.submit(round, 3.14).result(timeout=30) == 3


def test_arguments_that_do_not_fit_the_function_raise_type_error_at_submit(client: Client) -> None:
    with pytest.raises(TypeError, match="missing a required argument: 'b'"):
        client.submit(four_arguments, 1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'e'"):
        client.submit(four_arguments, 1, 2, 3, e=4)
    with pytest.raises(TypeError, match="missing a required argument: 'c'"):
        client.submit(keyword_only, a=3, b=4)
    with pytest.raises(TypeError, match="too many positional arguments"):
        client.map(tasks.square, [(1,), (2, 3)])
    with pytest.raises(TypeError):
        client.get({"x": (tasks.add, 1)}, keys=["x"])
    # The calls that bind are sent as they are; a built-in without a signature is not checked.
    assert client.submit(four_arguments, 1, c=4, b=2).result(timeout=30) == (1, 2, 4, 0)
    assert client.submit(four_arguments, d=5, b=3, c=1, a=4).result(timeout=30) == (4, 3, 1, 5)
    assert client.submit(keyword_only, 1, c=4, b=2, d=6).result(timeout=30) == (1, 2, 4, 6)
    assert client.submit(max, 1, 2).result(timeout=30) == 2


def test_a_future_is_running_from_submit_until_it_is_done(client: Client) -> None:
    future = client.submit(tasks.sleep_and_return, 0.3, "value")
    assert future.running() and not future.done()
    assert future.result(timeout=30) == "value"
    assert not future.running() and future.done()
    running = client.submit(tasks.sleep_and_return, 5, "cancelled")
    assert running.running()
    assert running.cancel()
    assert running.cancelled() and running.done() and not running.running()
    with pytest.raises(concurrent.futures.CancelledError):
        running.result(timeout=1)
    done, _ = concurrent.futures.wait([running], timeout=1)
    assert done == {running}


def test_futures_of_a_client_that_left_are_cancelled(cluster: SchedulerClusterCombo) -> None:
    with Client(cluster.get_address(), timeout_seconds=30) as client:
        future = client.submit(tasks.sleep_and_return, 5, "never")
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(timeout=5)


def test_client_parameters_come_in_the_original_order(cluster: SchedulerClusterCombo) -> None:
    # Client(address, profiling, timeout_seconds, heartbeat_interval_seconds, serializer)
    with Client(cluster.get_address(), True, 30, 1, StaticSerializer()) as client:
        assert client.profiling and client.timeout_seconds == 30
        future = client.submit(tasks.add, 20, 22)
        assert future.result(timeout=30) == 42
        assert future.profiling_info().cpu_time_s >= 0


# ------------------------------------------------------------------ a future survives whatever it is handed


def _future() -> ScalerFuture:
    return ScalerFuture(7, DefaultSerializer(), lambda task_ids: None)


@pytest.mark.parametrize(
    "profile", [["a", "b", "c"], [1.0], "xyz", {"0": 1}, 5, [float("inf"), 1.0, float("inf")], [None, None, None]]
)
def test_a_malformed_profile_means_no_profiling_info_and_the_result_still_arrives(profile: Any) -> None:
    future = _future()
    future.deliver(TaskStatus.SUCCESS, DefaultSerializer().serialize(5), profile)
    assert future.result(timeout=0) == 5
    with pytest.raises(ValueError):
        future.profiling_info()


@pytest.mark.parametrize(
    ("status", "payload", "error"),
    [
        (TaskStatus.SUCCESS, None, TaskFailedError),
        (TaskStatus.RAISED, b"not a pickle", ScalerError),
        (TaskStatus.RAISED, "text, not bytes", TaskFailedError),
        (TaskStatus.WORKER_DIED, 12345, TaskFailedError),
        (TaskStatus.OBJECT_MISSING, b"object 1234", MissingObjects),
        (TaskStatus.TIMED_OUT, b"too long", TimeoutError),
        (99, b"a status nobody knows", TaskFailedError),
        ("SUCCESS", b"x", TaskFailedError),
        ([1], None, TaskFailedError),
    ],
)
def test_deliver_settles_the_future_with_an_error_whatever_it_is_handed(
    status: Any, payload: Any, error: type[BaseException]
) -> None:
    future = _future()
    future.deliver(status, payload, ["a", "b", "c"])
    assert future.done()
    assert isinstance(future.exception(timeout=0), error)


def test_a_result_that_cannot_be_decoded_settles_the_future_with_a_serialization_error() -> None:
    future = _future()
    future.deliver(TaskStatus.SUCCESS, b"\x80not a pickle", [0.5, 0.25, 1024])
    assert future.done()
    with pytest.raises(SerializationError):
        future.result(timeout=0)
    assert future.profiling_info().duration_s == 0.5


class FakeScheduler:
    """A ROUTER socket that accepts one client and answers its tasks with whatever a test sends."""

    def __init__(self) -> None:
        self.address = local_address()
        self._context = zmq.Context()
        self._router = self._context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.bind(self.address)
        self.client_identity = b""

    def receive(self, timeout_seconds: float = 10) -> tuple[MessageType, list[Any]]:
        """The next message from the client (its type and fields); heartbeats are skipped."""
        deadline = time.monotonic() + timeout_seconds
        while self._router.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            identity, head, *_frames = self._router.recv_multipart()
            self.client_identity = identity
            msg_type, *fields = msgpack.unpackb(head, raw=False)
            if msg_type != MessageType.CLIENT_HEARTBEAT:
                return MessageType(msg_type), fields
        raise TimeoutError("the client sent nothing")

    def task_ids(self, count: int) -> list[int]:
        """Ids of the next ``count`` tasks the client submits."""
        ids: list[int] = []
        while len(ids) < count:
            msg_type, fields = self.receive()
            if msg_type is MessageType.TASK_SUBMIT:
                ids.extend(item[0] for item in fields)
        return ids

    def send(self, parts: list[Any]) -> None:
        self._router.send_multipart([self.client_identity, *parts])

    def close(self) -> None:
        self._router.close()
        self._context.term()


@pytest.mark.timeout(60)
def test_the_client_survives_malformed_results_from_its_scheduler() -> None:
    fake = FakeScheduler()
    connected: list[Client] = []
    connecting = threading.Thread(target=lambda: connected.append(Client(fake.address, timeout_seconds=10)))
    connecting.start()
    try:
        assert fake.receive()[0] is MessageType.CLIENT_CONNECT
        fake.send(encode(MessageType.CLIENT_ACCEPT, [1, True, __version__]))
        connecting.join(timeout=10)
        client = connected[0]
        bad_reference, good = client.submit(tasks.add, 1, 2), client.submit(tasks.add, 1, 2)
        first_id, second_id = fake.task_ids(2)
        result = DefaultSerializer().serialize(3)
        fake.send([b"\xc1 not msgpack"])
        fake.send([msgpack.packb([int(MessageType.TASK_RESULTS), 5, "x", None])])
        fake.send(
            encode(
                MessageType.TASK_RESULTS,
                [
                    "not an item",
                    [1, 2],
                    [[first_id], 0, b"", None],  # an unhashable task id
                    [first_id, int(TaskStatus.SUCCESS), 99, None],  # a frame that is not there
                    [second_id, int(TaskStatus.SUCCESS), result, ["a", "b", "c"]],
                ],
            )
        )
        with pytest.raises(TaskFailedError, match="malformed result"):
            bad_reference.result(timeout=10)
        assert good.result(timeout=10) == 3
        with pytest.raises(ValueError):
            good.profiling_info()
        later = client.submit(tasks.add, 2, 2)  # the client's I/O thread is still there
        (later_id,) = fake.task_ids(1)
        fake.send(encode(MessageType.TASK_RESULTS, [[later_id, int(TaskStatus.SUCCESS), result, None]]))
        assert later.result(timeout=10) == 3
        client.disconnect()
    finally:
        connecting.join(timeout=15)
        for leftover in connected:
            leftover.disconnect()
        fake.close()


def test_a_processor_without_the_object_a_task_needs_fails_it_with_missing_objects() -> None:
    with pytest.raises(MissingObjects, match="not on this worker"):
        ObjectStore().value(b"\x01" * 16, None)


def test_errors_and_serializers_import_from_the_original_module_paths() -> None:
    import scaler
    from scaler.client.serializer.default import DefaultSerializer
    from scaler.client.serializer.mixins import Serializer
    from scaler.utility.exceptions import MissingObjects, ProcessorDiedError, WorkerDiedError

    assert (MissingObjects, ProcessorDiedError, WorkerDiedError) == (
        scaler.MissingObjects,
        scaler.ProcessorDiedError,
        scaler.WorkerDiedError,
    )
    assert Serializer is scaler.Serializer and DefaultSerializer is scaler.DefaultSerializer
