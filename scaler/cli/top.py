"""scaler_top MONITOR_ADDRESS: a full-screen monitor of a scheduler's status, or one status as text (--once)."""

from __future__ import annotations

import importlib
import sys

import click

from scaler.cli.common import address_argument, version_option
from scaler.io.status_subscriber import StatusSubscriber
from scaler.top.address_hint import no_status_message, something_listens
from scaler.top.figures import DEFAULT_SORT, SORT_KEYS
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


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@address_argument
@click.option("--once", is_flag=True, help="print one status as plain text and exit (for pipes and scripts)")
@click.option(
    "--interval",
    "-i",
    "interval_seconds",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="redraw the screen every this many seconds",
)
@click.option(
    "--timeout-seconds",
    "--timeout",
    "-t",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="with --once, give up when no status arrives for this long; full screen, say so after this long "
    "(and where the monitor probably is) and keep waiting",
)
@click.option(
    "--sort",
    type=click.Choice(SORT_KEYS),
    default=DEFAULT_SORT,
    show_default=True,
    help="the worker column to sort by (full screen: keys c cpu, m rss, u queued, r running, n name)",
)
@version_option
def main(address: str, once: bool, interval_seconds: float, timeout_seconds: float, sort: str) -> None:
    """Show the status a scheduler publishes on its monitor ADDRESS: its port + 1 unless it was started with
    --monitor-address (a scheduler on tcp://HOST:6378 publishes on tcp://HOST:6379).

    Full screen by default (q quits); without textual installed (pip install "scaler[monitor]"), or when the
    output is not a terminal, a plain view redrawn every interval.
    """
    if once:
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
