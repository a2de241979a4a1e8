"""SchedulerClusterCombo: a scheduler and N workers on this machine, for demos, tests and laptops."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from scaler import defaults
from scaler.cluster.cluster import default_number_of_workers
from scaler.cluster.scheduler import Scheduler
from scaler.cluster.service import address_text, logging_settings, warn_ignored
from scaler.io.address import default_monitor_address, local_address
from scaler.scheduler.config import SchedulerConfig
from scaler.ui.server import DashboardProcess
from scaler.worker.config import WorkerConfig
from scaler.worker.pool import WorkerPool

logger = logging.getLogger(__name__)


class SchedulerClusterCombo:
    """Starts a scheduler process and ``n_workers`` worker processes; ``shutdown()`` stops them all.

    With no address, the scheduler listens on a free port of 127.0.0.1; ``get_address()`` tells it.
    The constructor raises RuntimeError at once if the scheduler cannot start (its port is taken).
    ``n_workers`` comes first, as in Scaler 1.x, and may be 0 (a scheduler alone).
    With ``dashboard_port``, the web dashboard (``scaler_ui``) runs too, on 127.0.0.1 at that port (0: any
    free port); ``dashboard_address`` tells its URL. It needs ``pip install "scaler[dashboard]"``.
    """

    def __init__(
        self,
        n_workers: int | None = None,
        address: str | None = None,
        monitor_address: str | None = None,
        worker_io_threads: int = defaults.WORKER_IO_THREADS,
        scheduler_io_threads: int = defaults.SCHEDULER_IO_THREADS,
        max_number_of_tasks_waiting: int = defaults.SCHEDULER_MAX_NUMBER_OF_TASKS_WAITING,
        heartbeat_interval_seconds: float = defaults.WORKER_HEARTBEAT_INTERVAL_SECONDS,
        client_timeout_seconds: float = defaults.SCHEDULER_CLIENT_TIMEOUT_SECONDS,
        worker_timeout_seconds: float = defaults.SCHEDULER_WORKER_TIMEOUT_SECONDS,
        object_retention_seconds: float = defaults.SCHEDULER_OBJECT_RETENTION_SECONDS,
        task_timeout_seconds: float = defaults.WORKER_TASK_TIMEOUT_SECONDS,
        death_timeout_seconds: float = defaults.WORKER_DEATH_TIMEOUT_SECONDS,
        load_balance_seconds: float = defaults.SCHEDULER_LOAD_BALANCE_SECONDS,
        load_balance_trigger_times: int = defaults.SCHEDULER_LOAD_BALANCE_TRIGGER_TIMES,
        garbage_collect_interval_seconds: float = defaults.WORKER_GARBAGE_COLLECT_INTERVAL_SECONDS,
        trim_memory_threshold_bytes: int = defaults.WORKER_TRIM_MEMORY_THRESHOLD_BYTES,
        per_worker_queue_size: int = defaults.SCHEDULER_PER_WORKER_QUEUE_SIZE,
        hard_processor_suspend: bool = defaults.WORKER_HARD_PROCESSOR_SUSPEND,
        protected: bool = defaults.SCHEDULER_PROTECTED,
        event_loop: str = defaults.EVENT_LOOP,
        logging_paths: Sequence[str] | None = None,
        logging_level: str | None = None,
        logging_config_file: str | None = None,
        *,
        worker_names: Sequence[str] | None = None,
        allowed_failures: int = defaults.SCHEDULER_ALLOWED_FAILURES,
        dashboard_port: int | None = None,
        **ignored: Any,
    ) -> None:
        """With no logging option, the processes keep the logging they inherit from this one.
        Options of other Scaler versions are logged and ignored."""
        warn_ignored("SchedulerClusterCombo", ignored)
        if n_workers is None:
            n_workers = len(worker_names) if worker_names else default_number_of_workers()
        self._address = address_text(address) if address is not None else local_address()
        scheduler_config = SchedulerConfig(
            address=self._address,
            monitor_address=address_text(monitor_address) if monitor_address is not None else None,
            client_timeout_seconds=client_timeout_seconds,
            worker_timeout_seconds=worker_timeout_seconds,
            object_retention_seconds=object_retention_seconds,
            load_balance_seconds=load_balance_seconds,
            load_balance_trigger_times=load_balance_trigger_times,
            per_worker_queue_size=per_worker_queue_size,
            max_number_of_tasks_waiting=max_number_of_tasks_waiting,
            io_threads=scheduler_io_threads,
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
            io_threads=worker_io_threads,
            hard_processor_suspend=hard_processor_suspend,
            event_loop=event_loop,
        )
        self._stopped = True  # until everything has started: shutdown() then has nothing to do
        self._dashboard: DashboardProcess | None = None
        self._scheduler = Scheduler(
            config=scheduler_config,
            logging_paths=logging_paths,
            logging_level=logging_level,
            logging_config_file=logging_config_file,
        )
        worker_logging = logging_settings(logging_paths, logging_level, logging_config_file)
        self._pool = WorkerPool(worker_config, n_workers, worker_names or (), worker_logging)
        self._scheduler.start()
        try:
            self._pool.start()
        except BaseException:
            self._scheduler.shutdown()
            raise
        if dashboard_port is not None:
            monitor = scheduler_config.monitor_address or default_monitor_address(self._address)
            self._dashboard = DashboardProcess(monitor, "127.0.0.1", dashboard_port, worker_logging)
            try:
                self._dashboard.start()
            except BaseException:
                self._dashboard = None
                self._pool.stop()
                self._scheduler.shutdown(timeout_seconds=5)
                raise
        self._stopped = False

    def get_address(self) -> str:
        """The address clients connect to."""
        return self._address

    @property
    def scheduler_pid(self) -> int | None:
        """The process id of the scheduler."""
        return self._scheduler.pid

    @property
    def dashboard_address(self) -> str | None:
        """The http URL of the dashboard, or None without ``dashboard_port``."""
        return self._dashboard.url if self._dashboard is not None else None

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of the worker agents (each runs its processors as child processes)."""
        return [p.pid for p in self._pool.processes if p.pid is not None]

    def shutdown(self) -> None:
        """Stop every worker and the scheduler; returns when all their processes have exited."""
        if self._stopped:
            return
        self._stopped = True
        if self._dashboard is not None:
            self._dashboard.shutdown(timeout_seconds=5)
        self._pool.stop()
        self._scheduler.shutdown(timeout_seconds=5)

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
