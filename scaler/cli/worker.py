"""scaler_worker -n N ADDRESS (also installed as scaler_cluster): run N workers in the foreground."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from scaler.cli.common import apply_logging
from scaler.cli.settings_options import settings_command
from scaler.cluster.configs import worker_config
from scaler.settings import default_number_of_workers
from scaler.worker.pool import WorkerPool

logger = logging.getLogger("scaler.cli.worker")


@settings_command("worker")
def main(**settings: Any) -> None:
    """Run NUM_OF_WORKERS workers serving the scheduler at ADDRESS until SIGINT or SIGTERM.

    Exits with status 0 when stopped by a signal, 1 when every worker ended without one (the scheduler
    stayed silent past the death timeout, or refused them). Every option can also come from the environment
    (SCALER_WORKER_<OPTION>) or from the [worker] section of a configuration file (-c FILE.toml).
    """
    logging_settings = apply_logging(settings)
    names = [name.strip() for name in settings["worker_names"].split(",") if name.strip()]
    number = settings["num_of_workers"] or len(names) or default_number_of_workers()
    if names and len(names) != number:
        raise click.BadParameter(f"{len(names)} names for {number} workers", param_hint="--worker-names")
    if settings["log_hub_address"] is not None:
        logger.warning("--log-hub-address is ignored: workers log where --logging-paths says")
    try:
        config = worker_config(settings)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    logger.info("starting %d workers for %s", number, config.scheduler_address)
    pool = WorkerPool(config, number, names, logging_settings)
    sys.exit(pool.run_until_signal())


if __name__ == "__main__":
    main()
