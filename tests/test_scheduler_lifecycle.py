"""Every way a task can end before or after it reaches a worker, driven through the scheduler's core.

Each of these once stranded tasks or wedged the whole cluster. After every step the scheduler's
books are checked (tests/scheduler_wiring.py), and each test ends by running a fresh task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scaler.protocol.ids import task_id_base
from scaler.protocol.messages import ArgumentKind, MessageType, TaskFlag, TaskStatus
from scaler.scheduler.invariants import BREACHES_FILE_VARIABLE
from tests.scheduler_wiring import FUNCTION, Wiring

OBJECT = b"O" * 16
TO_CLIENT = int(TaskFlag.RESULT_TO_CLIENT)


def task(task_id: int, *args: list[Any], function: bytes = FUNCTION) -> list[Any]:
    return [task_id, function, 0, TO_CLIENT, list(args) or [[ArgumentKind.INLINE, b"x"]], []]


def results_for(wiring: Wiring, identity: bytes = b"client") -> dict[int, int]:
    """Task id -> status of every result sent to ``identity`` since the last call (each id at most once)."""
    statuses: dict[int, int] = {}
    for to, fields in wiring.take(MessageType.TASK_RESULTS):
        if to == identity:
            for item in fields:
                assert item[0] not in statuses, f"task {item[0]:#x} answered twice"
                statuses[item[0]] = item[1]
    return statuses


def answer_assignments(wiring: Wiring, status: int = TaskStatus.SUCCESS) -> list[int]:
    """Every worker answers every task it was assigned; returns the task ids."""
    answered = []
    for identity, fields in wiring.take(MessageType.TASK_ASSIGN):
        items = [[t[0], int(status), b"result", None] for t in fields[1]]
        answered.extend(t[0] for t in fields[1])
        wiring.deliver(identity, MessageType.TASK_RESULTS, items)
    return answered


def a_fresh_task_runs(wiring: Wiring, client: Any, task_id: int) -> None:
    wiring.deliver(client.identity, MessageType.TASK_SUBMIT, [task(task_id)])
    assert task_id in answer_assignments(wiring)
    assert results_for(wiring, client.identity)[task_id] == TaskStatus.SUCCESS
    assert len(wiring.tasks) == 0


def test_a_task_whose_object_was_deleted_fails_and_the_cluster_goes_on() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    wiring.connect_worker("w")
    wiring.deliver(b"client", MessageType.OBJECT_PUT, [[OBJECT, b"0.25"]])
    base = task_id_base(client.number)
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [task(base + 1, [ArgumentKind.OBJECT, OBJECT])])
    answer_assignments(wiring)
    wiring.deliver(b"client", MessageType.CLIENT_CLEAR, [])
    wiring.deliver(b"client", MessageType.OBJECT_PUT, [[FUNCTION, b"function payload"]])
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [task(base + 2, [ArgumentKind.OBJECT, OBJECT])])
    assert results_for(wiring) == {base + 1: TaskStatus.SUCCESS, base + 2: TaskStatus.OBJECT_MISSING}
    a_fresh_task_runs(wiring, client, base + 3)


def test_an_object_deleted_while_its_task_waits_in_the_queue_fails_that_task_only() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    base = task_id_base(client.number)
    wiring.deliver(b"client", MessageType.OBJECT_PUT, [[OBJECT, b"value"]])
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [task(base + 1, [ArgumentKind.OBJECT, OBJECT]), task(base + 2)])
    wiring.deliver(b"client", MessageType.OBJECT_DELETE, [OBJECT])
    wiring.connect_worker("w")
    wiring.step()
    assert answer_assignments(wiring) == [base + 2]
    assert results_for(wiring) == {base + 1: TaskStatus.OBJECT_MISSING, base + 2: TaskStatus.SUCCESS}
    assert wiring.tasks.describe()["queued"] == 0
    a_fresh_task_runs(wiring, client, base + 3)


def test_a_reference_of_a_client_that_left_fails_at_submit() -> None:
    wiring = Wiring()
    owner = wiring.connect_client(b"owner")
    user = wiring.connect_client(b"user")
    wiring.connect_worker("w")
    wiring.deliver(b"owner", MessageType.OBJECT_PUT, [[OBJECT, b"value"]])
    wiring.deliver(b"owner", MessageType.CLIENT_DISCONNECT, [])
    assert owner.number not in wiring.clients.numbers()
    base = task_id_base(user.number)
    wiring.deliver(b"user", MessageType.TASK_SUBMIT, [task(base + 1, [ArgumentKind.OBJECT, OBJECT])])
    assert results_for(wiring, b"user") == {base + 1: TaskStatus.OBJECT_MISSING}
    a_fresh_task_runs(wiring, user, base + 2)


def test_a_task_naming_a_function_never_sent_fails_with_the_function_named() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    wiring.connect_worker("w")
    base = task_id_base(client.number)
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [task(base + 1, function=b"F" + b"?" * 15)])
    (answer,) = wiring.take(MessageType.TASK_RESULTS)
    assert answer[1][0][1] == TaskStatus.OBJECT_MISSING and b"needs function" in answer[1][0][2]
    a_fresh_task_runs(wiring, client, base + 2)


def test_a_task_with_an_unknown_dependency_fails() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    wiring.connect_worker("w")
    base = task_id_base(client.number)
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [task(base + 2, [ArgumentKind.TASK, base + 1])])
    assert results_for(wiring) == {base + 2: TaskStatus.DEPENDENCY_GONE}
    a_fresh_task_runs(wiring, client, base + 3)


def test_dependents_of_a_failed_or_cancelled_task_end_the_same_way() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    wiring.connect_worker("w")
    base = task_id_base(client.number)
    graph = [
        task(base + 1),
        task(base + 2, [ArgumentKind.TASK, base + 1]),
        task(base + 3),
        task(base + 4, [ArgumentKind.TASK, base + 3], [ArgumentKind.TASK, base + 2]),
    ]
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, graph)
    assigned = {t[0] for _, fields in wiring.take(MessageType.TASK_ASSIGN) for t in fields[1]}
    assert assigned == {base + 1, base + 3}
    wiring.deliver(b"w", MessageType.TASK_RESULTS, [[base + 1, int(TaskStatus.RAISED), b"exception", None]])
    wiring.deliver(b"client", MessageType.TASK_CANCEL, [base + 3])
    wiring.deliver(b"w", MessageType.TASK_RESULTS, [[base + 3, int(TaskStatus.CANCELLED), None, None]])
    assert results_for(wiring) == {
        base + 1: TaskStatus.RAISED,
        base + 2: TaskStatus.RAISED,
        base + 3: TaskStatus.CANCELLED,
        base + 4: TaskStatus.RAISED,
    }
    assert len(wiring.objects) == 1  # the function only: no kept result is left behind
    a_fresh_task_runs(wiring, client, base + 5)


def test_a_client_gone_while_its_tasks_are_assigned_leaves_nothing_behind() -> None:
    wiring = Wiring(queue_size=3)
    client = wiring.connect_client()
    other = wiring.connect_client(b"other")
    wiring.connect_worker("w")
    base = task_id_base(client.number)
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [task(base + i) for i in range(1, 8)])
    (assignment,) = wiring.take(MessageType.TASK_ASSIGN)
    wiring.deliver(b"w", MessageType.TASKS_STARTED, [assignment[1][1][0][0]])
    wiring.deliver(b"client", MessageType.CLIENT_DISCONNECT, [])
    cancels = [task_id for _, fields in wiring.take(MessageType.TASK_CANCEL) for task_id in fields]
    assert sorted(cancels) == [t[0] for t in assignment[1][1]]
    (line,) = wiring.core.describe_clients()
    assert (line["number"], line["tasks"], line["objects"]) == (other.number, 0, 1)
    wiring.deliver(b"w", MessageType.TASK_RESULTS, [[t, int(TaskStatus.CANCELLED), None, None] for t in cancels])
    assert len(wiring.tasks) == 0
    a_fresh_task_runs(wiring, other, task_id_base(other.number) + 1)


def test_a_custom_serializer_survives_clear() -> None:
    wiring = Wiring()
    serializer = b"S" * 16
    client = wiring.connect_client(serializer_id=serializer)
    wiring.connect_worker("w")
    base = task_id_base(client.number)
    wiring.deliver(b"client", MessageType.CLIENT_CLEAR, [])
    wiring.deliver(b"client", MessageType.OBJECT_PUT, [[FUNCTION, b"function payload"]])
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [task(base + 1)])
    (assignment,) = wiring.take(MessageType.TASK_ASSIGN)
    assert sorted(object_id for object_id, _ in assignment[1][0]) == sorted([FUNCTION, serializer])
    wiring.deliver(b"w", MessageType.TASK_RESULTS, [[base + 1, int(TaskStatus.SUCCESS), b"r", None]])
    assert results_for(wiring) == {base + 1: TaskStatus.SUCCESS}


def test_a_task_cancelled_while_it_is_withdrawn_ends_whichever_answer_comes_first() -> None:
    wiring = Wiring(function_seconds=0.002)  # six tasks fill the horizon of one worker
    client = wiring.connect_client()
    wiring.connect_worker("busy")
    base = task_id_base(client.number)
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [task(base + i) for i in range(1, 7)])
    wiring.take(MessageType.TASK_ASSIGN)
    wiring.deliver(b"busy", MessageType.TASKS_STARTED, [base + 1])
    wiring.connect_worker("idle")  # takes back the busy worker's newest waiting tasks
    (withdrawn,) = [fields for identity, fields in wiring.take(MessageType.TASK_WITHDRAW) if identity == b"busy"]
    wiring.deliver(b"client", MessageType.TASK_CANCEL, [base + i for i in range(1, 7)])
    cancelled = {t for _, fields in wiring.take(MessageType.TASK_CANCEL) for t in fields}
    assert cancelled == {base + i for i in range(1, 7)}
    # The worker had returned the withdrawn tasks before the cancels reached it; it answers the rest.
    wiring.deliver(b"busy", MessageType.TASKS_RETURNED, [withdrawn, []])
    still_held = [t for t in cancelled if t not in withdrawn]
    wiring.deliver(b"busy", MessageType.TASK_RESULTS, [[t, int(TaskStatus.CANCELLED), None, None] for t in cancelled])
    assert results_for(wiring) == {t: TaskStatus.CANCELLED for t in cancelled}
    assert len(wiring.tasks) == 0 and wiring.workers.total_assigned() == 0 and still_held
    assert wiring.take(MessageType.TASK_ASSIGN) == []
    a_fresh_task_runs(wiring, client, base + 7)


def test_a_malformed_result_from_a_worker_changes_nothing() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    wiring.connect_worker("w")
    base = task_id_base(client.number)
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [task(base + 1)])
    wiring.take(MessageType.TASK_ASSIGN)
    bad_results = [
        [[base + 1, int(TaskStatus.SUCCESS), b"r", ["a", "b", "c"]]],
        [[base + 1, 99, b"r", None]],
        [[base + 1, int(TaskStatus.SUCCESS), 3, None]],
        [[base + 1, int(TaskStatus.SUCCESS), None, None]],
        [["id", int(TaskStatus.SUCCESS), b"r", None]],
        [[-1, int(TaskStatus.SUCCESS), b"r", None]],
        [[base + 1, int(TaskStatus.SUCCESS), b"r"]],
    ]
    for fields in bad_results:
        try:
            wiring.deliver(b"w", MessageType.TASK_RESULTS, fields)
        except ValueError:
            wiring.step()
        else:
            raise AssertionError(f"accepted {fields}")
    assert base + 1 in wiring.tasks and results_for(wiring) == {}
    wiring.deliver(b"w", MessageType.TASK_RESULTS, [[base + 1, int(TaskStatus.SUCCESS), b"r", [0.1, 0.1, 10]]])
    assert results_for(wiring) == {base + 1: TaskStatus.SUCCESS}


def test_clients_cannot_store_or_delete_kept_task_results() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    wiring.connect_worker("w")
    base = task_id_base(client.number)
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [task(base + 1), task(base + 2, [ArgumentKind.TASK, base + 1])])
    wiring.deliver(b"w", MessageType.TASK_RESULTS, [[base + 1, int(TaskStatus.SUCCESS), b"one", None]])
    kept = b"R" + (base + 1).to_bytes(8, "big")
    wiring.deliver(b"client", MessageType.OBJECT_DELETE, [kept])
    assert kept in wiring.objects
    try:
        wiring.deliver(b"client", MessageType.OBJECT_PUT, [[b"R" + (base + 9).to_bytes(8, "big"), b"forged"]])
    except ValueError:
        wiring.step()
    answer_assignments(wiring)
    answer_assignments(wiring)
    assert results_for(wiring) == {base + 1: TaskStatus.SUCCESS, base + 2: TaskStatus.SUCCESS}
    assert len(wiring.objects) == 1


def test_a_corrupted_state_is_reported_as_a_breach(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    breaches_file = tmp_path / "breaches.txt"
    monkeypatch.setenv(BREACHES_FILE_VARIABLE, str(breaches_file))
    wiring = Wiring()
    client = wiring.connect_client()
    wiring.connect_worker("w")
    base = task_id_base(client.number)
    wiring.deliver(b"client", MessageType.TASK_SUBMIT, [task(base + 1), task(base + 2)])
    assert wiring.core.check_invariants() == []
    wiring.workers.release(b"w", base + 1)  # a worker's books lose a task the task's record says it holds
    breaches = wiring.core.check_invariants()
    assert any("no connected worker holds it" in breach for breach in breaches), breaches
    assert wiring.core.counters["invariant_breaches"] == len(breaches)
    assert any("invariant breached" in record.message and record.levelname == "ERROR" for record in caplog.records)
    assert "no connected worker holds it" in breaches_file.read_text()
