"""Publishes the scheduler's status on the monitor socket once a second."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import msgpack
import psutil
import zmq


class StatusReporter:
    """Gathers each manager's figures and publishes them as one msgpack map on a PUB socket."""

    def __init__(self, socket: zmq.Socket, sources: dict[str, Callable[[], Any]]) -> None:
        self._socket = socket
        self._sources = sources
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent()

    def snapshot(self) -> dict[str, Any]:
        """The current status as a plain dict."""
        memory = self._process.memory_info()
        status: dict[str, Any] = {
            "time": time.time(),
            "scheduler": {
                "pid": self._process.pid,
                "cpu_percent": self._process.cpu_percent(),
                "rss_bytes": memory.rss,
            },
        }
        for name, source in self._sources.items():
            status[name] = source()
        return status

    def publish(self) -> None:
        """Send one status message; a slow subscriber never blocks the scheduler."""
        try:
            self._socket.send(msgpack.packb(self.snapshot(), use_bin_type=True), flags=zmq.NOBLOCK)
        except zmq.Again:
            pass
