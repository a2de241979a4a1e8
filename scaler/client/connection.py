"""The client's link to its scheduler: one DEALER socket owned by one background thread.

User threads never touch the socket. They append tasks and messages to an ordered outbox and wake
the thread, which sends every task waiting at that moment as one TASK_SUBMIT batch. Results are
handed to their futures still encoded; each is decoded in the user's thread on first use.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import zmq

from scaler.errors import SchedulerLostError
from scaler.protocol.codec import FrameWriter, MalformedMessage, Payload, decode, encode, resolve
from scaler.protocol.messages import ArgumentKind, MessageType, TaskField

logger = logging.getLogger(__name__)

# A task in the outbox: its envelope item, with INLINE argument payloads not yet given frame indices.
TaskItem = list[Any]


class SchedulerConnection:
    """Sends a client's messages and receives the scheduler's answers on a background thread."""

    def __init__(
        self,
        address: str,
        timeout_seconds: float,
        heartbeat_interval_seconds: float,
        deliver_results: Callable[[list[Any], list[Any]], None],
        on_lost: Callable[[BaseException], None],
    ) -> None:
        self.address = address
        self._timeout_seconds = timeout_seconds
        self._heartbeat_interval = heartbeat_interval_seconds
        self._deliver_results = deliver_results
        self._on_lost = on_lost
        self._context = zmq.Context(io_threads=1)
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.IDENTITY, f"C|{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex}".encode())
        self._socket.setsockopt(zmq.SNDHWM, 0)
        self._socket.setsockopt(zmq.RCVHWM, 0)
        self._socket.setsockopt(zmq.LINGER, 1000)
        self._socket.connect(address)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self._outbox: collections.deque[tuple[bool, Any]] = collections.deque()
        self._running = True
        self._last_heard = time.monotonic()
        self.accepted = threading.Event()
        self.accept_fields: list[Any] = []
        self.shutdown_reply: list[Any] = []
        self.shutdown_replied = threading.Event()
        self.lost_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="scaler-client-io", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ called from user threads

    def send_message(self, parts: list[Any]) -> None:
        """Queue a ready multipart message, after everything queued before it."""
        self._outbox.append((False, parts))
        self._wake()

    def send_tasks(self, items: list[TaskItem]) -> None:
        """Queue tasks; tasks queued together or close in time leave as one message."""
        self._outbox.append((True, items))
        self._wake()

    def close(self, timeout_seconds: float = 5.0) -> None:
        """Send what is queued, stop the thread and close the socket."""
        if not self._running:
            return
        self._running = False
        self._wake(force=True)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=timeout_seconds)

    @property
    def is_open(self) -> bool:
        return self._running and self.lost_error is None

    def _wake(self, force: bool = False) -> None:
        with self._wake_lock:
            if self._wake_pending and not force:
                return
            self._wake_pending = True
        try:
            self._wake_writer.send(b"x")
        except (BlockingIOError, OSError):
            pass

    # ------------------------------------------------------------------ the I/O thread

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._wake_reader, zmq.POLLIN)
        next_heartbeat = time.monotonic() + self._heartbeat_interval
        try:
            while True:
                now = time.monotonic()
                timeout_ms = max(0, int((next_heartbeat - now) * 1000)) + 1
                events = dict(poller.poll(timeout_ms))
                if self._wake_reader.fileno() in events or self._wake_reader in events:
                    self._take_wake()
                self._flush_outbox()
                if self._socket in events:
                    self._receive_all()
                if not self._running:
                    break
                now = time.monotonic()
                if now >= next_heartbeat:
                    next_heartbeat = now + self._heartbeat_interval
                    self._socket.send_multipart(encode(MessageType.CLIENT_HEARTBEAT))
                    if self.lost_error is None and now - self._last_heard > self._timeout_seconds:
                        self._lose(
                            SchedulerLostError(
                                f"the scheduler at {self.address} did not answer for {self._timeout_seconds:g} s"
                            )
                        )
        except Exception as exc:  # the thread must never die silently: fail every future instead
            logger.exception("client I/O thread failed")
            self._lose(SchedulerLostError(f"the client's connection failed: {exc!r}"))
        finally:
            self._flush_outbox()
            self._socket.close(linger=1000)
            self._context.term()
            self._wake_reader.close()
            self._wake_writer.close()

    def _take_wake(self) -> None:
        with self._wake_lock:
            self._wake_pending = False
        try:
            while self._wake_reader.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _flush_outbox(self) -> None:
        outbox = self._outbox
        while outbox:
            is_tasks, content = outbox.popleft()
            if not is_tasks:
                self._socket.send_multipart(content, copy=False)
                continue
            items: list[TaskItem] = list(content)
            while outbox and outbox[0][0]:
                items.extend(outbox.popleft()[1])
            writer = FrameWriter()
            for item in items:
                for arg in item[TaskField.ARGS]:
                    if arg[0] == ArgumentKind.INLINE:
                        arg[1] = writer.add(arg[1])
            self._socket.send_multipart(encode(MessageType.TASK_SUBMIT, items, writer.frames), copy=False)

    def _receive_all(self) -> None:
        while True:
            try:
                parts = self._socket.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._last_heard = time.monotonic()
            try:
                self._handle(parts)
            except MalformedMessage as exc:
                logger.warning("client dropped a malformed message from the scheduler: %s", exc)

    def _handle(self, parts: list[Any]) -> None:
        msg_type, fields, frames = decode(parts)
        if msg_type is MessageType.TASK_RESULTS:
            self._deliver_results(fields, frames)
        elif msg_type is MessageType.HEARTBEAT_ECHO:
            pass
        elif msg_type is MessageType.CLIENT_ACCEPT:
            self.accept_fields = fields
            self.accepted.set()
        elif msg_type is MessageType.SHUTDOWN_REPLY:
            self.shutdown_reply = fields
            self.shutdown_replied.set()
        elif msg_type is MessageType.CLIENT_REJECTED:
            reason = fields[0] if fields and isinstance(fields[0], str) else "rejected"
            self._lose(SchedulerLostError(f"the scheduler at {self.address} dropped this client: {reason}"))

    def _lose(self, error: BaseException) -> None:
        if self.lost_error is not None:
            return
        self.lost_error = error
        self.shutdown_replied.set()
        self._on_lost(error)


def resolve_results(fields: list[Any], frames: list[Any]) -> list[tuple[int, int, Payload | None, Any]]:
    """Parse TASK_RESULTS items into (task id, status, payload, profile)."""
    return [(item[0], item[1], None if item[2] is None else resolve(item[2], frames), item[3]) for item in fields]
