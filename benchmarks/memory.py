"""Resident-memory measurement of the benchmark process and the processes it started (via psutil)."""

from __future__ import annotations

import os
import threading
from types import TracebackType
from typing import Any

MB = 1024 * 1024


def _psutil() -> Any:
    """Import psutil lazily so that the runner itself does not depend on it."""
    import psutil

    return psutil


def descendants() -> list[Any]:
    """Return every live child (recursively) of the current process."""
    psutil = _psutil()
    try:
        return psutil.Process(os.getpid()).children(recursive=True)
    except psutil.Error:
        return []


def _rss(proc: Any) -> int:
    """RSS of ``proc`` in bytes, 0 if it vanished."""
    try:
        return int(proc.memory_info().rss)
    except _psutil().Error:
        return 0


def _describe(proc: Any) -> str:
    """Process name plus command line, lower-cased, for matching."""
    try:
        return (proc.name() + " " + " ".join(proc.cmdline())).lower()
    except _psutil().Error:
        return ""


def find_scheduler_process(pid: int | None = None) -> tuple[Any | None, str | None]:
    """Find the scheduler among the children of this process.

    ``pid``, when the engine knows it, wins. Otherwise a child whose name or command line contains
    ``scheduler`` is taken; failing that, the child with the largest RSS is returned together with a note
    saying the scheduler could not be identified.
    """
    children = descendants()
    for proc in children:
        if pid is not None and proc.pid == pid:
            return proc, None
    for proc in children:
        if "scheduler" in _describe(proc):
            return proc, None
    if not children:
        return None, "no child process found"
    largest = max(children, key=_rss)
    return largest, f"scheduler process not identified; reporting the largest child (pid {largest.pid})"


def rss_mb(proc: Any | None) -> float | None:
    """RSS of ``proc`` in MB, or ``None``."""
    if proc is None:
        return None
    value = _rss(proc)
    return value / MB if value else None


def rss_by_process() -> dict[int, int]:
    """RSS in bytes of this process and each of its descendants, by pid."""
    psutil = _psutil()
    procs = [psutil.Process(os.getpid()), *descendants()]
    return {p.pid: _rss(p) for p in procs}


def total_rss_mb() -> float:
    """Summed RSS in MB of this process and all its descendants (shared pages counted in each process)."""
    return sum(rss_by_process().values()) / MB


class RssSampler:
    """Sample RSS every ``interval`` seconds in a background thread and keep the peaks.

    ``peak_all_mb`` is the largest sum over this process and all its descendants seen at any one sample;
    ``peak_scheduler_mb`` the largest RSS of ``scheduler`` (if given).
    """

    def __init__(self, scheduler: Any | None = None, interval: float = 0.020) -> None:
        self.scheduler = scheduler
        self.interval = interval
        self.peak_all_mb = 0.0
        self.peak_scheduler_mb = 0.0
        self.samples = 0
        self._peak_by_pid: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def sample(self) -> None:
        """Take one sample now."""
        by_pid = rss_by_process()
        self.peak_all_mb = max(self.peak_all_mb, sum(by_pid.values()) / MB)
        for pid, rss in by_pid.items():
            self._peak_by_pid[pid] = max(rss, self._peak_by_pid.get(pid, 0))
        scheduler = rss_mb(self.scheduler)
        if scheduler is not None:
            self.peak_scheduler_mb = max(self.peak_scheduler_mb, scheduler)
        self.samples += 1

    def peak_by_process(self) -> dict[str, float]:
        """Peak RSS in MB of every process seen, labelled ``benchmark``, ``scheduler`` or ``child <pid>``."""
        scheduler_pid = getattr(self.scheduler, "pid", None)
        labels = {os.getpid(): "benchmark", scheduler_pid: "scheduler"}
        return {
            labels.get(pid, f"child {pid}"): round(rss / MB, 1)
            for pid, rss in sorted(self._peak_by_pid.items())
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
