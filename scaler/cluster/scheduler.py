"""Scheduler: a scheduler as a process a program starts, with the settings of ``scaler_scheduler``."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
from collections.abc import Sequence
from typing import Any

from scaler import defaults
from scaler.cluster.service import ServiceProcess, address_text, logging_settings, warn_ignored
from scaler.errors import StartError
from scaler.io.address import local_address
from scaler.scheduler.config import SchedulerConfig
from scaler.scheduler.process import run_scheduler


class Scheduler(ServiceProcess):
    """A scheduler in its own process.

    ``start()`` returns once the scheduler listens, and raises RuntimeError if it cannot (its port is
    taken, for instance); ``shutdown()`` (or ``terminate()`` and ``join()``) stops it. The first
    parameters come in the order of Scaler 1.x's ``SchedulerProcess``; every setting means what the
    ``scaler_scheduler`` option of the same name means. With no address, the scheduler listens on a
    free port of 127.0.0.1 (see ``get_address()``). A whole ``SchedulerConfig`` may be given instead,
    as ``config=`` or as the first argument.

    >>> with Scheduler("tcp://127.0.0.1:8516", protected=False) as scheduler:
    ...     ...  # connect Cluster(scheduler.get_address()) and Client(scheduler.get_address())
    """

    def __init__(
        self,
        address: str | SchedulerConfig | Any | None = None,
        monitor_address: str | Any | None = None,
        io_threads: int = defaults.SCHEDULER_IO_THREADS,
        max_number_of_tasks_waiting: int = defaults.SCHEDULER_MAX_NUMBER_OF_TASKS_WAITING,
        per_worker_queue_size: int = defaults.SCHEDULER_PER_WORKER_QUEUE_SIZE,
        client_timeout_seconds: float = defaults.SCHEDULER_CLIENT_TIMEOUT_SECONDS,
        worker_timeout_seconds: float = defaults.SCHEDULER_WORKER_TIMEOUT_SECONDS,
        object_retention_seconds: float = defaults.SCHEDULER_OBJECT_RETENTION_SECONDS,
        load_balance_seconds: float = defaults.SCHEDULER_LOAD_BALANCE_SECONDS,
        load_balance_trigger_times: int = defaults.SCHEDULER_LOAD_BALANCE_TRIGGER_TIMES,
        protected: bool = defaults.SCHEDULER_PROTECTED,
        event_loop: str = defaults.EVENT_LOOP,
        logging_paths: Sequence[str] | None = None,
        logging_config_file: str | None = None,
        *,
        logging_level: str | None = None,
        logging_path: Sequence[str] | None = None,
        allowed_failures: int = defaults.SCHEDULER_ALLOWED_FAILURES,
        config: SchedulerConfig | None = None,
        start_timeout_seconds: float = defaults.COMBO_START_TIMEOUT_SECONDS,
        **ignored: Any,
    ) -> None:
        """``logging_path`` is Scaler 1.x's name for ``logging_paths``; with no logging option the
        scheduler keeps the logging it inherits. Options of other Scaler versions are logged and ignored."""
        warn_ignored("Scheduler", ignored)
        if isinstance(address, SchedulerConfig):
            config, address = address, None
        if config is None:
            config = SchedulerConfig(
                address=address_text(address) if address is not None else local_address(),
                monitor_address=address_text(monitor_address) if monitor_address is not None else None,
                client_timeout_seconds=client_timeout_seconds,
                worker_timeout_seconds=worker_timeout_seconds,
                object_retention_seconds=object_retention_seconds,
                load_balance_seconds=load_balance_seconds,
                load_balance_trigger_times=load_balance_trigger_times,
                per_worker_queue_size=per_worker_queue_size,
                max_number_of_tasks_waiting=max_number_of_tasks_waiting,
                io_threads=io_threads,
                protected=protected,
                allowed_failures=allowed_failures,
                event_loop=event_loop,
            )
        paths = logging_paths if logging_paths is not None else logging_path
        super().__init__(
            "scaler-scheduler",
            logging_settings(paths, logging_level, logging_config_file),
        )
        self.config = config
        self._start_timeout_seconds = start_timeout_seconds
        self._tell_listening: multiprocessing.connection.Connection | None = None

    def get_address(self) -> str:
        """The address clients and workers connect to."""
        return self.config.address

    @property
    def address(self) -> str:
        """The address clients and workers connect to."""
        return self.config.address

    def start(self) -> None:
        """Start the scheduler's process; return once it listens, or raise StartError (a RuntimeError) saying
        why it cannot (its port is taken, for instance)."""
        listening, self._tell_listening = multiprocessing.Pipe(duplex=False)
        try:
            super().start()
        finally:
            self._tell_listening.close()
            self._tell_listening = None
        try:
            if listening.poll(self._start_timeout_seconds):
                answer = listening.recv()
                if answer is True:
                    return
                self.join(timeout=5)
                raise StartError(str(answer))
        except EOFError:  # the process ended without telling
            pass
        finally:
            listening.close()
        self.join(timeout=1)
        if self.exitcode is not None:
            raise StartError(
                f"the scheduler process ended at start (exit code {self.exitcode}) without listening on {self.address}"
            )
        self.kill()
        self.join(timeout=5)
        raise StartError(f"the scheduler did not listen on {self.address} within {self._start_timeout_seconds:g} s")

    def _serve(self) -> None:
        tell = self._tell_listening
        if tell is None:  # run() in the foreground: nobody waits to hear it
            run_scheduler(self.config)
            return
        try:
            run_scheduler(self.config, lambda: tell.send(True))
        except StartError as exc:
            tell.send(str(exc))
        finally:
            tell.close()

    def __repr__(self) -> str:
        state = "running" if self.pid is not None and self.exitcode is None else "not running"
        return f"<scaler.Scheduler {self.address} {state}>"


SchedulerProcess = Scheduler  # the name Scaler 1.x gave it in scaler.cluster.scheduler
