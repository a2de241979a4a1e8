"""scaler_ui MONITOR_ADDRESS: the web dashboard of a scheduler, served over HTTP."""

from __future__ import annotations

import sys

import click

from scaler.cli.common import apply_logging, logging_options, version_option
from scaler.io.address import validate_address
from scaler.ui import DashboardUnavailable


def _check_address(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return validate_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.argument("monitor_address", metavar="MONITOR_ADDRESS", callback=_check_address)
@click.option("--host", default="127.0.0.1", help="interface the page is served on (0.0.0.0: every interface)")
@click.option("--port", type=click.IntRange(0, 65535), default=8787, help="TCP port of the page (0: any free port)")
@logging_options
@version_option
def main(
    monitor_address: str,
    host: str,
    port: int,
    logging_paths: tuple[str, ...],
    logging_level: str,
    logging_config_file: str | None,
) -> None:
    """Serve the dashboard of the scheduler publishing its status on MONITOR_ADDRESS (the scheduler's port + 1
    by default, e.g. tcp://127.0.0.1:8517) at http://HOST:PORT/, until SIGINT or SIGTERM."""
    apply_logging(logging_paths, logging_level, logging_config_file)
    from scaler.ui.server import serve

    try:
        serve(monitor_address, host, port)
    except DashboardUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot serve the dashboard on {host}:{port}: {exc}") from None
    sys.exit(0)


if __name__ == "__main__":
    main()
