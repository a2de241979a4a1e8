"""scaler_top MONITOR_ADDRESS: a live view of a scheduler's status."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from scaler.cli.common import address_argument
from scaler.io.status_subscriber import StatusSubscriber


def _megabytes(value: int) -> str:
    return f"{value / 1e6:,.1f} MB"


def render(status: dict[str, Any]) -> str:
    """A status message as text lines."""
    scheduler = status.get("scheduler", {})
    tasks = status.get("tasks", {})
    objects = status.get("objects", {})
    lines = [
        f"scheduler pid {scheduler.get('pid')}  cpu {scheduler.get('cpu_percent', 0):.0f}%  "
        f"rss {_megabytes(scheduler.get('rss_bytes', 0))}  clients {len(status.get('clients', []))}",
        f"tasks unfinished {tasks.get('unfinished', 0)}  queued {tasks.get('queued', 0)}  "
        f"submitted {tasks.get('submitted', 0)}  succeeded {tasks.get('ended_success', 0)}  "
        f"failed {tasks.get('ended_raised', 0)}  cancelled {tasks.get('ended_cancelled', 0)}",
        f"objects {objects.get('count', 0)} ({_megabytes(objects.get('bytes', 0))})",
        "",
        f"{'worker':<32} {'cpu':>6} {'rss':>12} {'assigned':>9} {'queued':>7} {'procs':>6}",
    ]
    for worker in status.get("workers", []):
        lines.append(
            f"{worker['name'][:32]:<32} {worker['cpu_percent']:>5.0f}% {_megabytes(worker['rss_bytes']):>12} "
            f"{worker['assigned']:>9} {worker['queued']:>7} {worker['processors']:>6}"
        )
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@address_argument
@click.option("--once", is_flag=True, help="print one status and exit")
@click.option(
    "--timeout-seconds",
    "--timeout",
    "-t",
    type=float,
    default=10.0,
    show_default=True,
    help="give up when no status arrives for this long",
)
def main(address: str, once: bool, timeout_seconds: float) -> None:
    """Show the status a scheduler publishes on its monitor ADDRESS (the scheduler's port + 1 by default)."""
    subscriber = StatusSubscriber(address)
    try:
        while True:
            try:
                status = subscriber.latest(timeout_seconds)
            except TimeoutError as exc:
                click.echo(str(exc), err=True)
                sys.exit(1)
            text = render(status)
            if once:
                click.echo(text)
                return
            click.clear()
            click.echo(time.strftime("%H:%M:%S  ") + address)
            click.echo(text)
    except KeyboardInterrupt:
        pass
    finally:
        subscriber.close()


if __name__ == "__main__":
    main()
