"""Does a connected dashboard slow the cluster down?

Starts a ``SchedulerClusterCombo`` and times a no-op map of ``--tasks`` tasks (default 10,000) in
``--pairs`` pairs of runs, each run the median of ``--repeats`` maps: one with a dashboard
(``scaler_ui``) serving the cluster's status to a connected viewer, one without, the order
alternating from pair to pair. The viewer is headless Chromium showing the page when ``--browser``
is given (and chromium and playwright are installed), else a reader of the page's event stream.
Prints each run, the medians and the ratio; exits with 0 when the median slowdown is within
``--limit-percent`` (default 3), else 1::

    python -m benchmarks.dashboard_overhead [--tasks 10000] [--pairs 10] [--repeats 3] [--workers 2] [--browser]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence

from benchmarks.tasks import noop
from scaler import Client, SchedulerClusterCombo
from scaler.io.address import default_monitor_address, free_tcp_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_for(url: str, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


class EventReader(threading.Thread):
    """Reads the dashboard's event stream as a browser would, counting the statuses it receives."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.events = 0
        self._stop = threading.Event()

    def run(self) -> None:
        with contextlib.suppress(OSError), urllib.request.urlopen(self.url, timeout=5) as stream:
            for line in stream:
                if line.startswith(b"data:"):
                    self.events += 1
                if self._stop.is_set():
                    return

    def stop(self) -> None:
        self._stop.set()


@contextlib.contextmanager
def dashboard(monitor_address: str, browser: bool) -> Iterator[str]:
    """A ``scaler_ui`` process with one viewer connected, for the time of the block."""
    port = free_tcp_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "scaler.cli.ui", monitor_address, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(url + "healthz", timeout_seconds=20)
        if browser:
            with viewed_in_chromium(url):
                yield url
        else:
            reader = EventReader(url + "api/events")
            reader.start()
            # Two statuses through: the dashboard has started, subscribed and pushes as it will all along.
            deadline = time.monotonic() + 10
            while reader.events < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            try:
                yield url
            finally:
                reader.stop()
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def viewed_in_chromium(url: str) -> Iterator[None]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector("[data-worker]", timeout=20_000)
            yield
        finally:
            context.close()


def timed_map(client: Client, tasks: int) -> float:
    arguments = [(i,) for i in range(tasks)]
    start = time.perf_counter()
    client.map(noop, arguments)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="maps per run; a run counts their median")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--browser", action="store_true", help="view the page in headless chromium")
    parser.add_argument("--limit-percent", type=float, default=3.0)
    options = parser.parse_args(argv)
    if options.browser and not os.path.exists(CHROMIUM):
        parser.error(f"--browser needs {CHROMIUM}")

    with SchedulerClusterCombo(n_workers=options.workers) as combo, Client(combo.get_address()) as client:
        monitor = default_monitor_address(combo.get_address())
        timed_map(client, options.tasks)  # warm-up: workers started, function known
        without: list[float] = []
        with_dashboard: list[float] = []
        for pair in range(options.pairs):
            order = ("without", "with") if pair % 2 == 0 else ("with", "without")
            for condition in order:
                if condition == "with":
                    with dashboard(monitor, options.browser):
                        seconds = statistics.median(timed_map(client, options.tasks) for _ in range(options.repeats))
                    with_dashboard.append(seconds)
                else:
                    seconds = statistics.median(timed_map(client, options.tasks) for _ in range(options.repeats))
                    without.append(seconds)
                print(f"pair {pair + 1:>2} {condition:<8} {options.tasks / seconds:>9,.0f} tasks/s", flush=True)
    ratios = [w / wo for w, wo in zip(with_dashboard, without, strict=True)]
    median_without = statistics.median(without)
    median_with = statistics.median(with_dashboard)
    slowdown = (statistics.median(ratios) - 1) * 100
    viewer = "headless chromium" if options.browser else "an event-stream reader"
    print(f"viewer: {viewer}; {options.pairs} pairs of {options.tasks:,} no-op tasks on {options.workers} workers")
    print(f"without dashboard: median {options.tasks / median_without:,.0f} tasks/s")
    print(f"with dashboard:    median {options.tasks / median_with:,.0f} tasks/s")
    print(f"median of the paired ratios (with / without, time): {statistics.median(ratios):.3f} ({slowdown:+.1f} %)")
    return 0 if slowdown <= options.limit_percent else 1


if __name__ == "__main__":
    sys.exit(main())
