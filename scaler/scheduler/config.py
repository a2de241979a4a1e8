"""Settings of a scheduler."""

from __future__ import annotations

import dataclasses

from scaler import defaults
from scaler.io.address import default_monitor_address, validate_address
from scaler.security import Security


@dataclasses.dataclass
class SchedulerConfig:
    """Everything a scheduler needs to start; every field defaults to scaler.defaults."""

    address: str
    monitor_address: str | None = None
    client_timeout_seconds: float = defaults.SCHEDULER_CLIENT_TIMEOUT_SECONDS
    worker_timeout_seconds: float = defaults.SCHEDULER_WORKER_TIMEOUT_SECONDS
    worker_answer_timeout_seconds: float = defaults.SCHEDULER_WORKER_ANSWER_TIMEOUT_SECONDS
    object_retention_seconds: float = defaults.SCHEDULER_OBJECT_RETENTION_SECONDS
    load_balance_seconds: float = defaults.SCHEDULER_LOAD_BALANCE_SECONDS
    load_balance_trigger_times: int = defaults.SCHEDULER_LOAD_BALANCE_TRIGGER_TIMES
    per_worker_queue_size: int = defaults.SCHEDULER_PER_WORKER_QUEUE_SIZE
    max_number_of_tasks_waiting: int = defaults.SCHEDULER_MAX_NUMBER_OF_TASKS_WAITING
    io_threads: int = defaults.SCHEDULER_IO_THREADS
    protected: bool = defaults.SCHEDULER_PROTECTED
    status_interval_seconds: float = defaults.SCHEDULER_STATUS_INTERVAL_SECONDS
    allowed_failures: int = defaults.SCHEDULER_ALLOWED_FAILURES
    event_loop: str = defaults.EVENT_LOOP
    # CURVE security (scaler.security, docs/security.md): off while curve_secret_key is None.
    curve_secret_key: str | None = None
    curve_allowed_clients: str | None = None
    curve_allowed_workers: str | None = None

    def __post_init__(self) -> None:
        validate_address(self.address)
        if self.monitor_address is not None:
            validate_address(self.monitor_address)
        else:
            default_monitor_address(self.address)  # raises ValueError if it would be out of range
        security = Security.from_settings(self)
        if security is not None:
            security.check_server()  # ValueError naming the setting that is missing or unreadable
