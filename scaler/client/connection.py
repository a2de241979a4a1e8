"""The client's link to its scheduler: one DEALER socket owned by one background thread.

User threads append tasks and messages to an ordered outbox and wake the thread, which sends every
task waiting at that moment as one TASK_SUBMIT batch. A client with nothing in flight sends its tasks
itself instead, under the socket's lock, which spares the wakeup of the thread. Results are handed
to their futures still encoded; each is decoded in the user's thread on first use.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import zmq
import zmq.utils.monitor

from scaler.errors import SchedulerLostError, VersionMismatchError
from scaler.io.parts import NOBLOCK, readable, recv_parts, send_parts
from scaler.protocol import versions
from scaler.protocol.codec import FrameWriter, decode, encode
from scaler.protocol.messages import ArgumentKind, MessageType, TaskField
from scaler.security import Security, apply_client, handshake_failure_text

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
        on_output: Callable[[list[Any]], None] | None = None,
        security: Security | None = None,
    ) -> None:
        self.address = address
        self._timeout_seconds = timeout_seconds
        self._heartbeat_interval = heartbeat_interval_seconds
        self._deliver_results = deliver_results
        self._on_lost = on_lost
        self._on_output = on_output
        self.bytes_received = 0  # every message from the scheduler, all its frames
        self.info_replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self._context = zmq.Context(io_threads=1)
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.IPV6, 1)  # IPv6 addresses as well as IPv4 ones
        self._socket.setsockopt(zmq.IDENTITY, f"C|{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex}".encode())
        self._socket.setsockopt(zmq.SNDHWM, 0)
        self._socket.setsockopt(zmq.RCVHWM, 0)
        self._socket.setsockopt(zmq.LINGER, 1000)
        self.security = security
        if security is not None:
            apply_client(self._socket, security)
        # Handshake failures (CURVE keys refused or missing) are read only to explain a connection timeout.
        self._handshake_events: zmq.Socket | None = self._socket.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
        )
        self._socket.connect(address)
        self._socket_fd = self._socket.getsockopt(zmq.FD)
        # Held for every use of the socket: by the I/O thread, and by a user thread sending directly.
        self._socket_lock = threading.Lock()
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

    def send_tasks(self, items: list[TaskItem], now: bool = False) -> None:
        """Queue tasks; tasks queued together or close in time leave as one message.

        With ``now``, the tasks leave from this thread when nothing is queued before them and the
        socket is free, which saves a thread wakeup on the way to the scheduler.
        """
        if now and not self._outbox and self._socket_lock.acquire(blocking=False):
            try:
                if not self._outbox and self._running and self.lost_error is None:
                    self._send_tasks(items)
                    # The send may have taken the descriptor's edge for a message that arrived meanwhile.
                    if readable(self._socket):
                        self._wake()
                    return
            finally:
                self._socket_lock.release()
        self._outbox.append((True, items))
        self._wake()

    def handshake_failure(self) -> str | None:
        """Why the security handshake with the scheduler failed so far, if it did (from the user's thread)."""
        monitor = self._handshake_events
        if monitor is None:
            return None

        def events() -> list[dict[str, Any]]:
            found: list[Any] = []
            while monitor.poll(0):
                found.append(zmq.utils.monitor.parse_monitor_message(monitor.recv_multipart()))
            return found

        try:
            return handshake_failure_text(events)
        except zmq.ZMQError:
            return None

    def _close_handshake_events(self) -> None:
        if self._handshake_events is not None:
            self._handshake_events.close(linger=0)
            self._handshake_events = None

    def close(self, timeout_seconds: float = 5.0) -> None:
        """Send what is queued, stop the thread and close the socket."""
        if not self._running:
            return
        self._close_handshake_events()  # before the thread terminates the context, which waits for every socket
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
        poller.register(self._socket_fd, zmq.POLLIN)
        poller.register(self._wake_reader, zmq.POLLIN)
        next_heartbeat = time.monotonic() + self._heartbeat_interval
        timeout_ms = int(self._heartbeat_interval * 1000) + 1
        try:
            while True:
                events = dict(poller.poll(timeout_ms))
                if self._wake_reader.fileno() in events or self._wake_reader in events:
                    self._take_wake()
                with self._socket_lock:
                    self._flush_outbox()
                    now = time.monotonic()
                    heartbeat = now >= next_heartbeat
                    if heartbeat:
                        next_heartbeat = now + self._heartbeat_interval
                        self._socket.send_multipart(encode(MessageType.CLIENT_HEARTBEAT))
                    received = self._receive_all()
                if heartbeat and self.lost_error is None and now - self._last_heard > self._timeout_seconds:
                    self._lose(
                        SchedulerLostError(
                            f"the scheduler at {self.address} did not answer for {self._timeout_seconds:g} s"
                        )
                    )
                timeout_ms = max(0, int((next_heartbeat - time.monotonic()) * 1000)) + 1
                # Results go last: a user thread they wake finds the GIL free as soon as this thread polls again.
                for parts in received:
                    try:
                        self._handle(parts)
                    except Exception as exc:  # one bad message must not take the connection down
                        logger.warning("client dropped a malformed message from the scheduler: %r", exc)
                if not self._running:
                    break
        except Exception as exc:  # the thread must never die silently: fail every future instead
            logger.exception("client I/O thread failed")
            self._lose(SchedulerLostError(f"the client's connection failed: {exc!r}"))
        finally:
            with self._socket_lock:
                self._flush_outbox()
                self._socket.close(linger=1000)
            self._context.term()
            self._wake_reader.close()
            self._wake_writer.close()

    def _take_wake(self) -> None:
        # Drain first, then clear the flag: cleared first, a wake written in between would be drained with the
        # flag left set, and every later wake skipped until the poll timed out (the next heartbeat).
        try:
            while self._wake_reader.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
        with self._wake_lock:
            self._wake_pending = False

    def _flush_outbox(self) -> None:
        outbox = self._outbox
        while outbox:
            is_tasks, content = outbox.popleft()
            if not is_tasks:
                send_parts(self._socket, content)
                continue
            items: list[TaskItem] = list(content)
            while outbox and outbox[0][0]:
                items.extend(outbox.popleft()[1])
            self._send_tasks(items)

    def _send_tasks(self, items: list[TaskItem]) -> None:
        writer = FrameWriter()
        for item in items:
            for arg in item[TaskField.ARGS]:
                if arg[0] == ArgumentKind.INLINE:
                    arg[1] = writer.add(arg[1])
        send_parts(self._socket, encode(MessageType.TASK_SUBMIT, items, writer.frames))

    def _receive_all(self) -> list[Any]:
        """Every message waiting on the socket; they are handled once the socket's lock is released."""
        received = []
        socket = self._socket
        received_bytes = 0
        while readable(socket):
            parts = recv_parts(socket, NOBLOCK)
            received_bytes += sum(len(part) for part in parts)
            received.append(parts)
        self.bytes_received += received_bytes
        if received:
            self._last_heard = time.monotonic()
        return received

    def _handle(self, parts: list[Any]) -> None:
        msg_type, fields, frames = decode(parts)
        if msg_type is MessageType.TASK_RESULTS:
            self._deliver_results(fields, frames)
        elif msg_type is MessageType.HEARTBEAT_ECHO:
            pass
        elif msg_type is MessageType.INFO_REPLY:
            if fields and isinstance(fields[0], dict):
                self.info_replies.put(fields[0])
        elif msg_type is MessageType.OUTPUT_FROM_WORKER:
            if self._on_output is not None:
                self._on_output(fields)
        elif msg_type is MessageType.CLIENT_ACCEPT:
            self.accept_fields = fields
            self.accepted.set()
        elif msg_type is MessageType.SHUTDOWN_REPLY:
            self.shutdown_reply = fields
            self.shutdown_replied.set()
        elif msg_type is MessageType.CLIENT_REJECTED:
            reason = fields[0] if fields and isinstance(fields[0], str) else "rejected"
            if versions.mismatch("scheduler", versions.version_field(fields, 1), "this client") is not None:
                self._lose(VersionMismatchError(f"the scheduler at {self.address} refused this client: {reason}"))
            else:
                self._lose(SchedulerLostError(f"the scheduler at {self.address} dropped this client: {reason}"))

    def _lose(self, error: BaseException) -> None:
        if self.lost_error is not None:
            return
        self.lost_error = error
        self.shutdown_replied.set()
        self.accepted.set()  # a client still waiting to be accepted hears it is lost
        self._on_lost(error)
