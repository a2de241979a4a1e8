"""Life-cycle regressions on a real cluster: each case once wedged the cluster or left a task stranded.

Every test does the thing, checks the error it must raise, then checks that the cluster still works (a fresh
task returns its value) and that the scheduler's status shows no task left unfinished once the work is done.
"""

from __future__ import annotations

import concurrent.futures
import os
import pickle
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from scaler import Client, SchedulerClusterCombo, defaults
from scaler.errors import TaskFailedError, WorkerDiedError
from scaler.io.address import default_monitor_address
from scaler.protocol.ids import task_id_base
from scaler.protocol.messages import ArgumentKind, MessageType, TaskStatus
from scaler.scheduler.dispatch_policy import room_for
from tests import tasks
from tests.cluster_parts import Cluster, StatusReader
from tests.helpers import wait_until
from tests.protocol_peer import FakeWorker, ProtocolClient, argument, teach_run_time

FAILURE_STATUSES = {int(TaskStatus.FAILED), int(TaskStatus.OBJECT_MISSING), int(TaskStatus.DEPENDENCY_GONE)}


# ---------------------------------------------------------------------------------------------- status checks


def no_task_unfinished(status: StatusReader) -> bool:
    """The scheduler holds no task: none unfinished, none queued, waiting or on a worker."""
    counts = status.latest()["tasks"]
    states = ("waiting", "queued", "assigned", "running", "suspended")
    return counts["unfinished"] == 0 and all(counts[state] == 0 for state in states)


def on_workers(status: StatusReader) -> int:
    """Tasks held by workers, started or not."""
    tasks = status.latest()["tasks"]
    return int(tasks["assigned"] + tasks["running"])


def nothing_left(status: StatusReader) -> bool:
    """No client, no task and no object left in the scheduler."""
    current = status.latest()
    objects = current["objects"]
    return current["clients"] == [] and objects["count"] == objects["functions"] == 0 and no_task_unfinished(status)


def malformed_count(status: StatusReader) -> int:
    return status.latest().get("counters", {}).get("malformed", 0)


def assert_settles(status: StatusReader, condition: Any = no_task_unfinished, timeout_seconds: float = 10) -> None:
    assert wait_until(lambda: condition(status), timeout_seconds=timeout_seconds), status.latest()["tasks"]


def assert_cluster_works(address: str) -> None:
    """A fresh client gets a fresh task's value and a small map right."""
    with Client(address, timeout_seconds=30) as fresh:
        assert fresh.submit(tasks.add, 1, 1).result(timeout=10) == 2
        assert fresh.map(tasks.square, [(i,) for i in range(20)]) == [i * i for i in range(20)]


@contextmanager
def combo_with_status(n_workers: int) -> Iterator[tuple[SchedulerClusterCombo, StatusReader]]:
    with SchedulerClusterCombo(n_workers=n_workers) as cluster:
        with StatusReader(default_monitor_address(cluster.get_address())) as status:
            yield cluster, status


# ---------------------------------------------------------------------------------------------- stale objects


@pytest.mark.timeout(60)
def test_the_issue_example_a_stale_reference_after_clear_fails_and_the_next_task_returns_2() -> None:
    with combo_with_status(n_workers=1) as (cluster, status):
        a = Client(cluster.get_address(), timeout_seconds=30)
        try:
            ref = a.send_object(0.25)
            assert a.submit(tasks.identity, ref).result(timeout=10) == 0.25
            a.clear()
            with pytest.raises(TaskFailedError, match=ref.object_id.hex()[:12]):
                a.submit(tasks.identity, ref).result(timeout=10)
            assert a.submit(tasks.add, 1, 1).result(timeout=5) == 2
            assert_settles(status)
        finally:
            a.disconnect()
        assert_settles(status, nothing_left)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["delete_object", "owner_disconnected"])
