"""The dashboard's status feed: one SUB socket on a scheduler's monitor address, fanned out to every browser.

The feed keeps the newest status (as a dict and as JSON text) for ``/api/status``, and hands each status
to every ``Subscription``. A subscription holds only the newest status its browser has not read yet, so a
slow browser loses intermediate statuses instead of holding up the feed or the other browsers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from scaler.io.address import connectable_address
from scaler.security import Security, apply_client

logger = logging.getLogger(__name__)

def jsonable(value: Any) -> Any:
    """``value`` with only what JSON can carry: non-finite floats become None, bytes text, other types text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key) if not isinstance(key, bytes) else key.decode(errors="replace"): jsonable(item)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode(errors="replace")
    return str(value)


def status_to_json(status: dict[str, Any]) -> str:
    """A status as compact JSON text that every browser's ``JSON.parse`` accepts."""
    return json.dumps(jsonable(status), separators=(",", ":"), allow_nan=False)


class Subscription:
    """One browser's share of the feed: the newest status it has not read yet, nothing older."""

    def __init__(self) -> None:
        self._pending: str | None = None
        self._ready = asyncio.Event()
        self.closed = False
        self.dropped = 0  # statuses replaced by a newer one before the browser read them

    def offer(self, message: str) -> None:
        """Make ``message`` the next one read, replacing any unread one. Never blocks."""
        if self._pending is not None:
            self.dropped += 1
        self._pending = message
        self._ready.set()

    def close(self) -> None:
        """End the subscription: a waiting ``next()`` returns None and ``closed`` is true."""
        self.closed = True
        self._ready.set()

    async def next(self, timeout_seconds: float) -> str | None:
        """The newest unread status, waiting up to ``timeout_seconds``; None on timeout or once closed."""
        if self._pending is None and not self.closed:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout_seconds)
            except asyncio.TimeoutError:
                return None
        self._ready.clear()
        if self.closed:
            return None
        message, self._pending = self._pending, None
        return message


class StatusFeed:
    """Subscribes to ``monitor_address`` while started, and fans every status out to the subscriptions."""

    def __init__(self, monitor_address: str, security: Security | None = None) -> None:
        self.monitor_address = monitor_address
        self.security = security  # CURVE keys for a scheduler with security on (scaler.security)
        self.latest: dict[str, Any] | None = None
        self.latest_json: str | None = None
        self.statuses_received = 0
        self.malformed_received = 0
        self._received_at: float | None = None
        self._subscriptions: set[Subscription] = set()
        self._context: zmq.asyncio.Context | None = None
        self._socket: zmq.asyncio.Socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect the SUB socket and start receiving (on the running event loop)."""
        if self._task is not None:
            return
        self._context = zmq.asyncio.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.IPV6, 1)  # IPv6 addresses as well as IPv4 ones
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.RCVHWM, 10)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        if self.security is not None:
            apply_client(self._socket, self.security)
        self._socket.connect(connectable_address(self.monitor_address))
        self._task = asyncio.create_task(self._receive(), name="scaler-ui-status-feed")
        logger.info("dashboard subscribed to the monitor address %s", self.monitor_address)

    def close_subscriptions(self) -> None:
        """End every subscription (their event streams finish) and refuse new ones; safe to call twice."""
        self._stopped = True
        for subscription in list(self._subscriptions):
            subscription.close()

    async def stop(self) -> None:
        """End every subscription, stop receiving and close the socket; safe to call twice."""
        self.close_subscriptions()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._context is not None:
            self._context.term()
            self._context = None

    # ------------------------------------------------------------------ readers

    def age_seconds(self) -> float | None:
        """Seconds since the newest status arrived, or None if none has."""
        if self._received_at is None:
            return None
        return time.monotonic() - self._received_at

    @property
    def subscriber_count(self) -> int:
        """How many browsers are subscribed right now."""
        return len(self._subscriptions)

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        """A subscription for the duration of the ``with`` block, offered the newest status at once if any."""
        subscription = Subscription()
        if self._stopped:
            subscription.close()
        elif self.latest_json is not None:
            subscription.offer(self.latest_json)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    # ------------------------------------------------------------------ receiving

    def publish(self, status: dict[str, Any]) -> None:
        """Make ``status`` the newest and offer it to every subscription (never blocks)."""
        text = status_to_json(status)
        self.latest, self.latest_json = status, text
        self._received_at = time.monotonic()
        self.statuses_received += 1
        for subscription in list(self._subscriptions):
            subscription.offer(text)

    async def _receive(self) -> None:
        socket = self._socket
        assert socket is not None
        while True:
            frame = await socket.recv()
            while await socket.poll(0):  # fell behind: only the newest counts
                frame = await socket.recv()
            try:
                status = msgpack.unpackb(frame, raw=False, strict_map_key=False)
                if not isinstance(status, dict):
                    raise ValueError(f"a status is a map, not {type(status).__name__}")
                self.publish(status)
            except Exception as exc:  # a bad message never stops the feed
                self.malformed_received += 1
                if self.malformed_received <= 5 or self.malformed_received % 100 == 0:
                    logger.warning(
                        "dashboard: malformed status #%d from %s dropped: %s",
                        self.malformed_received,
                        self.monitor_address,
                        exc,
                    )
