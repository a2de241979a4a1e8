"""Cluster: a pool of workers as a process a program starts, with the settings of ``scaler_worker``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from scaler import defaults
from scaler.cluster.service import ServiceProcess, address_text, logging_settings, warn_ignored
from scaler.settings import default_number_of_workers
from scaler.worker.config import WorkerConfig
from scaler.worker.pool import WorkerPool


class Cluster(ServiceProcess):
    """Workers for the scheduler at ``address``, in a process of their own that starts one process per worker.

    ``start()`` returns at once (workers connect and reconnect by themselves); ``shutdown()`` (or
    ``terminate()`` and ``join()``) stops every worker. The process also ends by itself once every
    worker has ended, e.g. after ``death_timeout_seconds`` without a scheduler. The first parameters
    come in the order of Scaler 1.x's ``Cluster``; every setting means what the ``scaler_worker``
    option of the same name means. There is one worker per name in ``worker_names``, else
    ``num_of_workers`` workers (default: one per core but one). A whole ``WorkerConfig`` may be given
    as ``config=`` instead of the worker settings.

    >>> with Cluster("tcp://127.0.0.1:8516", num_of_workers=4):
    ...     ...  # Client("tcp://127.0.0.1:8516").map(...)
    """

    def __init__(
        self,
        address: str | Any,
        worker_io_threads: int = defaults.WORKER_IO_THREADS,
        worker_names: Sequence[str] | None = None,
        heartbeat_interval_seconds: float = defaults.WORKER_HEARTBEAT_INTERVAL_SECONDS,
        task_timeout_seconds: float = defaults.WORKER_TASK_TIMEOUT_SECONDS,
        death_timeout_seconds: float = defaults.WORKER_DEATH_TIMEOUT_SECONDS,
        garbage_collect_interval_seconds: float = defaults.WORKER_GARBAGE_COLLECT_INTERVAL_SECONDS,
        trim_memory_threshold_bytes: int = defaults.WORKER_TRIM_MEMORY_THRESHOLD_BYTES,
        hard_processor_suspend: bool = defaults.WORKER_HARD_PROCESSOR_SUSPEND,
        event_loop: str = defaults.EVENT_LOOP,
        logging_paths: Sequence[str] | None = None,
        logging_level: str | None = None,
        logging_config_file: str | None = None,
        *,
        num_of_workers: int | None = None,
        per_worker_queue_size: int = 0,
        config: WorkerConfig | None = None,
        **ignored: Any,
    ) -> None:
        """With no logging option the workers keep the logging they inherit. Options of other Scaler
        versions are logged and ignored; ``per_worker_queue_size=0`` takes the scheduler's setting."""
        warn_ignored("Cluster", ignored)
        names = list(worker_names) if worker_names else []
        if names and num_of_workers is not None and num_of_workers != len(names):
            raise ValueError(f"{len(names)} worker names given for {num_of_workers} workers")
        self.num_of_workers = (
            len(names) if names else (num_of_workers if num_of_workers is not None else default_number_of_workers())
        )
        if self.num_of_workers < 0:
            raise ValueError(f"a cluster cannot have {self.num_of_workers} workers")
        if config is None:
            config = WorkerConfig(
                scheduler_address=address_text(address),
                per_worker_queue_size=per_worker_queue_size,
                heartbeat_interval_seconds=heartbeat_interval_seconds,
                task_timeout_seconds=task_timeout_seconds,
                death_timeout_seconds=death_timeout_seconds,
                garbage_collect_interval_seconds=garbage_collect_interval_seconds,
                trim_memory_threshold_bytes=trim_memory_threshold_bytes,
                io_threads=worker_io_threads,
                hard_processor_suspend=hard_processor_suspend,
                event_loop=event_loop,
            )
        else:
            config = dataclasses.replace(config, scheduler_address=address_text(address))
        super().__init__("scaler-cluster", logging_settings(logging_paths, logging_level, logging_config_file))
        self.config = config
        self.worker_names = names

    @property
    def address(self) -> str:
        """The address of the scheduler the workers serve."""
        return self.config.scheduler_address

    def _serve(self) -> None:
        pool = WorkerPool(self.config, self.num_of_workers, self.worker_names, self._logging)
        pool.run_until_signal()

    def __repr__(self) -> str:
        state = "running" if self.pid is not None and self.exitcode is None else "not running"
        return f"<scaler.Cluster of {self.num_of_workers} workers for {self.address} {state}>"
