"""The agent's side of one processor process: its socket, its shared memory, start and kill.

What the processor holds (tasks in flight, objects) is the agent state machine's business
(scaler/worker/processor_state.py); this handle is only the I/O.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
from collections.abc import Callable
from multiprocessing.sharedctypes import RawArray
from typing import Any

import psutil

from scaler.io.stream import AsyncStream
from scaler.worker.agent_events import Running
from scaler.worker.config import WorkerConfig
from scaler.worker.processor import SHARED_START_US, SHARED_TASK_ID, processor_main


def process_context() -> Any:
    """Processes start by fork where the platform has it (fast, and the child resets what it inherits)."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class ProcessorHandle:
    """One processor process.

    The agent and the processor talk over a socketpair; ``on_message`` gets each message the processor sends.
    """

    def __init__(self, number: int, config: WorkerConfig, on_message: Callable[[list[Any]], None]) -> None:
        agent_end, self._processor_end = socket.socketpair()
        self.stream = AsyncStream(agent_end, on_message, f"processor {number}")
        self.shared = RawArray("q", 2)
        self.process = process_context().Process(
            target=processor_main,
            args=(
                self._processor_end,
                config.scheduler_address,
                self.shared,
                config.garbage_collect_interval_seconds,
                config.trim_memory_threshold_bytes,
                config.result_flush_seconds,
            ),
            name=f"scaler-processor-{number}",
            daemon=True,
        )
        self._ps: psutil.Process | None = None

    def start(self) -> None:
        self.process.start()
        self._processor_end.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def sentinel(self) -> int:
        return self.process.sentinel

    def running_task(self) -> int:
        """Id of the task the processor runs now, 0 when it runs none."""
        return int(self.shared[SHARED_TASK_ID])

    def running(self) -> Running:
        """The task the processor runs now and when it started (monotonic seconds)."""
        shared = self.shared
        return Running(int(shared[SHARED_TASK_ID]), shared[SHARED_START_US] / 1_000_000)

    def kill(self) -> None:
        """Stop the process at once (SIGKILL ends a stopped process too)."""
        if self.process.pid is not None and self.process.exitcode is None:
            try:
                self.process.kill()
            except (ProcessLookupError, OSError):
                pass

    def exit_description(self) -> str:
        """How the process ended: its exit code or the signal that killed it."""
        self.process.join(timeout=1)
        code = self.process.exitcode
        if code is None:
            return "it is still running"
        if code < 0:
            try:
                return f"it was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"it was killed by signal {-code}"
        return f"it exited with code {code}"

    def figures(self) -> tuple[float, int]:
        """CPU percent and resident memory of the process."""
        try:
            if self._ps is None:
                self._ps = psutil.Process(self.process.pid)
                self._ps.cpu_percent()
            return self._ps.cpu_percent(), self._ps.memory_info().rss
        except (psutil.Error, ValueError, TypeError):
            return 0.0, 0
