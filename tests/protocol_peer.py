"""Peers that speak scaler's protocol directly over a raw ZeroMQ DEALER, for tests that need exact messages.

``ProtocolClient`` connects as a client and submits hand-made TASK_SUBMIT items; ``FakeWorker`` connects as a
worker, receives TASK_ASSIGN and answers whatever the test wants, malformed or late. Both are driven from the
test's thread: every wait has a deadline and nothing runs in the background.
"""

from __future__ import annotations

import os
import pickle
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import cloudpickle
import zmq

from scaler.io.address import local_address
from scaler.protocol.codec import decode, encode, payload_bytes, resolve
from scaler.protocol.ids import content_object_id, task_id_base
from scaler.protocol.messages import ArgumentKind, MessageType, TaskFlag, TaskStatus
from scaler.version import __version__

Message = tuple[MessageType, list[Any], list[Any]]


def _any_message(fields: list[Any], frames: list[Any]) -> bool:
    return True


class ProtocolPeer:
    """One DEALER socket to a scheduler; received messages are kept in order until a wait takes them."""

    def __init__(self, address: str, role: str) -> None:
        self._context = zmq.Context()
        self.socket = self._context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.IDENTITY, f"{role}|test-peer|{os.getpid()}|{uuid.uuid4().hex}".encode())
        self.socket.connect(address)
        self.received: list[Message] = []
        self._closed = False

    def send(self, msg_type: MessageType, fields: list[Any] | tuple[Any, ...] = (), frames: list[Any] = ()) -> None:
        self.socket.send_multipart(encode(msg_type, list(fields), list(frames)))

    def receive_pending(self, wait_seconds: float = 0.0) -> None:
        """Keep what has arrived, waiting up to ``wait_seconds`` for a first message."""
        timeout_ms = int(wait_seconds * 1000)
        while self.socket.poll(timeout_ms):
            self.received.append(decode(self.socket.recv_multipart(copy=True)))
            timeout_ms = 0

    def wait_for(
        self,
        msg_type: MessageType,
        timeout_seconds: float,
        matching: Callable[[list[Any], list[Any]], bool] = _any_message,
    ) -> Message:
        """Take the first kept or new message of ``msg_type`` that matches; TimeoutError past the deadline."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            for index, (kind, fields, frames) in enumerate(self.received):
                if kind is msg_type and matching(fields, frames):
                    return self.received.pop(index)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kinds = [kind.name for kind, _, _ in self.received]
                raise TimeoutError(f"no matching {msg_type.name} within {timeout_seconds:g} s; kept: {kinds}")
            self.while_waiting()
            self.receive_pending(wait_seconds=min(remaining, 0.05))

    def while_waiting(self) -> None:
        """Runs between two polls of a wait."""

    def close(self, linger_ms: int = 0) -> None:
        """Close the socket (without a word, unless one was just sent and ``linger_ms`` lets it leave)."""
        if not self._closed:
            self._closed = True
            self.socket.close(linger=linger_ms)
            self._context.term()

    def __enter__(self) -> ProtocolPeer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class ProtocolClient(ProtocolPeer):
    """A client that builds its own TASK_SUBMIT items: task ids, function ids and arguments as the test likes."""

    def __init__(self, address: str, timeout_seconds: float = 10.0) -> None:
        super().__init__(address, "C")
        self.results: dict[int, tuple[int, bytes | None]] = {}  # task id -> (status, payload)
        self.send(MessageType.CLIENT_CONNECT, ["protocol-peer", None, os.getpid(), socket.gethostname(), __version__])
        _, fields, _ = self.wait_for(MessageType.CLIENT_ACCEPT, timeout_seconds)
        self.number: int = fields[0]
        self._counter = 0

    def next_task_id(self) -> int:
        self._counter += 1
        return task_id_base(self.number) + self._counter

    def put_function(self, function: Callable[..., Any]) -> bytes:
        """Store a function the way Client does (cloudpickle, id from the content); returns its id."""
        payload = cloudpickle.dumps(function, protocol=5)
        function_id = content_object_id(payload)
        self.send(MessageType.OBJECT_PUT, [[function_id, payload]])
        return function_id

    def submit(self, function_id: bytes, args: list[list[Any]], flags: int = int(TaskFlag.RESULT_TO_CLIENT)) -> int:
        """Submit one task; ``args`` are [ArgumentKind, value] pairs. Returns its task id."""
        task_id = self.next_task_id()
        self.send(MessageType.TASK_SUBMIT, [[task_id, function_id, 0, flags, args, []]])
        return task_id

    def cancel(self, task_ids: list[int]) -> None:
        self.send(MessageType.TASK_CANCEL, task_ids)

    def result_of(self, task_id: int, timeout_seconds: float) -> tuple[int, bytes | None]:
        """The (status, payload) of ``task_id``'s TASK_RESULTS item; TimeoutError if none comes in time."""
        deadline = time.monotonic() + timeout_seconds
        while task_id not in self.results:
            _, fields, frames = self.wait_for(MessageType.TASK_RESULTS, max(0.0, deadline - time.monotonic()))
            for item in fields:
                reference = item[2]
                payload = None if reference is None else payload_bytes(resolve(reference, frames))
                self.results[item[0]] = (item[1], payload)
        return self.results[task_id]

    def disconnect(self) -> None:
        """Leave as Client.disconnect does."""
        if not self._closed:
            self.send(MessageType.CLIENT_DISCONNECT)
            self.close(linger_ms=1000)


