"""Multipart sends and receives on ZeroMQ sockets with the fewest Python-level steps.

pyzmq's ``send_multipart`` and ``recv_multipart`` check every part and combine ``zmq.Flag`` enums in
Python, a few microseconds per message on the path of every task. These call the compiled ``send``
and ``recv`` of ``zmq.backend.Socket`` with plain int flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import zmq
import zmq.backend

NOBLOCK = int(zmq.NOBLOCK)
EVENTS = int(zmq.EVENTS)
POLLIN = int(zmq.POLLIN)
POLLOUT = int(zmq.POLLOUT)
_SNDMORE = int(zmq.SNDMORE)
_send = zmq.backend.Socket.send
_recv = zmq.backend.Socket.recv


def send_parts(socket: zmq.Socket, parts: Sequence[Any], flags: int = 0) -> None:
    """Send ``parts`` (bytes, memoryviews or zmq.Frames) as one message; large parts are not copied."""
    last = len(parts) - 1
    more = flags | _SNDMORE
    for index in range(last):
        _send(socket, parts[index], more, False)
    _send(socket, parts[last], flags, False)


def recv_parts(socket: zmq.Socket, flags: int = 0) -> list[zmq.Frame]:
    """Receive one message as frames; with NOBLOCK in ``flags``, raises zmq.Again when none waits."""
    frame = _recv(socket, flags, False)
    parts = [frame]
    while frame.more:
        frame = _recv(socket, flags, False)
        parts.append(frame)
    return parts


def events(socket: zmq.Socket) -> int:
    """The socket's POLLIN and POLLOUT bits; this also processes its pending commands."""
    return cast(int, socket.getsockopt(EVENTS))


def readable(socket: zmq.Socket) -> bool:
    """Whether a message waits; this also processes the socket's pending commands."""
    return bool(events(socket) & POLLIN)
