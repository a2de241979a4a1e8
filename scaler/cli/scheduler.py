"""scaler_scheduler ADDRESS: run a scheduler in the foreground."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from scaler.cli.common import apply_logging
from scaler.cli.settings_options import settings_command
from scaler.cluster.configs import scheduler_config
from scaler.errors import StartError
from scaler.io.address import default_monitor_address
from scaler.scheduler.process import run_scheduler
from scaler.security import Security
from scaler.ui import DashboardUnavailable
from scaler.ui.server import DashboardProcess, dashboard_host_for

logger = logging.getLogger("scaler.cli.scheduler")


@settings_command("scheduler")
def main(**settings: Any) -> None:
    """Run a scheduler listening on ADDRESS (for example tcp://0.0.0.0:8516) until SIGINT or SIGTERM.

    Every option can also come from the environment (SCALER_SCHEDULER_<OPTION>) or from the [scheduler]
    section of a configuration file (-c FILE.toml).
    """
    logging_settings = apply_logging(settings)
    try:
        config = scheduler_config(settings)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    monitor_address = config.monitor_address or default_monitor_address(config.address)
    logger.info("scheduler options: %s", config)
    dashboard = None
    if settings["dashboard_port"] is not None:
        monitor_security = (
            Security(secret_key_file=config.curve_secret_key, server_key_file=config.curve_secret_key)
            if config.curve_secret_key
            else None
        )
        dashboard = DashboardProcess(
            monitor_address,
            dashboard_host_for(config.address),
            settings["dashboard_port"],
            logging_settings,
            security=monitor_security,
        )
        try:
            dashboard.start()
        except (DashboardUnavailable, RuntimeError) as exc:
            raise click.ClickException(str(exc)) from None
    try:
        run_scheduler(config)
    except StartError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if dashboard is not None:
            dashboard.shutdown(timeout_seconds=5)
    sys.exit(0)


if __name__ == "__main__":
    main()
