"""The scheduler's managers driven directly, with no sockets: events in, messages out."""

from __future__ import annotations

from typing import Any

import pytest

from scaler.protocol.codec import encode
from scaler.protocol.ids import task_id_base
from scaler.protocol.messages import MessageType, TaskFlag, TaskStatus
from scaler.scheduler.task_states import InvalidTransition, TaskEvent, TaskState, next_state
from tests.scheduler_wiring import FUNCTION, Wiring


def assigned_ids(fields: list[Any]) -> list[int]:
    return [task[0] for task in fields[1]]


def test_tasks_wait_for_free_slots_and_flow_to_the_worker_as_slots_free() -> None:
    wiring = Wiring(queue_size=2)
    client = wiring.connect_client()
    wiring.connect_worker("w1")
    ids = wiring.submit(client, 3)
    first = wiring.take(MessageType.TASK_ASSIGN)
    assert len(first) == 1 and assigned_ids(first[0][1]) == ids[:2]
    assert first[0][1][0] == [[FUNCTION, b"function payload"]]  # the function travels with its first task
    worker = wiring.workers.get(b"w1")
    wiring.tasks.on_worker_results(worker, [[ids[0], int(TaskStatus.SUCCESS), b"r", None]], [])
    wiring.step()
    second = wiring.take(MessageType.TASK_ASSIGN)
    assert assigned_ids(second[0][1]) == [ids[2]]
    assert second[0][1][0] == []  # the worker already holds the function
    results = wiring.take(MessageType.TASK_RESULTS)
    assert results == [(b"client", [[ids[0], TaskStatus.SUCCESS, b"r", None]])]
    assert ids[0] not in wiring.tasks


def test_a_result_from_a_worker_the_task_is_not_assigned_to_is_ignored() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    wiring.connect_worker("w1")
    wiring.connect_worker("w2")
    ids = wiring.submit(client, 2)
    assignments = dict(wiring.take(MessageType.TASK_ASSIGN))
    on_w1 = assigned_ids(assignments[b"w1"])[0]
    wiring.tasks.on_worker_results(wiring.workers.get(b"w2"), [[on_w1, int(TaskStatus.SUCCESS), b"r", None]], [])
    wiring.step()
    assert wiring.take(MessageType.TASK_RESULTS) == []
    assert on_w1 in wiring.tasks and len(ids) == 2


def test_tasks_of_a_dead_worker_are_requeued_then_fail_after_the_allowed_failures() -> None:
    wiring = Wiring(allowed_failures=1)
    client = wiring.connect_client()
    (task_id,) = wiring.submit(client, 1)
    for attempt in range(2):
        name = f"w{attempt}".encode()
        wiring.connect_worker(name.decode())
        wiring.step()
        assert assigned_ids(wiring.take(MessageType.TASK_ASSIGN)[0][1]) == [task_id]
        wiring.tasks.on_tasks_started(wiring.workers.get(name), [task_id])
        wiring.workers.remove(name, reason="killed")
        wiring.step()
    results = wiring.take(MessageType.TASK_RESULTS)
    assert results[0][1][0][:2] == [task_id, TaskStatus.WORKER_DIED]
    assert b"lost its worker 2 times" in results[0][1][0][2]


def test_only_tasks_a_dead_worker_had_started_count_a_failure_and_come_back_as_suspects() -> None:
    wiring = Wiring(allowed_failures=0)
    client = wiring.connect_client()
    ids = wiring.submit(client, 3)
    wiring.connect_worker("w1")
    wiring.step()
    assert assigned_ids(wiring.take(MessageType.TASK_ASSIGN)[0][1]) == ids
    wiring.tasks.on_tasks_started(wiring.workers.get(b"w1"), [ids[0], "not an id", [1]])
    wiring.workers.remove(b"w1", reason="killed")
    wiring.step()
    results = wiring.take(MessageType.TASK_RESULTS)
    assert [item[:2] for item in results[0][1]] == [[ids[0], TaskStatus.WORKER_DIED]]
    wiring.connect_worker("w2")
    wiring.step()
    (reassigned,) = wiring.take(MessageType.TASK_ASSIGN)
    assert assigned_ids(reassigned[1]) == ids[1:]
    assert all(not task[3] & TaskFlag.SUSPECT for task in reassigned[1][1])


def test_a_worker_that_dies_before_starting_anything_blames_no_task() -> None:
    wiring = Wiring(allowed_failures=0)
    client = wiring.connect_client()
    ids = wiring.submit(client, 3)
    wiring.connect_worker("w1")
    wiring.step()
    wiring.take(MessageType.TASK_ASSIGN)
    wiring.workers.remove(b"w1", reason="killed")
    wiring.connect_worker("w2")
    wiring.step()
    assert wiring.take(MessageType.TASK_RESULTS) == []
    (reassigned,) = wiring.take(MessageType.TASK_ASSIGN)
    assert assigned_ids(reassigned[1]) == ids


