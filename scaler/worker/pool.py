"""A pool of workers on one machine: N agent processes, each with its processor."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing.connection
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

import zmq

from scaler.io.event_loop import run_on_loop
from scaler.utility.logging_setup import LoggingSettings, setup_logging
from scaler.utility.process_guard import die_with_parent, map_large_allocations, reset_inherited_signals
from scaler.worker.agent import WorkerAgent
from scaler.worker.config import WorkerConfig
from scaler.worker.processor_handle import process_context

logger = logging.getLogger(__name__)


def run_agent(config: WorkerConfig, logging_settings: LoggingSettings | None = None) -> None:
    """Entry point of an agent process."""
    reset_inherited_signals()
    die_with_parent(signal.SIGTERM)
    map_large_allocations()  # inherited by the processors this agent forks
    if logging_settings is not None:
        setup_logging(*logging_settings)
    context = zmq.Context(io_threads=config.io_threads)
    try:
        agent = WorkerAgent(config, context)
        run_on_loop(agent.run(), config.event_loop)
    finally:
        context.destroy(linger=0)
    if agent.failed:
        sys.exit(1)


def _numbered(name: str, index: int) -> str:
    """A name for the index-th worker of a pool; an empty name lets each agent pick its own."""
    return f"{name}-{index}" if name else ""


class WorkerPool:
    """Starts, watches and stops N worker agents (N may be 0: a pool with nothing to run)."""

    def __init__(
        self,
        base_config: WorkerConfig,
        n_workers: int,
        worker_names: Sequence[str] = (),
        logging_settings: LoggingSettings | None = None,
    ) -> None:
        if n_workers < 0:
            raise ValueError(f"a worker pool cannot have {n_workers} workers")
        if worker_names and len(worker_names) != n_workers:
            raise ValueError(f"{len(worker_names)} worker names given for {n_workers} workers")
        self._configs = [
            dataclasses.replace(base_config, name=worker_names[i] if worker_names else _numbered(base_config.name, i))
            for i in range(n_workers)
        ]
        self._logging_settings = logging_settings
        self._processes: list[Any] = []
        self._stop = threading.Event()
        if base_config.hard_processor_suspend:
            logger.warning(
                "hard_processor_suspend has no effect: a processor waiting on nested tasks is already idle, and "
                "stopped with SIGSTOP its client could neither heartbeat nor receive the results it waits for "
                "(the option is accepted for compatibility with Scaler 1.x)"
            )

    @property
    def processes(self) -> list[Any]:
        return list(self._processes)

    def start(self) -> None:
        """Start every agent process."""
        context = process_context()
        for index, config in enumerate(self._configs):
            process = context.Process(
                target=run_agent, args=(config, self._logging_settings), name=f"scaler-worker-{index}", daemon=False
            )
            process.start()
            self._processes.append(process)
        if self._configs:
            logger.info("started %d workers for %s", len(self._processes), self._configs[0].scheduler_address)

    def stop(self, timeout_seconds: float = 5.0) -> None:
        """Stop every agent (SIGTERM, then SIGKILL for any still alive after the timeout)."""
        for process in self._processes:
            if process.exitcode is None:
                process.terminate()
        deadline_each = max(0.1, timeout_seconds)
        for process in self._processes:
            process.join(timeout=deadline_each)
            if process.exitcode is None:
                process.kill()
                process.join(timeout=2)
        self._processes.clear()

    def run_until_signal(self) -> int:
        """Run in the foreground until SIGINT or SIGTERM, or until every agent has ended. Return 0 when
        stopped by a signal or when every agent ended well, 1 when every agent ended and one of them failed
        (the death timeout, a refusal by the scheduler)."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self._stop.set())
        self.start()
        status = 0
        try:
            while not self._stop.is_set():
                alive = [p for p in self._processes if p.exitcode is None]
                if not alive:
                    status = 1 if any(p.exitcode != 0 for p in self._processes) else 0
                    logger.info("every worker has stopped")
                    break
                multiprocessing.connection.wait([p.sentinel for p in alive], timeout=0.2)
        finally:
            self.stop()
        return status
