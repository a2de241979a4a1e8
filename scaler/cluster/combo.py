"""SchedulerClusterCombo: a scheduler and N workers on this machine, for demos, tests and laptops."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from scaler import settings as settings_module
from scaler.cluster import configs as scheduler_configs
from scaler.cluster.scheduler import Scheduler
from scaler.cluster.service import address_text, logging_settings, warn_ignored
from scaler.io.address import default_monitor_address, local_address
from scaler.security import Security
from scaler.settings import default_number_of_workers
from scaler.ui.server import DashboardProcess
from scaler.worker.pool import WorkerPool

logger = logging.getLogger(__name__)


def _is_setting(name: str) -> bool:
    return name in settings_module.names("scheduler") or name in settings_module.names("worker")


def _for_section(section: str, given: dict[str, Any]) -> dict[str, Any]:
    known = settings_module.names(section)
    return {name: value for name, value in given.items() if name in known}


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
        worker_io_threads: int | None = None,
        scheduler_io_threads: int | None = None,
        max_number_of_tasks_waiting: int | None = None,
        heartbeat_interval_seconds: float | None = None,
        client_timeout_seconds: float | None = None,
        worker_timeout_seconds: float | None = None,
        object_retention_seconds: float | None = None,
        task_timeout_seconds: float | None = None,
        death_timeout_seconds: float | None = None,
        load_balance_seconds: float | None = None,
        load_balance_trigger_times: int | None = None,
        garbage_collect_interval_seconds: float | None = None,
        trim_memory_threshold_bytes: int | None = None,
        per_worker_queue_size: int | None = None,
        hard_processor_suspend: bool | None = None,
        protected: bool | None = None,
        event_loop: str | None = None,
        logging_paths: Sequence[str] | None = None,
        logging_level: str | None = None,
        logging_config_file: str | None = None,
        *,
        worker_names: Sequence[str] | None = None,
        allowed_failures: int | None = None,
        dashboard_port: int | None = None,
        config_file: str | os.PathLike[str] | None = None,
        security: Security | None = None,
        **settings: Any,
    ) -> None:
        """Every setting of ``scaler_scheduler`` and ``scaler_worker`` (scaler.settings; docs: settings reference)
        may be given by its name; ``scheduler_io_threads`` and ``worker_io_threads`` tell the two ``io_threads``
        apart, and a setting both have (``event_loop``) goes to both. A setting not given comes from the
        ``[scheduler]`` and ``[worker]`` sections of ``config_file`` (TOML), else its default. A bad value raises
        ValueError naming it. With no logging option, the processes keep the logging they inherit from this one.
        Options of other Scaler versions are logged and ignored.

        ``security`` (scaler.security, docs/security.md) turns CURVE security on: its ``secret_key_file`` is the
        scheduler's key pair, its ``allowed_clients`` / ``allowed_workers`` who may connect; the combo's own
        workers and dashboard connect with the scheduler's key. Off by default."""
        ignored = {name: value for name, value in settings.items() if not _is_setting(name)}
        warn_ignored("SchedulerClusterCombo", ignored)
        given = {name: value for name, value in settings.items() if name not in ignored}
        given.update(
            monitor_address=monitor_address,
            max_number_of_tasks_waiting=max_number_of_tasks_waiting,
            heartbeat_interval_seconds=heartbeat_interval_seconds,
            client_timeout_seconds=client_timeout_seconds,
            worker_timeout_seconds=worker_timeout_seconds,
            object_retention_seconds=object_retention_seconds,
            task_timeout_seconds=task_timeout_seconds,
            death_timeout_seconds=death_timeout_seconds,
            load_balance_seconds=load_balance_seconds,
            load_balance_trigger_times=load_balance_trigger_times,
            garbage_collect_interval_seconds=garbage_collect_interval_seconds,
            trim_memory_threshold_bytes=trim_memory_threshold_bytes,
            per_worker_queue_size=per_worker_queue_size,
            hard_processor_suspend=hard_processor_suspend,
            protected=protected,
            event_loop=event_loop,
            allowed_failures=allowed_failures,
            dashboard_port=dashboard_port,
        )
        self._address = address_text(address) if address is not None else local_address()
        if config_file is not None and logging_paths is None and logging_level is None and logging_config_file is None:
            # No logging argument: the [scheduler] section's logging settings, if it has any, apply to every process.
            from_file = settings_module.read_config_file(config_file).get("scheduler", {})
            logging_paths = from_file.get("logging_paths")
            logging_level = from_file.get("logging_level")
            logging_config_file = from_file.get("logging_config_file")
        scheduler_settings = settings_module.resolve(
            "scheduler",
            {**_for_section("scheduler", given), "address": self._address, "io_threads": scheduler_io_threads},
            config_file,
        )
        worker_settings = settings_module.resolve(
            "worker",
            {
                **_for_section("worker", given),
                "scheduler_address": self._address,
                "io_threads": worker_io_threads,
                # the combo's workers take the combo's scheduler queue size unless the [worker] section sets one
                "per_worker_queue_size": None,
            },
            config_file,
        )
        if security is not None:
            scheduler_settings.update(
                curve_secret_key=security.secret_key_file,
                curve_allowed_clients=security.allowed_clients,
                curve_allowed_workers=security.allowed_workers,
            )
            if security.server_key_file is not None:
                worker_settings.update(curve_server_key=security.server_key_file)
        scheduler_key = scheduler_settings["curve_secret_key"]
        if scheduler_key is not None:
            # Unless told otherwise, the combo's workers hold the scheduler's own key, which it trusts as a worker's.
            worker_settings.update(
                curve_secret_key=worker_settings["curve_secret_key"] or scheduler_key,
                curve_server_key=worker_settings["curve_server_key"] or scheduler_key,
            )
        scheduler_config = scheduler_configs.scheduler_config(scheduler_settings)
        worker_config = scheduler_configs.worker_config(worker_settings)
        if n_workers is None:
            n_workers = len(worker_names) if worker_names else default_number_of_workers()
        dashboard_port = scheduler_settings["dashboard_port"]
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
            self._dashboard = DashboardProcess(
                monitor, "127.0.0.1", dashboard_port, worker_logging, security=Security.from_settings(worker_config)
            )
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
