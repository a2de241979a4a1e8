"""scaler_ui MONITOR_ADDRESS: the web dashboard of a scheduler, served over HTTP."""

from __future__ import annotations

import sys
from typing import Any

import click

from scaler.cli.common import apply_logging, client_security
from scaler.cli.settings_options import settings_command
from scaler.ui import DashboardUnavailable


@settings_command("ui")
def main(**settings: Any) -> None:
    """Serve the dashboard of the scheduler publishing its status on MONITOR_ADDRESS (the scheduler's port + 1
    by default, e.g. tcp://127.0.0.1:8517) at http://HOST:PORT/, until SIGINT or SIGTERM."""
    apply_logging(settings)
    from scaler.ui.server import serve

    host, port = settings["host"], settings["port"]
    security = client_security(settings)
    try:
        serve(settings["monitor_address"], host, port, security=security)
    except DashboardUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot serve the dashboard on {host}:{port}: {exc}") from None
    sys.exit(0)


if __name__ == "__main__":
    main()