def test_a_task_on_a_deleted_object_fails_and_the_cluster_goes_on(how: str) -> None:
    with combo_with_status(n_workers=1) as (cluster, status):
        with Client(cluster.get_address(), timeout_seconds=30) as client:
            if how == "delete_object":
                ref = client.send_object(0.25)
                assert client.submit(tasks.identity, ref).result(timeout=10) == 0.25
                client.delete_object(ref)
            else:
                with Client(cluster.get_address(), timeout_seconds=30) as owner:
                    ref = owner.send_object(0.25)
                    # a round trip on the owner's connection: the object is stored before the other client uses it
                    assert owner.submit(tasks.identity, ref).result(timeout=10) == 0.25
                    assert client.submit(tasks.identity, ref).result(timeout=10) == 0.25  # another client's object
                # the owner's goodbye travels on its own connection: wait until the scheduler has heard it
                assert wait_until(lambda: len(status.latest()["clients"]) == 1, timeout_seconds=10)
            with pytest.raises(TaskFailedError, match=ref.object_id.hex()[:12]):
                client.submit(tasks.identity, ref).result(timeout=10)
            assert client.submit(tasks.add, 1, 1).result(timeout=5) == 2
            assert client.map(tasks.square, [(i,) for i in range(20)]) == [i * i for i in range(20)]
            assert_settles(status)
        assert_settles(status, nothing_left)


@pytest.mark.timeout(60)
def test_a_client_with_its_own_serializer_works_after_clear() -> None:
    with combo_with_status(n_workers=1) as (cluster, status):
        with Client(cluster.get_address(), timeout_seconds=30, serializer=tasks.TaggingSerializer()) as client:
            assert client.submit(tasks.receives_tagged_bytes, {"k": 1}).result(timeout=10) == {"k": 1}
            pending = client.submit(tasks.sleep_and_return, 30, "never")
            client.clear()
            assert pending.cancelled()
            assert client.submit(tasks.add, 1, 1).result(timeout=10) == 2
            assert client.map(tasks.add, [(1, 2), (3, 4)]) == [3, 7]
            reference = client.send_object([5, 6])
            assert client.submit(tasks.length, reference).result(timeout=10) == 2
            assert_settles(status)
        assert_settles(status, nothing_left)


# ---------------------------------------------------------------------------------------------- a raw protocol peer


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", ["unknown_function", "unknown_dependency", "dependency_already_failed"])
def test_a_peer_submitting_what_nobody_can_run_gets_a_failure_and_others_go_on(case: str) -> None:
    with Cluster() as cluster, StatusReader(cluster.monitor_address) as status:
        cluster.add_worker()
        peer = ProtocolClient(cluster.address)
        try:
            one = argument(ArgumentKind.INLINE, pickle.dumps(1))
            if case == "unknown_function":
                task_id = peer.submit(b"F" + b"\x01" * 15, [one])
            elif case == "unknown_dependency":
                function_id = peer.put_function(tasks.identity)
                task_id = peer.submit(function_id, [argument(ArgumentKind.TASK, task_id_base(peer.number) + 999)])
            else:
                raising = peer.submit(peer.put_function(tasks.raise_value_error), [one])
                assert peer.result_of(raising, timeout_seconds=10)[0] == TaskStatus.RAISED
                task_id = peer.submit(peer.put_function(tasks.identity), [argument(ArgumentKind.TASK, raising)])
            task_status, text = peer.result_of(task_id, timeout_seconds=10)
            assert task_status in FAILURE_STATUSES, (task_status, text)
            assert text, "a failure says what went wrong"
            # the same peer still gets its good tasks run
            good = peer.submit(peer.put_function(tasks.square), [argument(ArgumentKind.INLINE, pickle.dumps(7))])
            good_status, payload = peer.result_of(good, timeout_seconds=10)
            assert good_status == TaskStatus.SUCCESS and payload is not None and pickle.loads(payload) == 49
            assert_cluster_works(cluster.address)
            assert_settles(status)
        finally:
            peer.disconnect()
        assert_settles(status, nothing_left)


