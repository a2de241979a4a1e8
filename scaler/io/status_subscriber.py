"""Reading the status a scheduler publishes on its monitor address (see scaler.scheduler.status_reporter)."""

from __future__ import annotations

import time
from typing import Any

import msgpack
import zmq

from scaler.security import Security, apply_client, process_default


class StatusSubscriber:
    """A SUB socket on a scheduler's monitor address."""

    def __init__(self, monitor_address: str, security: Security | None = None) -> None:
        """``security``: CURVE keys for a scheduler that has security on (else this process's default, if set)."""
        self.address = monitor_address
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.IPV6, 1)  # IPv6 addresses as well as IPv4 ones
        self.security = security if security is not None else process_default()
        if self.security is not None:
            apply_client(self._socket, self.security)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.connect(monitor_address)

    def latest(self, timeout_seconds: float) -> dict[str, Any]:
        """The newest status published so far, waiting up to ``timeout_seconds`` for one; TimeoutError if none."""
        status = None
        deadline = time.monotonic() + timeout_seconds
        while status is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._socket.poll(int(remaining * 1000)):
                raise TimeoutError(f"no status from {self.address} within {timeout_seconds:g} s")
            while self._socket.poll(0):
                status = msgpack.unpackb(self._socket.recv(), raw=False)
        return status

    def close(self) -> None:
        self._socket.close(linger=0)
        self._context.term()

    def __enter__(self) -> StatusSubscriber:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
