"""Publishes the scheduler's status on the monitor socket once an interval (layout: docs/monitoring.md)."""

from __future__ import annotations

import collections
import os
import time
from typing import Any, Protocol

import msgpack
import psutil
import zmq

from scaler.scheduler.object_manager import ObjectManager
from scaler.scheduler.task_manager import TaskManager
from scaler.scheduler.worker_manager import WorkerManager
from scaler.version import __version__

# The layout's version, sent as "version": monitors can tell which fields to expect.
STATUS_VERSION = 2
# Seconds of throughput history sent with each status.
HISTORY_SECONDS = 60.0


class StatusSource(Protocol):
    """What the reporter reads: the scheduler core's managers and counters."""

    tasks: TaskManager
    workers: WorkerManager
    objects: ObjectManager
    counters: collections.Counter[str]

    def describe_clients(self) -> list[dict[str, Any]]: ...


class _Rate:
    """A running total turned into a rate per second between two readings."""

    def __init__(self, total: int, now: float) -> None:
        self._total = total
        self._time = now

    def update(self, total: int, now: float) -> float:
        elapsed = now - self._time
        rate = (total - self._total) / elapsed if elapsed > 0 else 0.0
        self._total, self._time = total, now
        return rate


class StatusReporter:
    """Builds each status from the managers' figures and publishes it as one msgpack map on a PUB socket."""

    def __init__(
        self, socket: zmq.Socket, source: StatusSource, address: str, interval_seconds: float, messages_sent: Any
    ) -> None:
        """``messages_sent`` is a callable returning how many messages the scheduler has sent so far."""
        self._socket = socket
        self._source = source
        self._address = address
        self._interval_seconds = interval_seconds
        self._messages_sent = messages_sent
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent()
        self._figures: tuple[float, int] = (0.0, 0)
        self._started = time.time()
        now = time.monotonic()
        self._received_rate = _Rate(0, now)
        self._sent_rate = _Rate(0, now)
        self._ended_rate = _Rate(0, now)
        # (monotonic time, unix time, tasks ended so far, ended per second over the interval before), starting
        # with one reading at or before the window's start.
        self._history: collections.deque[tuple[float, float, int, float]] = collections.deque(
            [(now, self._started, 0, 0.0)]
        )

    def _own_figures(self) -> tuple[float, int]:
        """This process's cpu and resident memory; the last ones read when /proc cannot be opened (every file
        descriptor taken, for instance): the status still goes out."""
        try:
            self._figures = (self._process.cpu_percent(), self._process.memory_info().rss)
        except (OSError, psutil.Error):
            pass
        return self._figures

    def snapshot(self) -> dict[str, Any]:
        """The current status as a plain dict."""
        source = self._source
        now, unix_now = time.monotonic(), time.time()
        received = source.counters["messages"]
        sent = self._messages_sent()
        cpu_percent, rss_bytes = self._own_figures()
        tasks = source.tasks.describe()
        ended = tasks["succeeded"] + tasks["failed"] + tasks["cancelled"]
        ended_per_second = self._ended_rate.update(ended, now)
        history = self._history
        history.append((now, unix_now, ended, ended_per_second))
        while len(history) > 2 and history[1][0] <= now - HISTORY_SECONDS:
            history.popleft()
        oldest_time, _, oldest_ended, _ = history[0]
        tasks["ended_per_second"] = ended_per_second
        tasks["ended_per_second_last_minute"] = (
            (ended - oldest_ended) / (now - oldest_time) if now > oldest_time else 0.0
        )
        tasks["throughput_history"] = [[unix, rate] for _, unix, _, rate in list(history)[1:]]
        return {
            "version": STATUS_VERSION,
            "time": unix_now,
            "interval_seconds": self._interval_seconds,
            "scheduler": {
                "address": self._address,
                "pid": self._process.pid,
                "version": __version__,
                "started": self._started,
                "cpu_percent": cpu_percent,
                "rss_bytes": rss_bytes,
                "messages_received": received,
                "messages_received_per_second": self._received_rate.update(received, now),
                "messages_sent": sent,
                "messages_sent_per_second": self._sent_rate.update(sent, now),
                "malformed_messages": source.counters["malformed"],
            },
            "tasks": tasks,
            "workers": source.workers.describe(),
            "clients": source.describe_clients(),
            "functions": source.tasks.activity.describe_functions(),
            "objects": source.objects.describe(),
            "task_stream": source.tasks.activity.take_task_stream(),
            "counters": dict(source.counters),
        }

    def publish(self) -> None:
        """Send one status message; a slow subscriber never blocks the scheduler."""
        try:
            self._socket.send(msgpack.packb(self.snapshot(), use_bin_type=True), flags=zmq.NOBLOCK)
        except zmq.Again:
            pass