@pytest.mark.timeout(60)
def test_a_peer_cancelling_a_running_dependency_ends_its_waiting_dependents() -> None:
    with Cluster() as cluster, StatusReader(cluster.monitor_address) as status:
        cluster.add_worker()
        peer = ProtocolClient(cluster.address)
        try:
            slow = peer.submit(
                peer.put_function(tasks.sleep_and_return),
                [argument(ArgumentKind.INLINE, pickle.dumps(30)), argument(ArgumentKind.INLINE, pickle.dumps(1))],
            )
            add = peer.put_function(tasks.add)
            one = argument(ArgumentKind.INLINE, pickle.dumps(1))
            middle = peer.submit(add, [argument(ArgumentKind.TASK, slow), one])
            top = peer.submit(add, [argument(ArgumentKind.TASK, middle), one])
            assert wait_until(lambda: on_workers(status) == 1, timeout_seconds=10)
            peer.cancel([slow])
            assert peer.result_of(slow, timeout_seconds=10)[0] == TaskStatus.CANCELLED
            ended = {int(TaskStatus.CANCELLED), *FAILURE_STATUSES}
            for dependent in (middle, top):
                assert peer.result_of(dependent, timeout_seconds=10)[0] in ended
            assert_settles(status)
            assert_cluster_works(cluster.address)
        finally:
            peer.disconnect()
        assert_settles(status, nothing_left)


# ---------------------------------------------------------------------------------------------- graphs


@pytest.mark.timeout(60)
def test_a_raising_graph_node_fails_its_dependents_and_nothing_is_left() -> None:
    with combo_with_status(n_workers=1) as (cluster, status):
        with Client(cluster.get_address(), timeout_seconds=30) as client:
            graph = {
                "bad": (tasks.raise_value_error, "boom"),
                "middle": (tasks.add, "bad", 1),
                "top": (tasks.add, "middle", 1),
                "fine": (tasks.add, 1, 1),
            }
            with pytest.raises(ValueError, match="boom"):
                client.get(graph, keys=["top"])
            futures = client.get(graph, keys=["top", "middle", "fine"], block=False)
            for key in ("top", "middle"):
                with pytest.raises(ValueError, match="boom"):
                    futures[key].result(timeout=10)
            assert futures["fine"].result(timeout=10) == 2
            assert client.submit(tasks.add, 1, 1).result(timeout=10) == 2
            assert_settles(status)
        assert_settles(status, nothing_left)


@pytest.mark.timeout(60)
def test_cancelling_a_graph_future_while_its_dependents_wait_ends_every_future_of_the_graph() -> None:
    with combo_with_status(n_workers=1) as (cluster, status):
        with Client(cluster.get_address(), timeout_seconds=30) as client:
            graph = {
                "slow": (tasks.sleep_and_return, 30, 1),
                "middle": (tasks.add, "slow", 1),
                "top": (tasks.add, "middle", 1),
            }
            futures = client.get(graph, keys=["slow", "top"], block=False)
            assert wait_until(lambda: on_workers(status) == 1, timeout_seconds=10)
            assert futures["slow"].cancel()
            done, not_done = concurrent.futures.wait(futures.values(), timeout=10)
            assert not not_done, "a future of the cancelled graph never ended"
            assert futures["top"].cancelled() or futures["top"].exception() is not None
            assert client.submit(tasks.add, 1, 1).result(timeout=10) == 2  # the running node was stopped
            assert_settles(status)
        assert_settles(status, nothing_left)


# ---------------------------------------------------------------------------------------------- disconnects and races


@pytest.mark.timeout(120)
def test_a_client_leaving_while_its_2000_tasks_are_assigned_leaves_nothing_behind() -> None:
    with Cluster() as cluster, StatusReader(cluster.monitor_address) as status:
        for _ in range(3):
            cluster.add_worker()
        assert wait_until(lambda: len(status.latest()["workers"]) == 3, timeout_seconds=20)
        client = Client(cluster.address, timeout_seconds=30)
        futures = [client.submit(tasks.sleep_and_return, 0.005, i) for i in range(2000)]
        client.disconnect()
        assert all(future.done() for future in futures)
        assert all(future.cancelled() or future.exception(timeout=0) is None for future in futures)
        assert_settles(status, nothing_left, timeout_seconds=20)
        with Client(cluster.address, timeout_seconds=30) as fresh:
            assert fresh.map(tasks.sleep_and_return, [(0.001, i) for i in range(300)]) == list(range(300))
        assert len(cluster.live_workers()) == 3
        assert_settles(status, nothing_left)


