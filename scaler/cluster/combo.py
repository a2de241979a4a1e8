"""SchedulerClusterCombo: a scheduler and N workers on this machine, for demos, tests and laptops."""

from __future__ import annotations

import logging
import multiprocessing.connection
import signal
from typing import Any

from scaler import defaults
from scaler.io.address import local_address, validate_address
from scaler.scheduler.config import SchedulerConfig
from scaler.scheduler.process import run_scheduler
from scaler.utility.process_guard import die_with_parent, reset_inherited_signals
from scaler.worker.config import WorkerConfig
from scaler.worker.pool import WorkerPool
from scaler.worker.processor_handle import process_context

logger = logging.getLogger(__name__)


def _scheduler_process_main(config: SchedulerConfig, listening: multiprocessing.connection.Connection) -> None:
    reset_inherited_signals()
    die_with_parent(signal.SIGTERM)
    run_scheduler(config, lambda: listening.send(True))


class SchedulerClusterCombo:
    """Starts a scheduler process and ``n_workers`` worker processes; ``shutdown()`` stops them all.

    With no address, the scheduler listens on a free port of 127.0.0.1; ``get_address()`` tells it.
    """

    def __init__(
        self,
        address: str | None = None,
        n_workers: int = max(1, multiprocessing.cpu_count() - 1),
        worker_names: list[str] | None = None,
        heartbeat_interval_seconds: float = defaults.WORKER_HEARTBEAT_INTERVAL_SECONDS,
        task_timeout_seconds: float = defaults.WORKER_TASK_TIMEOUT_SECONDS,
        death_timeout_seconds: float = defaults.WORKER_DEATH_TIMEOUT_SECONDS,
        garbage_collect_interval_seconds: float = defaults.WORKER_GARBAGE_COLLECT_INTERVAL_SECONDS,
        trim_memory_threshold_bytes: int = defaults.WORKER_TRIM_MEMORY_THRESHOLD_BYTES,
        hard_processor_suspend: bool = defaults.WORKER_HARD_PROCESSOR_SUSPEND,
        client_timeout_seconds: float = defaults.SCHEDULER_CLIENT_TIMEOUT_SECONDS,
        worker_timeout_seconds: float = defaults.SCHEDULER_WORKER_TIMEOUT_SECONDS,
        object_retention_seconds: float = defaults.SCHEDULER_OBJECT_RETENTION_SECONDS,
        load_balance_seconds: float = defaults.SCHEDULER_LOAD_BALANCE_SECONDS,
        load_balance_trigger_times: int = defaults.SCHEDULER_LOAD_BALANCE_TRIGGER_TIMES,
        per_worker_queue_size: int = defaults.SCHEDULER_PER_WORKER_QUEUE_SIZE,
        max_number_of_tasks_waiting: int = defaults.SCHEDULER_MAX_NUMBER_OF_TASKS_WAITING,
        allowed_failures: int = defaults.SCHEDULER_ALLOWED_FAILURES,
        protected: bool = defaults.SCHEDULER_PROTECTED,
        event_loop: str = defaults.EVENT_LOOP,
        monitor_address: str | None = None,
        **ignored: Any,
    ) -> None:
        if ignored:
            logger.warning("SchedulerClusterCombo: options not used by this version: %s", sorted(ignored))
        self._address = validate_address(address) if address is not None else local_address()
        scheduler_config = SchedulerConfig(
            address=self._address,
            monitor_address=monitor_address,
            client_timeout_seconds=client_timeout_seconds,
            worker_timeout_seconds=worker_timeout_seconds,
            object_retention_seconds=object_retention_seconds,
            load_balance_seconds=load_balance_seconds,
            load_balance_trigger_times=load_balance_trigger_times,
            per_worker_queue_size=per_worker_queue_size,
            max_number_of_tasks_waiting=max_number_of_tasks_waiting,
            protected=protected,
            allowed_failures=allowed_failures,
            event_loop=event_loop,
        )
        worker_config = WorkerConfig(
            scheduler_address=self._address,
            heartbeat_interval_seconds=heartbeat_interval_seconds,
            task_timeout_seconds=task_timeout_seconds,
            death_timeout_seconds=death_timeout_seconds,
            garbage_collect_interval_seconds=garbage_collect_interval_seconds,
            trim_memory_threshold_bytes=trim_memory_threshold_bytes,
            hard_processor_suspend=hard_processor_suspend,
            event_loop=event_loop,
        )
        listening, told_listening = multiprocessing.Pipe(duplex=False)
        self._scheduler = process_context().Process(
            target=_scheduler_process_main,
            args=(scheduler_config, told_listening),
            name="scaler-scheduler",
            daemon=False,
        )
        self._scheduler.start()
        told_listening.close()
        self._wait_for_scheduler(listening, defaults.COMBO_START_TIMEOUT_SECONDS)
        self._pool = WorkerPool(worker_config, n_workers, worker_names or ())
        self._pool.start()
        self._stopped = False

    def _wait_for_scheduler(self, listening: multiprocessing.connection.Connection, timeout_seconds: float) -> None:
        """Return once the scheduler's sockets are bound; raise if its process ended or took too long."""
        try:
            if listening.poll(timeout_seconds) and listening.recv():
                return
        except EOFError:  # the process ended without telling
            pass
        finally:
            listening.close()
        self._scheduler.join(timeout=1)
        if self._scheduler.exitcode is not None:
            raise RuntimeError(f"the scheduler process ended at start (exit code {self._scheduler.exitcode})")
        self._scheduler.kill()
        self._scheduler.join(timeout=5)
        raise RuntimeError(f"the scheduler did not listen on {self._address} within {timeout_seconds:g} s")

    def get_address(self) -> str:
        """The address clients connect to."""
        return self._address

    @property
    def scheduler_pid(self) -> int | None:
        return self._scheduler.pid

    @property
    def worker_pids(self) -> list[int]:
        return [p.pid for p in self._pool.processes if p.pid is not None]

    def shutdown(self) -> None:
        """Stop every worker and the scheduler; returns when all their processes have exited."""
        if self._stopped:
            return
        self._stopped = True
        self._pool.stop()
        if self._scheduler.exitcode is None:
            self._scheduler.terminate()
        multiprocessing.connection.wait([self._scheduler.sentinel], timeout=5)
        if self._scheduler.exitcode is None:
            self._scheduler.kill()
        self._scheduler.join(timeout=2)

    def __enter__(self) -> SchedulerClusterCombo:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    def __del__(self) -> None:
        try:
            self.shutdown()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<SchedulerClusterCombo {self._address} with {len(self._pool.processes)} workers>"
