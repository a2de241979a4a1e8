"""Futures as task arguments: the new task waits for them and receives their results, which go from worker
to worker through the scheduler; a failed or cancelled input fails the dependent with that cause."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import pytest

from scaler import Client, SchedulerClusterCombo
from scaler.io.address import default_monitor_address
from scaler.protocol.codec import encode
from scaler.protocol.ids import task_id_base
from scaler.protocol.messages import ArgumentKind, MessageType, TaskStatus
from scaler.serializer import DefaultSerializer
from tests.cluster_parts import StatusReader
from tests.helpers import wait_until
from tests.protocol_peer import ScriptedScheduler
from tests.scheduler_wiring import FUNCTION, Wiring

MEGABYTES = 1_000_000


def inc(x: int) -> int:
    return x + 1


def add(a: int, b: int) -> int:
    return a + b


def slow_bytes(size: int) -> bytes:
    """``size`` bytes, after long enough that a dependent submitted next reaches the scheduler first."""
    time.sleep(0.3)
    return b"x" * size


def total(items: Any) -> int:
    if isinstance(items, dict):
        items = list(items.values())
    return sum(len(item) if isinstance(item, bytes) else item for item in items)


def fail(message: str) -> int:
    raise ValueError(message)


def sleep_and_return(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def test_a_future_argument_gives_its_result_to_the_next_task(cluster: SchedulerClusterCombo) -> None:
    with Client(cluster.get_address()) as client:
        assert client.submit(add, client.submit(inc, 1), 10).result(timeout=30) == 12
        first = client.submit(inc, 1)
        second = client.submit(add, first, b=first)
        assert second.result(timeout=30) == 4 and first.result(timeout=30) == 2  # a held result is fetched
        assert client.map(add, [(client.submit(inc, i), i) for i in range(5)]) == [1, 3, 5, 7, 9]
        done = client.submit(inc, 1)
        done.result(timeout=30)
        assert client.submit(add, done, 1).result(timeout=30) == 3  # a future already done gives its value


def test_futures_inside_lists_tuples_and_dicts_are_replaced_by_their_results(cluster: SchedulerClusterCombo) -> None:
    with Client(cluster.get_address()) as client:
        futures = [client.submit(inc, i) for i in range(4)]
        assert client.submit(total, futures + [10]).result(timeout=30) == 1 + 2 + 3 + 4 + 10
        assert client.submit(total, tuple(futures)).result(timeout=30) == 10
        assert client.submit(total, {"a": futures[0], "b": 5}).result(timeout=30) == 6


def test_the_intermediate_result_never_reaches_the_client(cluster: SchedulerClusterCombo) -> None:
    monitor = default_monitor_address(cluster.get_address())
    with Client(cluster.get_address()) as client, StatusReader(monitor) as status:
        before = client.bytes_received
        assert client.submit(len, client.submit(slow_bytes, 20 * MEGABYTES)).result(timeout=30) == 20 * MEGABYTES
        assert client.bytes_received - before < MEGABYTES  # 20 MB went from worker to worker, not here
        # The future was dropped at once: its held result is released and leaves the scheduler.
        assert wait_until(lambda: status.latest()["objects"]["bytes"] == 0, timeout_seconds=10)
        kept = client.submit(slow_bytes, 2 * MEGABYTES)
        assert client.submit(len, kept).result(timeout=30) == 2 * MEGABYTES
        assert status.latest()["objects"]["bytes"] >= 2 * MEGABYTES or kept.done()
        assert len(kept.result(timeout=30)) == 2 * MEGABYTES  # fetched on demand, then released
        assert wait_until(lambda: status.latest()["objects"]["bytes"] == 0, timeout_seconds=10)


def test_a_failed_or_cancelled_input_fails_the_dependent_with_that_cause(cluster: SchedulerClusterCombo) -> None:
    with Client(cluster.get_address()) as client:
        failing = client.submit(fail, "broken input")
        with pytest.raises(ValueError, match="broken input"):
            client.submit(inc, failing).result(timeout=30)  # pending when submitted: failed by the scheduler
        with pytest.raises(ValueError, match="broken input"):
            client.submit(inc, failing).result(timeout=30)  # done when submitted: failed at once
        slow = client.submit(sleep_and_return, 30, 1)
        dependent = client.submit(inc, [slow])
        slow.cancel()
        with pytest.raises(concurrent.futures.CancelledError):
            dependent.result(timeout=30)
        cancelled_first = client.submit(sleep_and_return, 30, 1)
        cancelled_first.cancel()
        with pytest.raises(concurrent.futures.CancelledError):
            client.submit(inc, cancelled_first).result(timeout=30)


def test_a_pending_future_of_another_client_is_refused(cluster: SchedulerClusterCombo) -> None:
    with Client(cluster.get_address()) as first, Client(cluster.get_address()) as second:
        pending = first.submit(sleep_and_return, 1, 1)
        with pytest.raises(TypeError, match="another client"):
            second.submit(inc, pending)
        assert pending.result(timeout=30) == 1


def test_the_scheduler_answers_a_dependency_that_has_ended_with_dependency_gone() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    wiring.connect_worker("w")
    base = task_id_base(client.number)
    first = [base + 1, FUNCTION, 0, 2, [[ArgumentKind.INLINE, b"x"]], []]
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [first])
    wiring.deliver(b"w", MessageType.TASK_RESULTS, [[base + 1, int(TaskStatus.SUCCESS), b"r", None, 0.001]])
    second = [base + 2, FUNCTION, 0, 2, [[ArgumentKind.TASK, base + 1]], []]
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [second])
    results = [item for _, fields in wiring.take(MessageType.TASK_RESULTS) for item in fields]
    assert [(item[0], item[1]) for item in results] == [
        (base + 1, TaskStatus.SUCCESS),
        (base + 2, TaskStatus.DEPENDENCY_GONE),
    ]


def test_held_results_are_kept_until_released_and_fetched_on_demand() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    wiring.connect_worker("w")
    base = task_id_base(client.number)
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [[base + 1, FUNCTION, 0, 2, [[ArgumentKind.INLINE, b"x"]], []]])
    wiring.deliver(b"client", MessageType.RESULT_HOLD, [base + 1])
    wiring.deliver(b"w", MessageType.TASK_RESULTS, [[base + 1, int(TaskStatus.SUCCESS), b"result", None, 0.001]])
    (item,) = [item for _, fields in wiring.take(MessageType.TASK_RESULTS) for item in fields]
    assert item[:3] == [base + 1, TaskStatus.SUCCESS_HELD, None]
    wiring.deliver(b"client", MessageType.RESULT_FETCH, [base + 1, base + 9])
    fetched = [item for _, fields in wiring.take(MessageType.TASK_RESULTS) for item in fields]
    assert [(item[0], item[1], item[2]) for item in fetched][0] == (base + 1, TaskStatus.SUCCESS, b"result")
    assert fetched[1][1] == TaskStatus.FAILED  # never held
    stored = wiring.objects.describe()["bytes"]
    wiring.deliver(b"client", MessageType.RESULT_RELEASE, [base + 1])
    assert stored - wiring.objects.describe()["bytes"] == len(b"result")


def test_a_task_whose_input_ended_before_it_arrived_is_submitted_again_with_the_value() -> None:
    serializer = DefaultSerializer()
    submitted: list[list[Any]] = []

    def answer(msg_type: MessageType, fields: list[Any]) -> list[list[Any]]:
        if msg_type is not MessageType.TASK_SUBMIT:
            return []
        submitted.extend(fields)
        replies = []
        for item in fields:
            task_id, args = item[0], item[4]
            if args[0][0] == ArgumentKind.TASK:  # the race: its input ended and went to the client first
                replies.append(encode(MessageType.TASK_RESULTS, [[args[0][1], 0, serializer.serialize(2), None]]))
                gone = [task_id, int(TaskStatus.DEPENDENCY_GONE), b"gone", None]
                replies.append(encode(MessageType.TASK_RESULTS, [gone]))
            elif len(submitted) > 2:
                value = serializer.deserialize(args[0][1]) + serializer.deserialize(args[1][1])
                replies.append(encode(MessageType.TASK_RESULTS, [[task_id, 0, serializer.serialize(value), None]]))
        return replies

    scheduler = ScriptedScheduler(answer)
    try:
        with Client(scheduler.address, timeout_seconds=10) as client:
            first = client.submit(inc, 1)
            assert client.submit(add, first, 10).result(timeout=10) == 12
            assert first.result(timeout=10) == 2
        retried = submitted[-1][4]
        assert [kind for kind, _ in retried] == [ArgumentKind.INLINE, ArgumentKind.INLINE]  # the value went along
        assert any(msg_type is MessageType.RESULT_HOLD for msg_type, _ in scheduler.received)
    finally:
        scheduler.close()


@pytest.mark.timeout(60)
def test_a_long_chain_of_fast_tasks_settles_each_link_once(cluster: SchedulerClusterCombo) -> None:
    """Links often reach the scheduler after their input ended: each is sent again once, with the value."""
    with Client(cluster.get_address()) as client:
        link = client.submit(inc, 0)
        for i in range(1000):
            link = client.submit(add, link, client.submit(inc, i))
        assert link.result(timeout=50) == 1 + sum(range(1, 1001))