@pytest.mark.timeout(60)
def test_a_cancel_that_crosses_a_withdrawal_ends_the_withdrawn_tasks() -> None:
    """The worker returns tasks it was asked to give back while the client's cancel of them is on its way.

    A real worker handles the withdrawal first and then ignores the cancel of tasks it no longer has; the fake
    worker sends the same answers, placed after the scheduler has handled the cancel.
    """
    with Cluster(load_balance_seconds=60) as cluster, StatusReader(cluster.monitor_address) as status:
        fake = FakeWorker(cluster.address)
        try:
            with Client(cluster.address, timeout_seconds=30) as client:
                teach_run_time(client, fake, tasks.sleep_and_return, _FAKE_RUN_SECONDS)
                # Exactly what the fake worker takes: 4 ms tasks fill its horizon, none waits in the scheduler.
                count = room_for(0, 0.0, _FAKE_RUN_SECONDS, defaults.SCHEDULER_PER_WORKER_QUEUE_SIZE)
                futures = {f.task_id: f for f in (client.submit(tasks.sleep_and_return, 0.05, i) for i in range(count))}
                fake.wait_for_tasks(1 + count, timeout_seconds=10)
                cluster.add_worker()  # joins idle: the scheduler asks the fake worker for some of its tasks back
                _, withdrawn, _ = fake.wait_for(MessageType.TASK_WITHDRAW, timeout_seconds=10)
                assert withdrawn and set(withdrawn) < set(futures)
                kept = [t for t in futures if t not in set(withdrawn)]
                for task_id in [*withdrawn, *kept]:  # on one connection: the kept ones' cancels come last
                    assert futures[task_id].cancel()
                told_to_cancel: set[int] = set()
                while not set(kept) <= told_to_cancel:
                    _, cancel_ids, _ = fake.wait_for(MessageType.TASK_CANCEL, timeout_seconds=10)
                    told_to_cancel.update(cancel_ids)
                fake.send(MessageType.TASKS_RETURNED, [withdrawn, []])
                fake.send_results([[t, int(TaskStatus.CANCELLED), None, None] for t in kept])
                assert all(f.cancelled() for f in futures.values())
                assert_settles(status)
                fake.disconnect()  # else the fresh task may go to the fake worker, which runs nothing
                assert client.submit(tasks.add, 1, 1).result(timeout=10) == 2
        finally:
            fake.close()
        assert_settles(status, nothing_left)


_FAKE_RUN_SECONDS = 0.004


@pytest.mark.timeout(60)
def test_a_frozen_worker_that_returns_withdrawn_tasks_after_their_cancel_strands_none() -> None:
    """The same crossing with real workers: the first worker is frozen while it is asked for tasks and they are
    cancelled, so it reads the withdrawal and the cancels only after the scheduler has handled both."""
    with Cluster(load_balance_seconds=0.05, load_balance_trigger_times=1) as cluster:
        with StatusReader(cluster.monitor_address) as status:
            first = cluster.add_worker()
            with Client(cluster.address, timeout_seconds=30) as client:
                # Measured at 0.2 s, the function's tasks go one running and one waiting per worker.
                assert client.submit(tasks.sleep_and_return, 0.2, -1).result(timeout=30) == -1
                futures = [client.submit(tasks.sleep_and_return, 0.2, i) for i in range(2)]
                assert wait_until(lambda: on_workers(status) == 2, 10)
                os.kill(first.pid, signal.SIGSTOP)
                try:
                    for _ in range(2):
                        cluster.add_worker()
                    assert wait_until(lambda: len(status.latest()["workers"]) == 3, timeout_seconds=20)
                    for future in reversed(futures):
                        future.cancel()
                    # sent after the cancels on the same connection, and run by an idle new worker: once it returns,
                    # the scheduler has handled every cancel while the first worker still slept
                    assert client.submit(tasks.add, 1, 1).result(timeout=10) == 2
                finally:
                    os.kill(first.pid, signal.SIGCONT)
                assert all(f.cancelled() for f in futures)
                assert_settles(status)
                assert client.map(tasks.square, [(i,) for i in range(30)]) == [i * i for i in range(30)]
            assert_settles(status, nothing_left)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("round_number", range(4))
