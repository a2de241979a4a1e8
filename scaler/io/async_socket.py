"""A ZeroMQ socket driven by an asyncio loop through its file descriptor.

ZeroMQ signals readiness on an edge-triggered descriptor, so after every send or receive the socket's
EVENTS must be read again: messages that arrived meanwhile raise no new edge. This class drains all
waiting messages in one callback and hands each to ``on_message`` synchronously, which lets the
owner handle a whole burst before the loop runs anything else. Sends never block: a send that would
block is queued and retried when the socket becomes writable.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

import zmq

from scaler.io.parts import NOBLOCK, POLLIN, POLLOUT, events, readable, recv_parts, send_parts

logger = logging.getLogger(__name__)

MessageHandler = Callable[[list[Any]], None]

# Largest number of messages handled in one callback before yielding to other loop work.
_DRAIN_BATCH = 2000


class AsyncSocket:
    """Wraps a bound or connected ``zmq.Socket`` for use from one asyncio loop."""

    def __init__(self, socket: zmq.Socket, on_message: MessageHandler, name: str) -> None:
        self.socket = socket
        self.name = name
        self._on_message = on_message
        self._loop = asyncio.get_running_loop()
        self._fd: int = cast(int, socket.getsockopt(zmq.FD))
        self._backlog: collections.deque[Sequence[Any]] = collections.deque()
        self._drain_scheduled = False
        self._draining = False
        self._closed = False
        self._loop.add_reader(self._fd, self._drain)
        self._schedule_drain()

    def send(self, parts: Sequence[Any]) -> None:
        """Send a multipart message now if the socket takes it, else queue it in order."""
        if self._closed:
            return
        if not self._backlog:
            try:
                send_parts(self.socket, parts, NOBLOCK)
            except zmq.Again:
                pass
            else:
                # Sending may have taken the descriptor's edge for messages that arrived meanwhile. A running
                # drain looks again before it returns; otherwise look now, which costs less than a loop pass.
                if not self._draining and not self._drain_scheduled and self._readable():
                    self._schedule_drain()
                return
        self._backlog.append(parts)
        self._schedule_drain()

    def drain_now(self) -> None:
        """Handle every message waiting on the socket right now."""
        self._drain()

    def close(self, linger_ms: int = 0) -> None:
        """Stop watching the descriptor and close the socket."""
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.remove_reader(self._fd)
        except Exception:  # the loop may already be closed at interpreter exit
            pass
        self.socket.close(linger=linger_ms)

    def _schedule_drain(self) -> None:
        if not self._drain_scheduled and not self._closed:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain)

    def _readable(self) -> bool:
        try:
            return readable(self.socket)
        except zmq.ZMQError:
            return False

    def _drain(self) -> None:
        """Handle waiting messages; runs straight from the descriptor's reader callback."""
        self._drain_scheduled = False
        if self._closed:
            return
        socket = self.socket
        self._draining = True
        try:
            ready = events(socket)
            if self._backlog and ready & POLLOUT:
                self._flush_backlog()
                ready = events(socket)
            handled = 0
            while ready & POLLIN:
                parts = recv_parts(socket, NOBLOCK)
                try:
                    self._on_message(parts)
                except Exception:
                    logger.exception("%s: handler failed on a message; message dropped", self.name)
                handled += 1
                if self._closed:
                    return
                if handled >= _DRAIN_BATCH:
                    self._schedule_drain()
                    return
                ready = events(socket)
            if self._backlog:
                self._loop.call_later(0.001, self._schedule_drain)
        except zmq.Again:
            self._schedule_drain()
        except zmq.ZMQError as exc:
            if not self._closed:
                logger.error("%s: socket error %s", self.name, exc)
        finally:
            self._draining = False

    def _flush_backlog(self) -> None:
        while self._backlog:
            try:
                send_parts(self.socket, self._backlog[0], NOBLOCK)
            except zmq.Again:
                return
            self._backlog.popleft()
