"""A background thread that keeps the newest status of a monitor address, so no view ever blocks on the socket."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from scaler.io.status_subscriber import StatusSubscriber

POLL_SECONDS = 0.1


@dataclass(frozen=True)
class FeedState:
    """What the feed has seen so far. Times are ``time.monotonic()`` values."""

    status: dict[str, Any] | None
    """The newest status, or None before the first."""
    received_at: float | None
    """When the newest status arrived."""
    started_at: float
    """When the feed started listening."""
    received: int
    """How many statuses arrived."""
    error: str | None
    """The last message that could not be read as a status, if any."""

    def seconds_since_received(self, now: float) -> float | None:
        """Seconds since the newest status arrived; None before the first."""
        return None if self.received_at is None else max(0.0, now - self.received_at)

    def seconds_waiting(self, now: float) -> float:
        """Seconds since the feed started."""
        return max(0.0, now - self.started_at)


class StatusFeed:
    """Reads a monitor address in a daemon thread; ``state()`` returns the newest status at once.

    The ZeroMQ socket lives and dies in that thread. ``stop()`` ends the thread and closes the socket.
    """

    def __init__(self, address: str, poll_seconds: float = POLL_SECONDS) -> None:
        self.address = address
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._state = FeedState(None, None, time.monotonic(), 0, None)
        self._thread = threading.Thread(target=self._run, name="scaler-top-feed", daemon=True)

    def start(self) -> StatusFeed:
        """Start listening; returns the feed."""
        with self._lock:
            self._state = FeedState(None, None, time.monotonic(), 0, None)
        self._thread.start()
        return self

    def state(self) -> FeedState:
        """The newest state; never blocks on the socket."""
        with self._lock:
            return self._state

    def stop(self, timeout_seconds: float = 2.0) -> None:
        """Stop listening and close the socket."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_seconds)

    def _run(self) -> None:
        try:
            subscriber = StatusSubscriber(self.address)
        except Exception as exc:  # e.g. a host name that does not resolve: say so on screen
            self._record_error(f"cannot listen on {self.address}: {exc}")
            return
        with subscriber:
            while not self._stopping.is_set():
                try:
                    status = subscriber.latest(self._poll_seconds)
                except TimeoutError:
                    continue
                except Exception as exc:  # a malformed message must not end the monitor
                    self._record_error(f"unreadable status message: {exc}")
                    continue
                if isinstance(status, dict):
                    self._record(status)
                else:
                    self._record_error(f"unreadable status message: a {type(status).__name__}, not a map")

    def _record(self, status: dict[str, Any]) -> None:
        with self._lock:
            state = self._state
            self._state = FeedState(status, time.monotonic(), state.started_at, state.received + 1, None)

    def _record_error(self, error: str) -> None:
        with self._lock:
            state = self._state
            self._state = FeedState(state.status, state.received_at, state.started_at, state.received, error)

    def __enter__(self) -> StatusFeed:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
