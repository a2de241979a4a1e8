"""A scheduler and workers as separate processes, so a test can kill any one of them."""

from __future__ import annotations

import dataclasses
import random
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zmq.auth

from scaler.io.address import default_monitor_address, local_address
from scaler.io.status_subscriber import StatusSubscriber
from scaler.scheduler.config import SchedulerConfig
from scaler.scheduler.process import run_scheduler
from scaler.security import Security
from scaler.worker.config import WorkerConfig
from scaler.worker.pool import run_agent
from scaler.worker.processor_handle import process_context

FAST_HEARTBEAT_SECONDS = 0.25


@dataclasses.dataclass(frozen=True)
class CurveKeys:
    """CURVE key pairs for a scheduler, one client and one worker, and the scheduler's allow-lists."""

    directory: Path

    @classmethod
    def create(cls, directory: Path) -> CurveKeys:
        keys = directory / "keys"
        keys.mkdir()
        for name in ("scheduler", "client", "worker"):
            zmq.auth.create_certificates(str(keys), name)
        for role in ("client", "worker"):
            allowed = directory / f"allowed_{role}s"
            allowed.mkdir()
            shutil.copy(keys / f"{role}.key", allowed)
        return cls(directory)

    def _key(self, name: str, secret: bool) -> str:
        return str(self.directory / "keys" / f"{name}.key{'_secret' if secret else ''}")

    def scheduler_options(self) -> dict[str, Any]:
        return {
            "curve_secret_key": self._key("scheduler", True),
            "curve_allowed_clients": str(self.directory / "allowed_clients"),
            "curve_allowed_workers": str(self.directory / "allowed_workers"),
        }

    def worker_options(self) -> dict[str, Any]:
        return {"curve_secret_key": self._key("worker", True), "curve_server_key": self._key("scheduler", False)}

    def client(self) -> Security:
        """The client's keys (also what a monitor connects with)."""
        return Security(secret_key_file=self._key("client", True), server_key_file=self._key("scheduler", False))


class Cluster:
    """A scheduler process and worker agent processes started and stopped one by one."""

    def __init__(self, worker_options: dict[str, Any] | None = None, **scheduler_options: Any) -> None:
        self.address = local_address()
        self.monitor_address = default_monitor_address(self.address)
        self._worker_options = {"heartbeat_interval_seconds": FAST_HEARTBEAT_SECONDS, **(worker_options or {})}
        config = SchedulerConfig(
            address=self.address,
            monitor_address=self.monitor_address,
            status_interval_seconds=0.2,
            **scheduler_options,
        )
        self.scheduler = process_context().Process(target=run_scheduler, args=(config,), name="test-scheduler")
        self.scheduler.start()
        self.workers: list[Any] = []

    def add_worker(self, **options: Any) -> Any:
        """Start one more worker agent (with its processors)."""
        config = WorkerConfig(scheduler_address=self.address, **{**self._worker_options, **options})
        worker = process_context().Process(target=run_agent, args=(config, None), name="test-worker")
        worker.start()
        self.workers.append(worker)
        return worker

    def live_workers(self) -> list[Any]:
        return [w for w in self.workers if w.exitcode is None]

    def kill_worker(self, worker: Any) -> None:
        """SIGKILL a worker agent; its processors die with it."""
        worker.kill()
        worker.join(timeout=10)

    def kill_random_worker(self, rng: random.Random) -> None:
        live = self.live_workers()
        if live:
            self.kill_worker(rng.choice(live))

    def join_workers(self, timeout_seconds: float) -> bool:
        """Wait for every worker to exit on its own; return whether they all did."""
        deadline = time.monotonic() + timeout_seconds
        for worker in self.workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        return not self.live_workers()

    def stop(self) -> None:
        """Stop every process this cluster started (SIGTERM, then SIGKILL past a deadline)."""
        processes = [*self.workers, self.scheduler]
        for process in processes:
            if process.exitcode is None:
                process.terminate()
        for process in processes:
            process.join(timeout=10)
            if process.exitcode is None:
                process.kill()
                process.join(timeout=5)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


class StatusReader(StatusSubscriber):
    """The scheduler's status, with the tests' default wait."""

    def latest(self, timeout_seconds: float = 10.0) -> dict[str, Any]:
        return super().latest(timeout_seconds)


class TaskCountsSampler:
    """Keeps the ``tasks`` part of every status the scheduler publishes, read in a thread of its own (a
    StatusReader's socket must not be used from two threads)."""

    def __init__(self, status: StatusReader) -> None:
        self.counts: list[dict[str, Any]] = []
        self._status = status
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.counts.append(self._status.latest(timeout_seconds=1)["tasks"])
            except TimeoutError:
                pass

    def __enter__(self) -> TaskCountsSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def unfinished(self) -> list[int]:
        """The unfinished task count of each status kept."""
        return [int(counts["unfinished"]) for counts in self.counts]


@contextmanager
def supervised_workers(
    cluster: Cluster, count: int, kill_every_seconds: float | None = None, seed: int = 0
) -> Iterator[list[int]]:
    """Keep ``count`` workers alive, starting a replacement for each that dies.

    With ``kill_every_seconds``, also SIGKILL a random worker that often. Yields the pids of the workers
    that died, in order.
    """
    rng = random.Random(seed)
    stop = threading.Event()
    dead: list[int] = []
    next_kill = time.monotonic() + (kill_every_seconds or 0)

    def supervise() -> None:
        nonlocal next_kill
        while not stop.wait(0.05):
            if kill_every_seconds is not None and time.monotonic() >= next_kill:
                next_kill += kill_every_seconds
                cluster.kill_random_worker(rng)
            for worker in cluster.workers:
                if worker.exitcode is not None and worker.pid not in dead:
                    dead.append(worker.pid)
            for _ in range(count - len(cluster.live_workers())):
                cluster.add_worker()

    for _ in range(count - len(cluster.live_workers())):
        cluster.add_worker()
    thread = threading.Thread(target=supervise, name="worker-supervisor", daemon=True)
    thread.start()
    try:
        yield dead
    finally:
        stop.set()
        thread.join(timeout=30)
