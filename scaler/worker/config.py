"""Settings of a worker (one agent and its processors)."""

from __future__ import annotations

import dataclasses

from scaler import defaults
from scaler.security import Security


@dataclasses.dataclass
class WorkerConfig:
    """Everything a worker needs to start; every field defaults to scaler.defaults."""

    scheduler_address: str
    name: str = ""
    per_worker_queue_size: int = 0  # 0: take the scheduler's setting
    heartbeat_interval_seconds: float = defaults.WORKER_HEARTBEAT_INTERVAL_SECONDS
    task_timeout_seconds: float = defaults.WORKER_TASK_TIMEOUT_SECONDS
    death_timeout_seconds: float = defaults.WORKER_DEATH_TIMEOUT_SECONDS
    garbage_collect_interval_seconds: float = defaults.WORKER_GARBAGE_COLLECT_INTERVAL_SECONDS
    trim_memory_threshold_bytes: int = defaults.WORKER_TRIM_MEMORY_THRESHOLD_BYTES
    io_threads: int = defaults.WORKER_IO_THREADS
    hard_processor_suspend: bool = defaults.WORKER_HARD_PROCESSOR_SUSPEND
    event_loop: str = defaults.EVENT_LOOP
    prefetch_milliseconds: float = defaults.WORKER_PROCESSOR_PREFETCH_MILLISECONDS
    prefetch_max: int = defaults.WORKER_PROCESSOR_PREFETCH_MAX
    result_flush_seconds: float = defaults.WORKER_RESULT_FLUSH_SECONDS
    # CURVE security (scaler.security, docs/security.md): on when curve_server_key is set.
    curve_secret_key: str | None = None
    curve_server_key: str | None = None

    def __post_init__(self) -> None:
        security = Security.from_settings(self)
        if security is not None:
            security.check_client()  # ValueError naming the setting that is missing or unreadable
