"""scaler_worker -n N ADDRESS (also installed as scaler_cluster): run N workers in the foreground."""

from __future__ import annotations

import logging
import multiprocessing
import sys

import click

from scaler import defaults
from scaler.cli.common import address_argument, apply_logging, logging_options, version_option
from scaler.io.event_loop import EVENT_LOOPS
from scaler.worker.config import WorkerConfig
from scaler.worker.pool import WorkerPool

logger = logging.getLogger("scaler.cli.worker")


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@address_argument
@click.option(
    "--num-of-workers",
    "-n",
    type=int,
    default=max(1, multiprocessing.cpu_count() - 1),
    help="number of workers (each runs one task at a time)",
)
@click.option("--worker-names", "-wn", default="", help="comma-separated names, one per worker")
@click.option(
    "--heartbeat-interval",
    "-hi",
    type=float,
    default=defaults.WORKER_HEARTBEAT_INTERVAL_SECONDS,
    help="seconds between two heartbeats",
)
@click.option(
    "--task-timeout-seconds",
    "-tt",
    "-tts",
    type=float,
    default=defaults.WORKER_TASK_TIMEOUT_SECONDS,
    help="seconds a task may run before it is stopped with TimeoutError (0: no limit)",
)
@click.option(
    "--death-timeout-seconds",
    "-ds",
    type=float,
    default=defaults.WORKER_DEATH_TIMEOUT_SECONDS,
    help="seconds without the scheduler after which a worker exits",
)
@click.option(
    "--garbage-collect-interval-seconds",
    "-gc",
    type=float,
    default=defaults.WORKER_GARBAGE_COLLECT_INTERVAL_SECONDS,
    help="seconds between two garbage collections in an idle processor",
)
@click.option(
    "--trim-memory-threshold-bytes",
    "-tm",
    type=int,
    default=defaults.WORKER_TRIM_MEMORY_THRESHOLD_BYTES,
    help="resident bytes above which an idle processor gives memory back to the system",
)
@click.option(
    "--per-worker-queue-size",
    "-qs",
    type=int,
    default=0,
    help="largest number of tasks queued on each worker (0: the scheduler's setting)",
)
@click.option("--event-loop", "-el", type=click.Choice(EVENT_LOOPS), default=defaults.EVENT_LOOP, help="event loop")
@click.option("--io-threads", "-it", type=int, default=defaults.WORKER_IO_THREADS, help="ZeroMQ I/O threads")
@click.option(
    "--hard-processor-suspend",
    "-hps",
    is_flag=True,
    default=defaults.WORKER_HARD_PROCESSOR_SUSPEND,
    help="accepted for compatibility with Scaler 1.x, no effect: a processor waiting on nested tasks is already "
    "idle and lends its core to another processor; stopped with SIGSTOP, its client could neither heartbeat nor "
    "receive the results it waits for (a warning is logged if this is set)",
)
@click.option(
    "--log-hub-address",
    "-la",
    default=None,
    help="accepted for compatibility with Scaler 1.x and ignored: workers log where --logging-paths says",
)
@logging_options
@version_option
def main(
    address: str,
    num_of_workers: int,
    worker_names: str,
    heartbeat_interval: float,
    task_timeout_seconds: float,
    death_timeout_seconds: float,
    garbage_collect_interval_seconds: float,
    trim_memory_threshold_bytes: int,
    per_worker_queue_size: int,
    event_loop: str,
    io_threads: int,
    hard_processor_suspend: bool,
    log_hub_address: str | None,
    logging_paths: tuple[str, ...],
    logging_level: str,
    logging_config_file: str | None,
) -> None:
    """Run NUM_OF_WORKERS workers serving the scheduler at ADDRESS until SIGINT or SIGTERM."""
    logging_settings = apply_logging(logging_paths, logging_level, logging_config_file)
    names = [n.strip() for n in worker_names.split(",") if n.strip()]
    if names and len(names) != num_of_workers:
        raise click.BadParameter(f"{len(names)} names for {num_of_workers} workers", param_hint="--worker-names")
    if log_hub_address is not None:
        logger.warning("--log-hub-address is ignored: workers log where --logging-paths says")
    config = WorkerConfig(
        scheduler_address=address,
        per_worker_queue_size=per_worker_queue_size,
        heartbeat_interval_seconds=heartbeat_interval,
        task_timeout_seconds=task_timeout_seconds,
        death_timeout_seconds=death_timeout_seconds,
        garbage_collect_interval_seconds=garbage_collect_interval_seconds,
        trim_memory_threshold_bytes=trim_memory_threshold_bytes,
        io_threads=io_threads,
        hard_processor_suspend=hard_processor_suspend,
        event_loop=event_loop,
    )
    logger.info("starting %d workers for %s", num_of_workers, address)
    pool = WorkerPool(config, num_of_workers, names, logging_settings)
    sys.exit(pool.run_until_signal())


if __name__ == "__main__":
    main()
