"""scaler_top MONITOR_ADDRESS: a full-screen monitor of a scheduler's status, or one status as text (--once)."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from scaler.cli.common import client_security
from scaler.cli.settings_options import settings_command
from scaler.io.status_subscriber import StatusSubscriber
from scaler.security import set_process_default
from scaler.top.address_hint import no_status_message, something_listens
from scaler.top.text_view import TEXTUAL_MISSING_NOTE, render, run_plain

__all__ = ["main", "render"]


def textual_available() -> bool:
    """Whether textual (the optional extra ``scaler[monitor]``) can be imported."""
    try:
        importlib.import_module("textual")
    except ImportError:
        return False
    return True


def print_once(address: str, timeout_seconds: float, sort: str) -> int:
    """Print one status as plain text; on no status, say where the monitor probably is. Returns the exit code."""
    with StatusSubscriber(address) as subscriber:
        try:
            status = subscriber.latest(timeout_seconds)
        except TimeoutError:
            click.echo(no_status_message(address, timeout_seconds, something_listens(address)), err=True)
            return 1
    click.echo(render(status, sort))
    return 0


@settings_command("top")
def main(**settings: Any) -> None:
    """Show the status a scheduler publishes on MONITOR_ADDRESS: its port + 1 unless it was started with
    --monitor-address (a scheduler on tcp://HOST:6378 publishes on tcp://HOST:6379).

    Full screen by default (q quits); without textual installed (pip install "scaler[monitor]"), or when the
    output is not a terminal, a plain view redrawn every interval.
    """
    security = client_security(settings)
    set_process_default(security)  # every StatusSubscriber of this process (plain and full screen) uses it
    address, interval_seconds = settings["monitor_address"], settings["interval_seconds"]
    timeout_seconds, sort = settings["timeout_seconds"], settings["sort"]
    if settings["once"]:
        sys.exit(print_once(address, timeout_seconds, sort))
    if not textual_available():
        note: str | None = TEXTUAL_MISSING_NOTE
    elif not sys.stdout.isatty():
        note = None  # redirected: plain frames rather than terminal escapes
    else:
        from scaler.top.app import run_app

        run_app(address, interval_seconds, timeout_seconds, sort)
        return
    try:
        run_plain(address, interval_seconds, timeout_seconds, sort, click.echo, click.clear, note)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
