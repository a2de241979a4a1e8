"""Multipart messages over a stream socket: the link between a worker agent and its processor.

A socketpair costs one wakeup of the reader per message. ZeroMQ costs three (an I/O thread on each side
besides the reader), which is most of a short task's round trip. A message is a header (the number
of parts, then each part's length, little-endian) followed by the parts' bytes.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger(__name__)

Parts = list[Any]

_COUNT = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")
_READ_SIZE = 256 * 1024
# A part at least this large is read straight into a buffer of its own.
_LARGE_PART = 64 * 1024
# Most buffers handed to one sendmsg call (the system allows at least 1024).
_MAX_IOV = 512
# A peer that is gone makes a send fail with EPIPE instead of raising SIGPIPE, where the system allows.
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)


def pack(parts: Sequence[Any]) -> list[memoryview]:
    """The buffers that carry ``parts`` (bytes, memoryviews or zmq.Frames) as one message."""
    views = [memoryview(part).cast("B") for part in parts]
    header = _COUNT.pack(len(views)) + b"".join(_LENGTH.pack(view.nbytes) for view in views)
    return [memoryview(header), *views]


def _skip(buffers: collections.deque[memoryview], count: int) -> None:
    """Drop the first ``count`` bytes of ``buffers``."""
    while count:
        head = buffers[0]
        if count < head.nbytes:
            buffers[0] = head[count:]
            return
        count -= head.nbytes
        buffers.popleft()


class MessageReader:
    """Cuts the bytes read from a stream socket into messages."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._lengths: list[int] | None = None  # part lengths of the message being read
        self._parts: Parts = []  # its parts read so far
        self._large: bytearray | None = None  # a large part being read in place
        self._filled = 0
        self.closed = False  # the peer closed its end

    def read(self, block: bool) -> list[Parts]:
        """The messages complete so far; with ``block``, wait for at least one (none once the peer closed)."""
        messages: list[Parts] = []
        self._cut(messages)
        while not self.closed:
            more = self._fill(block and not messages)
            self._cut(messages)
            if not more and not (block and not messages):
                break
        return messages

    def _fill(self, block: bool) -> bool:
        """Read what the socket has; True when more may be waiting."""
        flags = 0 if block else socket.MSG_DONTWAIT
        try:
            if self._large is not None:
                wanted = len(self._large) - self._filled
                count = self._sock.recv_into(memoryview(self._large)[self._filled :], wanted, flags)
                self._filled += count
            else:
                wanted = _READ_SIZE
                data = self._sock.recv(wanted, flags)
                count = len(data)
                self._buffer += data
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            count = 0
        if count == 0:
            self.closed = True
        return count == wanted

    def _cut(self, messages: list[Parts]) -> None:
        buffer = self._buffer
        while True:
            if self._large is not None:
                if self._filled < len(self._large):
                    return
                self._parts.append(memoryview(self._large))
                self._large = None
            elif self._lengths is None:
                if len(buffer) < _COUNT.size:
                    return
                (count,) = _COUNT.unpack_from(buffer)
                end = _COUNT.size + count * _LENGTH.size
                if len(buffer) < end:
                    return
                self._lengths = list(struct.unpack_from(f"<{count}Q", buffer, _COUNT.size))
                self._parts = []
                del buffer[:end]
            elif len(self._parts) == len(self._lengths):
                messages.append(self._parts)
                self._lengths, self._parts = None, []
            else:
                length = self._lengths[len(self._parts)]
                if length >= _LARGE_PART:  # its own buffer, so it is freed on its own
                    taken = min(length, len(buffer))
                    self._large = bytearray(length)
                    self._large[:taken] = buffer[:taken]
                    self._filled = taken
                    del buffer[:taken]
                elif len(buffer) >= length:
                    self._parts.append(bytes(buffer[:length]))
                    del buffer[:length]
                else:
                    return


class BlockingStream:
    """The processor's end: blocking sends (from any thread) and reads."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        self._sock = sock
        self._reader = MessageReader(sock)
        self._send_lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._reader.closed

    def send(self, parts: Sequence[Any]) -> None:
        buffers = collections.deque(pack(parts))
        with self._send_lock:
            while buffers:
                _skip(buffers, self._sock.sendmsg(itertools.islice(buffers, _MAX_IOV), (), _SEND_FLAGS))

    def read(self, block: bool) -> list[Parts]:
        return self._reader.read(block)

    def close(self) -> None:
        self._sock.close()


class AsyncStream:
    """The agent's end, driven by its asyncio loop: never blocks, hands each message to ``on_message``."""

    def __init__(self, sock: socket.socket, on_message: Callable[[Parts], None], name: str) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._fd = sock.fileno()
        self._on_message = on_message
        self.name = name
        self._reader = MessageReader(sock)
        self._backlog: collections.deque[memoryview] = collections.deque()
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._loop.add_reader(self._fd, self.drain_now)

    def send(self, parts: Sequence[Any]) -> None:
        """Send now what the socket takes; keep the rest, in order, until it is writable."""
        if self._closed:
            return
        waiting = bool(self._backlog)
        self._backlog.extend(pack(parts))
        if not waiting:
            self._write()

    def drain_now(self) -> None:
        """Handle every message that has arrived."""
        if self._closed:
            return
        for parts in self._reader.read(block=False):
            try:
                self._on_message(parts)
            except Exception:
                logger.exception("%s: handler failed on a message; message dropped", self.name)
            if self._closed:
                return
        if self._reader.closed:
            self._loop.remove_reader(self._fd)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        except Exception:  # the loop may already be closed at interpreter exit
            pass
        self._backlog.clear()
        self._sock.close()

    def _write(self) -> None:
        backlog = self._backlog
        try:
            while backlog:
                _skip(backlog, self._sock.sendmsg(itertools.islice(backlog, _MAX_IOV), (), _SEND_FLAGS))
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:  # the processor is gone; its exit is handled through its sentinel
            logger.debug("%s: send failed: %s", self.name, exc)
            backlog.clear()
        if backlog:
            self._loop.add_writer(self._fd, self._on_writable)

    def _on_writable(self) -> None:
        self._loop.remove_writer(self._fd)
        self._write()