def test_cancelling_everything_while_new_workers_take_queued_tasks_strands_nothing(round_number: int) -> None:
    with Cluster(load_balance_seconds=0.05, load_balance_trigger_times=1) as cluster:
        with StatusReader(cluster.monitor_address) as status:
            cluster.add_worker()
            with Client(cluster.address, timeout_seconds=30) as client:
                # Measured at 0.2 s, the function's tasks go one running and one waiting per worker: of these four,
                # the first worker takes two, the first joining worker two, and the second takes one back.
                assert client.submit(tasks.sleep_and_return, 0.2, -1).result(timeout=30) == -1
                futures = [client.submit(tasks.sleep_and_return, 0.2, i) for i in range(4)]
                assert wait_until(lambda: on_workers(status) == 2, 10)

                def cancel_newest_first() -> None:
                    for future in reversed(futures):
                        future.cancel()

                # Not a wait for a state: each round cancels at another moment of the joining workers' withdrawals.
                canceller = threading.Timer(0.05 * round_number, cancel_newest_first)
                canceller.start()
                for _ in range(2):
                    cluster.add_worker()
                canceller.join(timeout=10)
                done, not_done = concurrent.futures.wait(futures, timeout=30)
                assert not not_done
                assert all(f.cancelled() or f.result() == i for i, f in enumerate(futures))
                assert_settles(status)
                assert client.submit(tasks.add, 1, 1).result(timeout=10) == 2
            assert_settles(status, nothing_left)


# ---------------------------------------------------------------------------------------------- a worker's bad results


def _bad_result(case: str, task_id: int) -> list[Any]:
    wrong_value = pickle.dumps(999)
    if case == "profile_of_strings":
        return [task_id, int(TaskStatus.SUCCESS), wrong_value, ["a", "b", "c"]]
    if case == "unknown_status":
        return [task_id, 99, wrong_value, None]
    return [task_id, int(TaskStatus.SUCCESS), 7, None]  # a frame reference with no frame


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", ["profile_of_strings", "unknown_status", "bad_payload_reference"])
def test_a_malformed_result_from_a_worker_is_dropped_and_the_task_still_ends(case: str) -> None:
    with Cluster(worker_timeout_seconds=1.0) as cluster, StatusReader(cluster.monitor_address) as status:
        fake = FakeWorker(cluster.address)
        try:
            with Client(cluster.address, timeout_seconds=30) as client:
                future = client.submit(tasks.add, 2, 3)
                assert fake.wait_for_tasks(1, timeout_seconds=10) == [future.task_id]
                before = malformed_count(status)
                fake.send_results([_bad_result(case, future.task_id)])
                fake.while_waiting()
                assert wait_until(lambda: malformed_count(status) > before, timeout_seconds=10), status.latest()
                assert cluster.scheduler.is_alive()
                cluster.add_worker()
                fake.close()  # silent from now on: after the worker timeout its task runs on the real worker
                outcome = future.exception(timeout=30)  # TimeoutError if the future never settles
                if outcome is None:
                    assert future.result() == 5  # run on the real worker, not the bad result's 999
                else:
                    assert isinstance(outcome, (TaskFailedError, WorkerDiedError)), repr(outcome)
                assert client.submit(tasks.add, 1, 1).result(timeout=10) == 2  # the client's I/O thread lives
            assert_settles(status, nothing_left)
            assert cluster.scheduler.is_alive()
        finally:
            fake.close()