class FakeWorker(ProtocolPeer):
    """A worker agent that runs nothing: it keeps the tasks assigned to it and answers as the test decides.

    It sends a heartbeat every 0.2 s while a wait of the test runs, so it stays known as long as the test waits
    on it, and goes silent once the test stops waiting (or calls ``close``).
    """

    def __init__(self, address: str, queue_size: int = 1000, timeout_seconds: float = 10.0) -> None:
        super().__init__(address, "W")
        self.tasks: dict[int, list[Any]] = {}  # task id -> its TASK_ASSIGN item, in arrival order
        self._accepted = False
        self._last_heartbeat = 0.0
        self.send(
            MessageType.WORKER_CONNECT, ["fake-worker", os.getpid(), socket.gethostname(), queue_size, __version__]
        )
        self.wait_for(MessageType.WORKER_ACCEPT, timeout_seconds)
        self._accepted = True

    def while_waiting(self) -> None:
        now = time.monotonic()
        if self._accepted and not self._closed and now - self._last_heartbeat >= 0.2:
            self._last_heartbeat = now
            self.send(MessageType.WORKER_HEARTBEAT, [0.0, 50_000_000, len(self.tasks), 1])

    def wait_for_tasks(self, count: int, timeout_seconds: float) -> list[int]:
        """Wait until ``count`` tasks in all have been assigned to this worker; returns their ids in order."""
        deadline = time.monotonic() + timeout_seconds
        while len(self.tasks) < count:
            _, fields, _ = self.wait_for(MessageType.TASK_ASSIGN, max(0.0, deadline - time.monotonic()))
            for item in fields[1]:
                self.tasks[item[0]] = item
        return list(self.tasks)

    def send_results(self, items: list[list[Any]], frames: list[Any] = ()) -> None:
        """Send TASK_RESULTS items exactly as given (nothing is checked: they may be malformed on purpose)."""
        self.send(MessageType.TASK_RESULTS, items, list(frames))

    def disconnect(self) -> None:
        """Leave as a stopping worker does (WORKER_DISCONNECT), so the scheduler assigns it nothing more."""
        if not self._closed:
            self.send(MessageType.WORKER_DISCONNECT)
            self.close(linger_ms=1000)


def teach_run_time(client: Any, fake: FakeWorker, function: Any, run_seconds: float) -> None:
    """Have the fake worker answer one task of ``function`` as if it ran for ``run_seconds``: the scheduler's
    estimate for the function is then exactly that, and so is how many of its tasks a worker may hold."""
    future = client.submit(function, 0.0, -1)
    (task_id,) = fake.wait_for_tasks(1, timeout_seconds=10)
    fake.send_results([[task_id, int(TaskStatus.SUCCESS), pickle.dumps(-1), None, run_seconds]])
    assert future.result(timeout=10) == -1


def argument(kind: ArgumentKind, value: Any) -> list[Any]:
    """One [ArgumentKind, value] pair of a TASK_SUBMIT item."""
    return [int(kind), value]


class ScriptedScheduler:
    """A ROUTER that accepts one client and answers each message as ``answer(msg_type, fields)`` says."""

    def __init__(self, answer: Callable[[MessageType, list[Any]], list[list[Any]]]) -> None:
        self.address = local_address()
        self.received: list[tuple[MessageType, list[Any]]] = []
        self._answer = answer
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(self.address)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self._socket.poll(50):
                continue
            identity, *parts = self._socket.recv_multipart()
            msg_type, fields, _ = decode(parts)
            self.received.append((msg_type, fields))
            replies = [encode(MessageType.CLIENT_ACCEPT, [1, True, __version__])]
            if msg_type is not MessageType.CLIENT_CONNECT:
                replies = self._answer(msg_type, fields)
            for reply in replies:
                self._socket.send_multipart([identity, *reply])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()
        self._context.term()
