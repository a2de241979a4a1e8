"""Connections to the scheduler's socket that never send a message are closed after a while.

ZeroMQ accepts connections by itself and tells the scheduler nothing of them until a message arrives, so a
peer that connects and stays silent holds one of the scheduler's file descriptors for as long as it likes;
enough of them and no real client gets in. The watch follows the socket's monitor events (a connection
accepted, a connection gone) and the descriptor each message came on (``ZMQ_SRCFD``), and closes the
connections that have said nothing for ``silent_seconds``: it shuts the TCP connection down, ZeroMQ then
sees it end and cleans up as for any peer that left.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import zmq
from zmq.utils.monitor import parse_monitor_message

logger = logging.getLogger(__name__)

_WATCHED_EVENTS = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED


def _borrow(fd: int) -> socket.socket | None:
    """A socket object over ZeroMQ's descriptor ``fd``, to be ``detach()``-ed, never closed: it takes no new
    descriptor, which matters most when they are all taken."""
    try:
        return socket.socket(fileno=fd)
    except OSError:
        return None


def _peer_of(fd: int) -> Any:
    """The remote address of the connection on ``fd``, or None."""
    borrowed = _borrow(fd)
    if borrowed is None:
        return None
    try:
        return borrowed.getpeername()
    except OSError:
        return None
    finally:
        borrowed.detach()


class ConnectionWatch:
    """Follows the connections of one bound socket and closes those silent past ``silent_seconds``.

    ``on_other_event`` gets the monitor messages of ``extra_events`` (handshake failures, for instance).
    Feed ``on_monitor_message`` the monitor socket's messages, ``spoke`` the first frame of each message
    received, and call ``close_silent`` now and then.
    """

    def __init__(
        self,
        watched: zmq.Socket,
        silent_seconds: float,
        extra_events: int = 0,
        on_other_event: Callable[[list[Any]], None] | None = None,
    ) -> None:
        self.monitor = watched.get_monitor_socket(_WATCHED_EVENTS | extra_events)
        self._silent_seconds = silent_seconds
        self._on_other_event = on_other_event
        # Connections accepted and not yet seen to speak: fd -> (accepted at, remote address). The descriptors
        # messages came on are collected apart: a connection's first message may be read before the monitor
        # event of its acceptance.
        self._silent: dict[int, tuple[float, Any]] = {}
        self._spoke: set[int] = set()
        self.closed = 0  # connections closed for their silence

    def on_monitor_message(self, parts: list[Any]) -> None:
        event = parse_monitor_message([bytes(part) for part in parts])
        kind, fd = event["event"], event["value"]
        if kind == zmq.EVENT_ACCEPTED:
            peer = _peer_of(fd)
            if peer is not None:
                self._silent[fd] = (time.monotonic(), peer)
        elif kind in (zmq.EVENT_DISCONNECTED, zmq.EVENT_CLOSED):
            self._silent.pop(fd, None)
            self._spoke.discard(fd)
        elif self._on_other_event is not None:
            self._on_other_event(parts)

    def spoke(self, frame: Any) -> None:
        """A message arrived (``frame`` is one of its frames); its connection is not silent."""
        try:
            self._spoke.add(frame.get(zmq.SRCFD))
        except (zmq.ZMQError, AttributeError):
            pass

    def close_silent(self, now: float) -> None:
        """Shut down every connection accepted more than ``silent_seconds`` ago that has sent nothing."""
        limit = now - self._silent_seconds
        for fd, (accepted, peer) in list(self._silent.items()):
            if fd in self._spoke:
                del self._silent[fd]
                continue
            if accepted > limit:
                continue
            del self._silent[fd]
            borrowed = _borrow(fd)
            if borrowed is None:
                continue
            try:
                # The same connection still (not a later one given the same descriptor number): shut it down.
                if borrowed.getpeername() == peer:
                    borrowed.shutdown(socket.SHUT_RDWR)
                    self.closed += 1
                    if self.closed == 1 or self.closed % 1000 == 0:
                        logger.warning(
                            "closed %d connection%s that sent nothing for %g s (the first from %s)",
                            self.closed,
                            "" if self.closed == 1 else "s",
                            self._silent_seconds,
                            peer[0] if isinstance(peer, tuple) else peer,
                        )
            except OSError:
                pass
            finally:
                borrowed.detach()

    @property
    def silent_count(self) -> int:
        """Connections accepted that have not sent a message yet."""
        return sum(1 for fd in self._silent if fd not in self._spoke)

    def close(self) -> None:
        self.monitor.close(linger=0)
