"""The scheduler's managers wired as the scheduler wires them, with no sockets: events in, messages out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scaler.protocol.codec import decode
from scaler.protocol.ids import content_object_id, task_id_base
from scaler.protocol.messages import ArgumentKind, MessageType, TaskFlag
from scaler.scheduler.config import SchedulerConfig
from scaler.scheduler.core import SchedulerCore
from scaler.scheduler.invariants import check_scheduler
from scaler.version import __version__

FUNCTION_PAYLOAD = b"function payload"
FUNCTION = content_object_id(FUNCTION_PAYLOAD)  # a function id is made from its content, as the client makes it


class Wiring:
    """A SchedulerCore with every message it sends captured, decoded."""

    def __init__(
        self,
        allowed_failures: int = 3,
        queue_size: int = 1000,
        function_seconds: float | None = 0.0,
        **settings: Any,
    ) -> None:
        """``function_seconds``: the run time FUNCTION is known to take, or None for a function not yet measured."""
        self.sent: list[tuple[bytes, MessageType, list[Any]]] = []
        config = SchedulerConfig(
            address="tcp://127.0.0.1:1",
            allowed_failures=allowed_failures,
            per_worker_queue_size=queue_size,
            **settings,
        )
        self.core = SchedulerCore(config, self.send)
        self.outbox = self.core.outbox
        self.clients = self.core.clients
        self.objects = self.core.objects
        self.workers = self.core.workers
        self.tasks = self.core.tasks
        if function_seconds is not None:
            self.tasks.durations.observe(FUNCTION, function_seconds)

    def send(self, identity: bytes, parts: list[Any]) -> None:
        msg_type, fields, _ = decode(parts)
        self.sent.append((identity, msg_type, fields))

    def deliver(self, identity: bytes, msg_type: MessageType, fields: list[Any], frames: Sequence[Any] = ()) -> None:
        """One message arrives from ``identity``, as the scheduler's socket would hand it over, then a step."""
        self.core.on_message(identity, msg_type, fields, list(frames))
        self.step()

    def step(self) -> None:
        """What the scheduler does after each message: assign, flush; then its books must be consistent."""
        self.core.after_handling()
        self.check()

    def check(self) -> None:
        """The scheduler's books are consistent."""
        breaches = check_scheduler(self.tasks, self.objects, self.clients, self.workers)
        assert breaches == [], breaches

    def take(self, msg_type: MessageType) -> list[tuple[bytes, list[Any]]]:
        found = [(identity, fields) for identity, kind, fields in self.sent if kind is msg_type]
        self.sent = [entry for entry in self.sent if entry[1] is not msg_type]
        return found

    def connect_client(self, identity: bytes = b"client", serializer_id: bytes | None = None) -> Any:
        """A client connects and sends FUNCTION (and its serializer, if it names one); returns its record."""
        self.clients.on_connect(identity, ["test", serializer_id, 1, "host", __version__])
        record = self.clients.touch(identity)
        self.objects.put(record.number, FUNCTION, b"function payload")
        if serializer_id is not None:
            self.objects.put(record.number, serializer_id, b"serializer payload")
        return record

    def connect_worker(self, name: str) -> Any:
        """A worker called ``name`` connects with the default queue (and gets work at once); returns its record."""
        self.deliver(name.encode(), MessageType.WORKER_CONNECT, [name, len(self.workers) + 1, "host", 0, __version__])
        return self.workers.get(name.encode())

    def submit(self, client: Any, count: int, dependencies: dict[int, list[int]] | None = None) -> list[int]:
        base = task_id_base(client.number)
        items = []
        for index in range(1, count + 1):
            args: list[Any] = [[ArgumentKind.INLINE, b"arg"]]
            for dependency in (dependencies or {}).get(index, []):
                args.append([ArgumentKind.TASK, base + dependency])
            items.append([base + index, FUNCTION, 0, int(TaskFlag.RESULT_TO_CLIENT), args, []])
        self.tasks.on_submit(client, items, [])
        self.step()
        return [base + index for index in range(1, count + 1)]
