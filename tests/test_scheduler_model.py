"""Random interleavings of everything clients and workers can do, against the scheduler's core.

A hypothesis state machine plays clients (submit with objects and dependencies, object put/delete,
results held, fetched and released, cancel, clear, disconnect, time-out) and workers (connect,
heartbeat, start, answer with any status, stale answers, death, withdrawals and cancels answered late
and in order). After every step the scheduler's books hold; once the workers have answered
everything, every task has ended and each connected client got exactly one answer for each task it
asked an answer for.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from scaler.protocol.ids import task_id_base
from scaler.protocol.messages import ArgumentKind, MessageType, TaskFlag, TaskStatus
from scaler.version import __version__
from tests.conftest import SOAK
from tests.scheduler_wiring import FUNCTION, Wiring

OBJECT_IDS = [b"O" + bytes([i]) * 15 for i in range(4)]  # some sent, some deleted, some never sent
UNKNOWN_FUNCTION = b"F" + b"?" * 15
ENDINGS = [TaskStatus.SUCCESS, TaskStatus.RAISED, TaskStatus.PROCESSOR_DIED, TaskStatus.TIMED_OUT]


@dataclasses.dataclass
class ModelClient:
    identity: bytes
    number: int
    connected: bool = True
    next_id: int = 1
    submitted: list[int] = dataclasses.field(default_factory=list)
    wants_answer: set[int] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class ModelWorker:
    """A worker as the scheduler sees it: messages reach it late and in order, and it answers them."""

    identity: bytes
    inbox: list[tuple[MessageType, list[Any]]] = dataclasses.field(default_factory=list)
    held: dict[int, bool] = dataclasses.field(default_factory=dict)  # task id -> started


class SchedulerModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.wiring = Wiring(allowed_failures=1, queue_size=3, function_seconds=None)
        self.clients: dict[bytes, ModelClient] = {}
        self.workers: dict[bytes, ModelWorker] = {}
        self.answers: collections.Counter[tuple[bytes, int]] = collections.Counter()
        self.serial = 0

    # ------------------------------------------------------------------ plumbing

    def deliver(self, identity: bytes, msg_type: MessageType, fields: list[Any]) -> None:
        self.wiring.deliver(identity, msg_type, fields)
        self.route()

    def route(self) -> None:
        """Hand what the scheduler sent to the model's clients and workers."""
        for identity, msg_type, fields in self.wiring.sent:
            if identity in self.workers and msg_type in (
                MessageType.TASK_ASSIGN,
                MessageType.TASK_CANCEL,
                MessageType.TASK_WITHDRAW,
            ):
                self.workers[identity].inbox.append((msg_type, fields))
            elif msg_type is MessageType.TASK_RESULTS and identity in self.clients:
                for item in fields:
                    self.answers[(identity, item[0])] += 1
        self.wiring.sent.clear()

    def new_identity(self, prefix: str) -> bytes:
        self.serial += 1
        return f"{prefix}{self.serial}".encode()

    def connected_clients(self) -> list[ModelClient]:
        return [c for c in self.clients.values() if c.connected]

    # ------------------------------------------------------------------ clients

    @initialize(known_seconds=st.sampled_from([None, 0.0, 0.004, 0.05]))
    def start(self, known_seconds: float | None) -> None:
        if known_seconds is not None:  # how long the function is known to take: deep queues, one waiting, steals
            self.wiring.tasks.durations.observe(FUNCTION, known_seconds)
        self.connect_client()
        self.connect_worker()

    @precondition(lambda self: len(self.connected_clients()) < 3)
    @rule()
    def connect_client(self) -> None:
        identity = self.new_identity("client")
        self.wiring.core.on_message(identity, MessageType.CLIENT_CONNECT, ["model", None, 1, "host", __version__], [])
        (accept,) = [fields for to, kind, fields in self.wiring.sent if kind is MessageType.CLIENT_ACCEPT]
        self.wiring.sent.clear()
        self.clients[identity] = ModelClient(identity, accept[0])
        self.deliver(identity, MessageType.OBJECT_PUT, [[FUNCTION, b"function payload"]])

    @precondition(lambda self: self.connected_clients())
    @rule(data=st.data(), index=st.integers(0, len(OBJECT_IDS) - 2))
    def put_object(self, data: st.DataObject, index: int) -> None:
        client = data.draw(st.sampled_from(self.connected_clients()))
        self.deliver(client.identity, MessageType.OBJECT_PUT, [[OBJECT_IDS[index], b"value"]])

    @precondition(lambda self: self.connected_clients())
    @rule(data=st.data(), index=st.integers(0, len(OBJECT_IDS) - 1))
    def delete_object(self, data: st.DataObject, index: int) -> None:
        client = data.draw(st.sampled_from(self.connected_clients()))
        self.deliver(client.identity, MessageType.OBJECT_DELETE, [OBJECT_IDS[index]])

    @precondition(lambda self: self.connected_clients())
    @rule(data=st.data(), count=st.integers(1, 5))
    def submit(self, data: st.DataObject, count: int) -> None:
        client = data.draw(st.sampled_from(self.connected_clients()))
        base = task_id_base(client.number)
        items = []
        for _ in range(count):
            task_id = base + client.next_id
            client.next_id += 1
            args: list[list[Any]] = [[ArgumentKind.INLINE, b"x"]]
            if data.draw(st.booleans()):
                args.append([ArgumentKind.OBJECT, data.draw(st.sampled_from(OBJECT_IDS))])
            earlier = client.submitted[-6:] + [base + client.next_id + 50]  # the last one is unknown
            for dependency in data.draw(st.lists(st.sampled_from(earlier), max_size=2, unique=True)):
                args.append([ArgumentKind.TASK, dependency])
            function = UNKNOWN_FUNCTION if data.draw(st.integers(0, 19)) == 0 else FUNCTION
            answer = data.draw(st.integers(0, 4)) > 0
            flags = int(TaskFlag.RESULT_TO_CLIENT) if answer else 0
            items.append([task_id, function, data.draw(st.integers(0, 1)), flags, args, []])
            client.submitted.append(task_id)
            if answer:
                client.wants_answer.add(task_id)
        self.deliver(client.identity, MessageType.TASK_SUBMIT, items)

    @precondition(lambda self: any(c.submitted for c in self.connected_clients()))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        client = data.draw(st.sampled_from([c for c in self.connected_clients() if c.submitted]))
        chosen = data.draw(st.lists(st.sampled_from(client.submitted), min_size=1, max_size=4, unique=True))
        self.deliver(client.identity, MessageType.TASK_CANCEL, chosen)

    @precondition(lambda self: any(c.submitted for c in self.connected_clients()))
    @rule(data=st.data(), kind=st.sampled_from([MessageType.RESULT_HOLD, MessageType.RESULT_RELEASE]))
    def hold_or_release(self, data: st.DataObject, kind: MessageType) -> None:
        """The client holds results of tasks it passes on as arguments, and releases them (any, even unheld)."""
        client = data.draw(st.sampled_from([c for c in self.connected_clients() if c.submitted]))
        chosen = data.draw(st.lists(st.sampled_from(client.submitted), min_size=1, max_size=3, unique=True))
        self.deliver(client.identity, kind, chosen)

    @precondition(lambda self: any(c.submitted for c in self.connected_clients()))
    @rule(data=st.data())
    def fetch(self, data: st.DataObject) -> None:
        """A fetch is answered with the held result, or a failure: never mistaken for a task's answer."""
        client = data.draw(st.sampled_from([c for c in self.connected_clients() if c.submitted]))
        task_id = data.draw(st.sampled_from(client.submitted))
        self.route()
        self.wiring.deliver(client.identity, MessageType.RESULT_FETCH, [task_id])
        replies = [
            item
            for identity, kind, fields in self.wiring.sent
            if identity == client.identity and kind is MessageType.TASK_RESULTS
            for item in fields
        ]
        assert [item[0] for item in replies] == [task_id]
        assert replies[0][1] in (TaskStatus.SUCCESS, TaskStatus.FAILED)
        self.wiring.sent = [
            entry
            for entry in self.wiring.sent
            if not (entry[0] == client.identity and entry[1] is MessageType.TASK_RESULTS)
        ]
        self.route()

    @precondition(lambda self: self.connected_clients())
    @rule(data=st.data())
    def clear(self, data: st.DataObject) -> None:
        client = data.draw(st.sampled_from(self.connected_clients()))
        self.deliver(client.identity, MessageType.CLIENT_CLEAR, [])
        self.deliver(client.identity, MessageType.OBJECT_PUT, [[FUNCTION, b"function payload"]])  # as the client does

    @precondition(lambda self: self.connected_clients())
    @rule(data=st.data(), timed_out=st.booleans())
    def leave(self, data: st.DataObject, timed_out: bool) -> None:
        client = data.draw(st.sampled_from(self.connected_clients()))
        client.connected = False
        if timed_out:
            self.wiring.clients.remove(client.identity, reason="silent")
            self.wiring.step()
            self.route()
        else:
            self.deliver(client.identity, MessageType.CLIENT_DISCONNECT, [])

    # ------------------------------------------------------------------ workers

    @precondition(lambda self: len(self.workers) < 3)
    @rule()
    def connect_worker(self) -> None:
        identity = self.new_identity("worker")
        self.workers[identity] = ModelWorker(identity)
        self.deliver(identity, MessageType.WORKER_CONNECT, [identity.decode(), 1, "host", 0, __version__])

    @precondition(lambda self: self.workers)
    @rule(data=st.data(), timed_out=st.booleans())
    def worker_dies(self, data: st.DataObject, timed_out: bool) -> None:
        worker = data.draw(st.sampled_from(sorted(self.workers.values(), key=lambda w: w.identity)))
        del self.workers[worker.identity]
        self.wiring.workers.remove(worker.identity, reason="silent" if timed_out else "killed")
        self.wiring.step()
        self.route()

    @precondition(lambda self: self.workers)
    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        worker = data.draw(st.sampled_from(sorted(self.workers.values(), key=lambda w: w.identity)))
        self.deliver(worker.identity, MessageType.WORKER_HEARTBEAT, [0.0, 0, len(worker.held), 1])

    @precondition(lambda self: any(w.inbox for w in self.workers.values()))
    @rule(data=st.data())
    def worker_reads(self, data: st.DataObject) -> None:
        worker = data.draw(
            st.sampled_from(sorted((w for w in self.workers.values() if w.inbox), key=lambda w: w.identity))
        )
        self.read_inbox(worker)

    def read_inbox(self, worker: ModelWorker) -> None:
        """Answer every message in order, as the agent does."""
        inbox, worker.inbox = worker.inbox, []
        for msg_type, fields in inbox:
            if worker.identity not in self.workers:
                return
            if msg_type is MessageType.TASK_ASSIGN:
                for task in fields[1]:
                    worker.held[task[0]] = False
            elif msg_type is MessageType.TASK_CANCEL:
                for task_id in fields:
                    worker.held.pop(task_id, None)
                answers = [[task_id, int(TaskStatus.CANCELLED), None, None] for task_id in fields]
                self.deliver(worker.identity, MessageType.TASK_RESULTS, answers)
            elif msg_type is MessageType.TASK_WITHDRAW:
                returned = [t for t in fields if worker.held.get(t) is False]
                for task_id in returned:
                    del worker.held[task_id]
                kept = [t for t in fields if t not in returned]
                self.deliver(worker.identity, MessageType.TASKS_RETURNED, [returned, kept])

    @precondition(lambda self: any(w.held for w in self.workers.values()))
    @rule(data=st.data())
    def worker_starts(self, data: st.DataObject) -> None:
        worker = data.draw(
            st.sampled_from(sorted((w for w in self.workers.values() if w.held), key=lambda w: w.identity))
        )
        chosen = data.draw(st.lists(st.sampled_from(sorted(worker.held)), min_size=1, max_size=3, unique=True))
        for task_id in chosen:
            worker.held[task_id] = True
        self.deliver(worker.identity, MessageType.TASKS_STARTED, chosen)

    @precondition(lambda self: any(w.held for w in self.workers.values()))
    @rule(
        data=st.data(),
        status=st.sampled_from(ENDINGS),
        run_seconds=st.sampled_from([None, 0.0, 0.004, 0.05, 1.0]),  # moves the estimate: deep, shallow, one
    )
    def worker_answers(self, data: st.DataObject, status: TaskStatus, run_seconds: float | None) -> None:
        worker = data.draw(
            st.sampled_from(sorted((w for w in self.workers.values() if w.held), key=lambda w: w.identity))
        )
        chosen = data.draw(st.lists(st.sampled_from(sorted(worker.held)), min_size=1, max_size=3, unique=True))
        for task_id in chosen:
            del worker.held[task_id]
        items: list[list[Any]] = [[task_id, int(status), b"result", [0.001, 0.001, 100]] for task_id in chosen]
        if run_seconds is not None:
            items = [[*item, run_seconds] for item in items]
        self.deliver(worker.identity, MessageType.TASK_RESULTS, items)

    @precondition(lambda self: self.workers and any(c.submitted for c in self.clients.values()))
    @rule(data=st.data())
    def stale_answer(self, data: st.DataObject) -> None:
        worker = data.draw(st.sampled_from(sorted(self.workers.values(), key=lambda w: w.identity)))
        client = data.draw(st.sampled_from([c for c in self.clients.values() if c.submitted]))
        task_id = data.draw(st.sampled_from(client.submitted))
        if task_id not in worker.held:
            self.deliver(worker.identity, MessageType.TASK_RESULTS, [[task_id, int(TaskStatus.SUCCESS), b"r", None]])

    @rule()
    def balance(self) -> None:
        self.wiring.tasks.balance(trigger_times=0)
        self.wiring.step()
        self.route()

    # ------------------------------------------------------------------ checks

    @invariant()
    def books_hold_and_nobody_is_answered_twice(self) -> None:
        self.wiring.check()
        assert all(count == 1 for count in self.answers.values()), self.answers.most_common(3)

    def teardown(self) -> None:
        """The workers answer everything; then every task has ended exactly once."""
        if not self.workers:
            self.connect_worker()
        for _ in range(200):
            if len(self.wiring.tasks) == 0 and not any(w.inbox or w.held for w in self.workers.values()):
                break
            for worker in list(self.workers.values()):
                self.read_inbox(worker)
                if worker.held:
                    items = [[t, int(TaskStatus.SUCCESS), b"result", None] for t in worker.held]
                    worker.held.clear()
                    self.deliver(worker.identity, MessageType.TASK_RESULTS, items)
        assert len(self.wiring.tasks) == 0, self.wiring.tasks.describe()
        self.wiring.check()
        for client in self.clients.values():
            for task_id in client.submitted:
                expected = 1 if client.connected and task_id in client.wants_answer else None
                got = self.answers[(client.identity, task_id)]
                if expected is not None:
                    assert got == expected, f"task {task_id:#x} of a connected client got {got} answers"
                else:
                    assert got <= 1
                    if task_id not in client.wants_answer:
                        assert got == 0


SchedulerModel.TestCase.settings = settings(
    max_examples=5_000 if SOAK else 500,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_scheduler_model = SchedulerModel.TestCase