def test_a_started_task_of_a_dead_worker_is_flagged_as_a_suspect() -> None:
    wiring = Wiring(allowed_failures=3)
    client = wiring.connect_client()
    ids = wiring.submit(client, 2)
    wiring.connect_worker("w1")
    wiring.step()
    wiring.take(MessageType.TASK_ASSIGN)
    wiring.tasks.on_tasks_started(wiring.workers.get(b"w1"), [ids[1]])
    wiring.workers.remove(b"w1", reason="killed")
    wiring.connect_worker("w2")
    wiring.step()
    (reassigned,) = wiring.take(MessageType.TASK_ASSIGN)
    flags = {task[0]: task[3] for task in reassigned[1][1]}
    assert flags[ids[1]] & TaskFlag.SUSPECT and not flags[ids[0]] & TaskFlag.SUSPECT


def test_each_withdrawal_answer_settles_only_the_tasks_it_names() -> None:
    wiring = Wiring(function_seconds=0.003)  # 4 tasks fill w1's horizon: 12 ms of work, none started
    client = wiring.connect_client()
    wiring.connect_worker("w1")
    ids = wiring.submit(client, 4)
    assert assigned_ids(wiring.take(MessageType.TASK_ASSIGN)[0][1]) == ids
    wiring.connect_worker("w2")  # idle on arrival: takes back w1's newest waiting tasks, half its work
    (first,) = [fields for identity, fields in wiring.take(MessageType.TASK_WITHDRAW) if identity == b"w1"]
    assert first == [ids[3], ids[2]]
    wiring.connect_worker("w3")  # a second withdrawal while the first is unanswered: half of what is left
    (second,) = [fields for identity, fields in wiring.take(MessageType.TASK_WITHDRAW) if identity == b"w1"]
    assert second == [ids[1]]
    wiring.deliver(b"w1", MessageType.TASKS_RETURNED, [first, []])
    wiring.deliver(b"w1", MessageType.TASKS_RETURNED, [second, []])
    moved = [task_id for identity, fields in wiring.take(MessageType.TASK_ASSIGN) for task_id in assigned_ids(fields)]
    assert sorted(moved) == sorted(first + second)  # every returned task assigned again, once
    assert all(len(wiring.workers.assigned_to(name)) <= 2 for name in (b"w1", b"w2", b"w3"))
    holders = [task_id for name in (b"w1", b"w2", b"w3") for task_id in wiring.workers.assigned_to(name)]
    assert sorted(holders) == sorted(ids)


def test_assignments_level_the_queues_of_the_workers() -> None:
    wiring = Wiring(queue_size=10)
    client = wiring.connect_client()
    wiring.connect_worker("a")
    wiring.connect_worker("b")
    wiring.submit(client, 40)
    counts = {identity: len(fields[1]) for identity, fields in wiring.take(MessageType.TASK_ASSIGN)}
    assert counts == {b"a": 10, b"b": 10}
    assert wiring.tasks.describe()["queued"] == 20


def test_a_graph_runs_a_task_only_when_its_dependencies_are_done_and_frees_their_results() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    wiring.connect_worker("w")
    ids = wiring.submit(client, 3, dependencies={3: [1, 2]})
    assert assigned_ids(wiring.take(MessageType.TASK_ASSIGN)[0][1]) == ids[:2]
    worker = wiring.workers.get(b"w")
    wiring.tasks.on_worker_results(worker, [[ids[0], 0, b"one", None], [ids[1], 0, b"two", None]], [])
    wiring.step()
    objects, tasks = wiring.take(MessageType.TASK_ASSIGN)[0][1]
    assert [t[0] for t in tasks] == [ids[2]]
    assert sorted(payload for _, payload in objects) == [b"one", b"two"]
    wiring.tasks.on_worker_results(worker, [[ids[2], 0, b"three", None]], [])
    wiring.step()
    assert len(wiring.objects) == 1  # only the function is left


def test_a_client_that_leaves_has_its_tasks_and_objects_removed() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    wiring.submit(client, 5)
    assert wiring.tasks.tasks_of_client(client.number) == 5
    wiring.clients.remove(b"client", reason="test")
    assert wiring.tasks.tasks_of_client(client.number) == 0 and len(wiring.tasks) == 0
    assert len(wiring.objects) == 0


def test_the_transition_table_refuses_moves_it_does_not_list() -> None:
    assert next_state(TaskState.QUEUED, TaskEvent.ASSIGN) is TaskState.ASSIGNED
    with pytest.raises(InvalidTransition):
        next_state(TaskState.CANCELLING, TaskEvent.READY)
    with pytest.raises(InvalidTransition):
        next_state(TaskState.ENDED, TaskEvent.CANCEL)


def test_a_task_id_of_another_client_is_malformed() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    foreign = task_id_base(client.number + 1) + 1
    with pytest.raises(ValueError, match="does not belong"):
        wiring.tasks.on_submit(client, [[foreign, FUNCTION, 0, 2, [], []]], [])
    assert encode(MessageType.CLIENT_HEARTBEAT)  # the codec still works after the refusal
