"""scaler_scheduler ADDRESS: run a scheduler in the foreground."""

from __future__ import annotations

import logging
import sys

import click

from scaler import defaults
from scaler.cli.common import address_argument, apply_logging, logging_options, version_option
from scaler.io.address import default_monitor_address
from scaler.io.event_loop import EVENT_LOOPS
from scaler.scheduler.config import SchedulerConfig
from scaler.scheduler.process import run_scheduler
from scaler.ui import DashboardUnavailable
from scaler.ui.server import DashboardProcess, dashboard_host_for

logger = logging.getLogger("scaler.cli.scheduler")


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@address_argument
@click.option(
    "--client-timeout-seconds",
    "-ct",
    type=float,
    default=defaults.SCHEDULER_CLIENT_TIMEOUT_SECONDS,
    help="seconds of silence after which a client is dropped and its work cancelled",
)
@click.option(
    "--worker-timeout-seconds",
    "-wt",
    type=float,
    default=defaults.SCHEDULER_WORKER_TIMEOUT_SECONDS,
    help="seconds of silence after which a worker is declared dead and its tasks re-queued",
)
@click.option(
    "--object-retention-seconds",
    "-ors",
    "-ot",
    type=float,
    default=defaults.SCHEDULER_OBJECT_RETENTION_SECONDS,
    help="accepted for compatibility with Scaler 1.x, no effect: an object lives until its client deletes it, "
    "clears or leaves, and is deleted at once then (a warning is logged if this is set)",
)
@click.option(
    "--load-balance-seconds",
    "-ls",
    type=float,
    default=defaults.SCHEDULER_LOAD_BALANCE_SECONDS,
    help="seconds between two load-balancing passes",
)
@click.option(
    "--load-balance-trigger-times",
    "-lbt",
    type=int,
    default=defaults.SCHEDULER_LOAD_BALANCE_TRIGGER_TIMES,
    help="passes in a row that must see an idle worker before tasks move",
)
@click.option(
    "--per-worker-queue-size",
    "-qs",
    type=int,
    default=defaults.SCHEDULER_PER_WORKER_QUEUE_SIZE,
    help="largest number of tasks assigned to one worker at once",
)
@click.option(
    "--max-number-of-tasks-waiting",
    "-mt",
    type=int,
    default=defaults.SCHEDULER_MAX_NUMBER_OF_TASKS_WAITING,
    help="largest number of tasks waiting in the scheduler (-1: no limit); more fail at once",
)
@click.option(
    "--allowed-failures",
    type=int,
    default=defaults.SCHEDULER_ALLOWED_FAILURES,
    help="worker deaths a task survives before it fails with WorkerDiedError",
)
@click.option("--io-threads", "-it", type=int, default=defaults.SCHEDULER_IO_THREADS, help="ZeroMQ I/O threads")
@click.option("--event-loop", "-e", type=click.Choice(EVENT_LOOPS), default=defaults.EVENT_LOOP, help="event loop")
@click.option(
    "--protected/--unprotected",
    "-p/-up",
    default=defaults.SCHEDULER_PROTECTED,
    help="whether clients are refused when they ask to shut the cluster down",
)
@click.option(
    "--monitor-address",
    "-ma",
    default=None,
    help="address of the status PUB socket (default: the scheduler's port + 1)",
)
@click.option(
    "--dashboard-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="also serve the web dashboard (scaler_ui) on this port, on the scheduler's host "
    '(needs pip install "scaler[dashboard]")',
)
@logging_options
@version_option
def main(
    address: str,
    client_timeout_seconds: float,
    worker_timeout_seconds: float,
    object_retention_seconds: float,
    load_balance_seconds: float,
    load_balance_trigger_times: int,
    per_worker_queue_size: int,
    max_number_of_tasks_waiting: int,
    allowed_failures: int,
    io_threads: int,
    event_loop: str,
    protected: bool,
    monitor_address: str | None,
    dashboard_port: int | None,
    logging_paths: tuple[str, ...],
    logging_level: str,
    logging_config_file: str | None,
) -> None:
    """Run a scheduler listening on ADDRESS (for example tcp://0.0.0.0:8516) until SIGINT or SIGTERM."""
    apply_logging(logging_paths, logging_level, logging_config_file)
    config = SchedulerConfig(
        address=address,
        monitor_address=monitor_address,
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
    logger.info("scheduler options: %s", config)
    dashboard = None
    if dashboard_port is not None:
        dashboard = DashboardProcess(
            monitor_address or default_monitor_address(address),
            dashboard_host_for(address),
            dashboard_port,
            (logging_paths, logging_level, logging_config_file),
        )
        try:
            dashboard.start()
        except (DashboardUnavailable, RuntimeError) as exc:
            raise click.ClickException(str(exc)) from None
    try:
        run_scheduler(config)
    finally:
        if dashboard is not None:
            dashboard.shutdown(timeout_seconds=5)
    sys.exit(0)


if __name__ == "__main__":
    main()
