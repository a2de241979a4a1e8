"""The web dashboard (scaler_ui): served by real processes over real sockets, and driven in headless Chromium.

The browser tests need Playwright (Python) and Debian's chromium; without them they skip, except in CI
(CI=true), where they fail. Nothing here downloads anything: the page's every asset comes from the package.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import msgpack
import pytest
import zmq

from benchmarks.dashboard_overhead import CHROMIUM_FLAGS
from scaler import Client, SchedulerClusterCombo
from scaler.io.address import default_monitor_address, local_address
from tests import tasks
from tests.helpers import wait_until

BIN = Path(sys.executable).parent
REPOSITORY = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 20_000


# ---------------------------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a GET; the status of an HTTP error too; OSError if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def answers(url: str) -> bool:
    try:
        return http_get(url, timeout=2)[0] == 200
    except OSError:
        return False


def json_when(url: str, condition: Any, timeout_seconds: float) -> Any:
    """Poll ``url`` until its JSON satisfies ``condition``; that JSON, or fail with the last one seen."""
    seen: list[Any] = [None]

    def check() -> bool:
        try:
            status, _, body = http_get(url, timeout=2)
        except OSError:
            return False
        if status != 200:
            return False
        seen[0] = json.loads(body)
        return bool(condition(seen[0]))

    assert wait_until(check, timeout_seconds, interval=0.1), f"{url} never satisfied the condition: {seen[0]!r}"
    return seen[0]


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def require_browser() -> str:
    """The chromium to drive; skips (outside CI) or fails (in CI) when it or Playwright is missing."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    executable = chromium_path()
    if executable is None:
        missing.append("chromium (apt-get install chromium)")
    if missing:
        message = "the browser tests need " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert executable is not None
    return executable


@contextmanager
def browser_page(tmp_path: Path) -> Iterator[Any]:
    """A page in a fresh headless Chromium (its own profile under tmp_path), closed on exit.

    ``page.problems`` collects script errors and console errors; ``page.foreign`` every request that left
    the page's own origin.
    """
    executable = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,  # the flags the dashboard benchmark starts Chromium with
            viewport={"width": 1400, "height": 900},
        )
        try:
            context.set_default_timeout(TIMEOUT_MS)
            page = context.pages[0] if context.pages else context.new_page()
            page.problems = []
            page.requests = []
            page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
            page.on(
                "console",
                lambda message: page.problems.append(f"console {message.type}: {message.text}")
                if message.type == "error"
                else None,
            )
            page.on("request", lambda request: page.requests.append(request.url))
            yield page
        finally:
            context.close()


def foreign_requests(page: Any, origin: str) -> list[str]:
    return [url for url in page.requests if not url.startswith(origin)]


def canvas_coloured_pixels(page: Any, canvas_id: str) -> int:
    """Pixels of a canvas drawn in a clear colour (the grid, lanes and labels are grey)."""
    return page.evaluate(
        """(id) => {
            const canvas = document.getElementById(id);
            if (!canvas.width || !canvas.height) return 0;
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let count = 0;
            for (let i = 0; i < data.length; i += 4) {
                if (data[i + 3] > 0 && Math.max(data[i], data[i + 1], data[i + 2])
                        - Math.min(data[i], data[i + 1], data[i + 2]) > 60) count += 1;
            }
            return count;
        }""",
        canvas_id,
    )


def data_number(page: Any, selector: str, attribute: str = "data-value") -> float:
    value = page.get_attribute(selector, attribute)
    return float(value) if value not in (None, "") else math.nan


def start_command(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


# ---------------------------------------------------------------------------------------------- the browser


@pytest.mark.timeout(90)
def test_dashboard_in_a_browser_follows_a_live_cluster(tmp_path: Path) -> None:
    """The issue's acceptance: workers listed, counts rising, chart, bars and task stream drawn."""
    require_browser()
    names = ["dash-worker-alpha", "dash-worker-beta"]
    succeeding, failing = 60, 3
    combo = SchedulerClusterCombo(n_workers=2, worker_names=names, dashboard_port=free_port())
    try:
        url = combo.dashboard_address
        assert url is not None and url.startswith("http://127.0.0.1:")
        origin = url.rstrip("/")
        with browser_page(tmp_path) as page:
            page.goto(url)
            for name in names:
                row = page.wait_for_selector(f'[data-worker="{name}"]')
                assert name in row.inner_text()
            page.wait_for_selector('#connection[data-state="live"]')

            with Client(combo.get_address(), timeout_seconds=30) as client:
                results = client.map(tasks.sleep_and_return, [(0.02, i) for i in range(succeeding)])
                assert results == list(range(succeeding))
                for future in [client.submit(tasks.raise_value_error, "boom") for _ in range(failing)]:
                    with pytest.raises(ValueError):
                        future.result(timeout=30)

                page.wait_for_function(
                    "n => Number(document.getElementById('tasks-succeeded').dataset.value) >= n", arg=succeeding
                )
                assert int(page.inner_text("#tasks-succeeded").replace(",", "")) >= succeeding
                page.wait_for_function(
                    "n => Number(document.getElementById('tasks-failed').dataset.value) >= n", arg=failing
                )
                # The throughput chart has points, a peak above zero, and its line drawn.
                page.wait_for_function(
                    """() => { const c = document.getElementById('throughput-chart');
                               return Number(c.dataset.points) >= 1 && Number(c.dataset.peak) > 0; }"""
                )
                assert canvas_coloured_pixels(page, "throughput-chart") > 50
                # Every worker has a memory bar drawn, and a CPU bar scaled by its processors.
                page.wait_for_function(
                    """(names) => names.every(name => {
                        const row = document.querySelector(`[data-worker="${name}"]`);
                        return row && row.querySelector('.bar-memory .bar-fill').getBoundingClientRect().width > 0;
                    })""",
                    arg=names,
                )
                for name in names:
                    processors = int(page.get_attribute(f'[data-worker="{name}"] .processors', "data-count"))
                    scale = data_number(page, f'[data-worker="{name}"] .bar-cpu', "data-scale")
                    assert scale == 100 * max(1, processors)
                page.wait_for_function(
                    "n => Number(document.getElementById('tasks-submitted').dataset.value) >= n",
                    arg=succeeding + failing,
                )
                screenshot = tmp_path / "dashboard.png"
                page.screenshot(path=str(screenshot), full_page=True)
                print(f"dashboard screenshot: {screenshot}")

                # The task stream: a span per task, lanes for both workers, the failures in red.
                page.click('[data-tab="stream"]')
                page.wait_for_selector("#view-stream:not([hidden])")
                page.wait_for_function(
                    """(n) => { const c = document.getElementById('task-stream-canvas');
                                return Number(c.dataset.spans) >= n && Number(c.dataset.drawn) >= n
                                       && Number(c.dataset.workers) === 2; }""",
                    arg=succeeding + failing,
                )
                spans = page.evaluate("() => window.scalerDashboard.spans()")
                assert {span["worker"] for span in spans} == set(names)
                assert sum(1 for span in spans if not span["ok"]) >= failing
                assert sum(1 for span in spans if span["fn"] == "sleep_and_return") >= succeeding
                assert canvas_coloured_pixels(page, "task-stream-canvas") > 200
                assert page.query_selector('#task-stream-legend [data-function="sleep_and_return"]') is not None
                page.screenshot(path=str(tmp_path / "task-stream.png"), full_page=True)

                # Functions and clients.
                page.click('[data-tab="functions"]')
                page.wait_for_function(
                    """(n) => { const row = document.querySelector('[data-function="sleep_and_return"] .fn-count');
                                return row && Number(row.dataset.value) >= n; }""",
                    arg=succeeding,
                )
                failures = data_number(page, '[data-function="raise_value_error"] .fn-failures')
                assert failures >= failing
                page.click('[data-tab="clients"]')
                page.wait_for_selector("#clients-body tr[data-client]")
                submitted = data_number(page, "#clients-body tr[data-client] .client-submitted")
                assert submitted >= succeeding + failing

            assert page.problems == []
            assert foreign_requests(page, origin) == []
    finally:
        combo.shutdown()


class _Publisher:
    """A stand-in scheduler: a PUB socket on a free port, publishing what the test says."""

    def __init__(self) -> None:
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(self.address)

    def send(self, status: dict[str, Any]) -> None:
        self._socket.send(msgpack.packb(status, use_bin_type=True))

    def close(self) -> None:
        self._socket.close(linger=0)
        self._context.term()


def _good_status(worker: str) -> dict[str, Any]:
    now = time.time()
    return {
        "version": 2,
        "time": now,
        "scheduler": {"address": "tcp://127.0.0.1:1", "pid": 1, "cpu_percent": 1.5, "rss_bytes": 10**8},
        "tasks": {"succeeded": 7, "throughput_history": [[now - 2, 1.0], [now - 1, 3.0], [now, 2.0]]},
        "workers": [{"name": worker, "cpu_percent": 150.0, "rss_bytes": 5 * 10**8, "processors": [
            {"pid": 2, "cpu_percent": 99.0, "rss_bytes": 10**8, "busy": True},
            {"pid": 3, "cpu_percent": 51.0, "rss_bytes": 10**8, "busy": False},
        ]}],
        "task_stream": [[worker, "f", now - 1.5, now - 0.5, True], [worker, "g", now - 1.0, now - 0.2, False]],
    }


# Statuses a page must survive: fields missing, of the wrong type, not finite, the older layout.
_ODD_STATUSES: list[dict[str, Any]] = [
    {},
    {"version": 2},
    {"version": "two", "time": "now", "scheduler": [], "tasks": "many", "workers": "none", "clients": 3,
     "functions": {"a": 1}, "objects": None, "task_stream": "x"},
    {"time": float("nan"), "scheduler": {"cpu_percent": float("inf"), "rss_bytes": -1, "pid": b"\x00\xff"},
     "tasks": {"succeeded": float("nan"), "throughput_history": [[1], "x", [None, 2], [float("inf"), 1]]}},
    {"workers": [None, 1, "w", {}, {"name": None}, {"name": 5, "processors": -3},
                 {"name": "odd", "processors": [None, 1, {"busy": "yes"}], "cpu_percent": "high", "rss_bytes": {}},
                 {"name": "many", "processors": 10**9, "heartbeat_age_seconds": 99}]},
    {"task_stream": [None, [], ["w"], ["w", "f", "a", "b", True], ["w", None, 5.0, 3.0, None],
                     {"worker": "w", "function": "f", "start": 1.0, "end": 2.0}, [1, 2, 3, 4, 5, 6]]},
    {"functions": [None, {}, {"name": "f", "count": "x", "mean_seconds": float("nan")},
                   {"name": "g", "max_seconds": -1}],
     "clients": [None, {}, {"number": "x", "name": {"a": 1}}, {"number": 1, "name": "c", "hostname": "h"}]},
    {  # the older layout of the status (before version 2)
        "time": time.time(), "scheduler": {"pid": 1, "cpu_percent": 0.0, "rss_bytes": 0},
        "clients": [{"number": 1, "name": "vm:1", "hostname": "vm", "tasks": 0, "objects": 1}],
        "workers": [{"name": "a", "hostname": "vm", "pid": 2, "assigned": 0, "held_seconds": 0.0, "queued": 0,
                     "processors": 2, "cpu_percent": 0.0, "rss_bytes": 0, "per_worker_queue_size": 1000}],
        "tasks": {"unfinished": 0, "queued": 0, "in_state": {"queued": 0, "assigned": 0, "waiting": 0},
                  "submitted": 100, "assigned": 100, "ended_success": 100, "steals": 1},
        "objects": {"count": 1, "bytes": 28}, "counters": {"messages": 18},
    },
]


def _deliver(publisher: _Publisher, page: Any, status: dict[str, Any]) -> None:
    """Publish ``status`` until the page has received it (a new subscriber misses the first messages)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    before = page.evaluate("() => window.scalerDashboard.received()")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        publisher.send(status)
        try:
            page.wait_for_function("n => window.scalerDashboard.received() > n", arg=before, timeout=300)
            return
        except PlaywrightTimeout:  # not there yet: publish again
            continue
    pytest.fail("the page never received a published status")


@pytest.mark.timeout(90)
def test_browser_survives_odd_statuses_and_marks_stale_and_disconnected(tmp_path: Path) -> None:
    require_browser()
    publisher = _Publisher()
    port = free_port()
    ui = start_command(str(BIN / "scaler_ui"), publisher.address, "--port", str(port))
    url = f"http://127.0.0.1:{port}/"
    try:
        assert wait_until(lambda: answers(url + "healthz"), 20, interval=0.1), "scaler_ui did not serve"
        with browser_page(tmp_path) as page:
            page.goto(url)
            # No status at all: the page says so.
            page.wait_for_selector('#connection[data-state="stale"]', timeout=8_000)
            assert page.is_visible("#stale-banner")

            for tab in ("overview", "stream", "functions", "clients"):
                page.click(f'[data-tab="{tab}"]')
                for status in _ODD_STATUSES:
                    _deliver(publisher, page, status)
            assert page.problems == [], page.problems

            page.click('[data-tab="overview"]')
            _deliver(publisher, page, _good_status("fake-worker"))
            page.wait_for_selector('[data-worker="fake-worker"]')
            page.wait_for_selector('#connection[data-state="live"]')
            assert page.is_hidden("#stale-banner")
            assert data_number(page, '[data-worker="fake-worker"] .bar-cpu', "data-scale") == 200
            assert page.get_attribute('[data-worker="fake-worker"] .processors', "data-count") == "2"
            assert len(page.query_selector_all('[data-worker="fake-worker"] .processor.busy')) == 1

            # Silence for more than 3 s: stale, then live again with the next status.
            page.wait_for_selector('#connection[data-state="stale"]', timeout=8_000)
            assert page.is_visible("#stale-banner")
            assert "stale" in page.inner_text("#stale-banner").lower()
            # A page opened now gets that old status at once, and knows it is old.
            page.reload()
            page.wait_for_function("() => window.scalerDashboard.received() >= 1")
            assert page.evaluate("() => window.scalerDashboard.connection()") == "stale"
            page.wait_for_selector('[data-worker="fake-worker"]')
            _deliver(publisher, page, _good_status("fake-worker"))
            page.wait_for_selector('#connection[data-state="live"]')

            # The dashboard server stops (with the browser's event stream open): cleanly, and the page says so.
            stopping = time.monotonic()
            ui.send_signal(signal.SIGTERM)
            assert ui.wait(timeout=15) == 0
            # The open event stream ends at once: no wait for uvicorn's graceful-shutdown timeout (3 s).
            assert time.monotonic() - stopping < 2.5
            page.wait_for_selector('#connection[data-state="disconnected"]', timeout=8_000)
            assert page.is_visible("#stale-banner")
            assert foreign_requests(page, url.rstrip("/")) == []
            # Only the failed reconnections of the EventSource may be reported once the server is gone.
            assert [p for p in page.problems if "api/events" not in p and "ERR_CONNECTION_REFUSED" not in p] == []
    finally:
        stop_process(ui)
        publisher.close()


# ---------------------------------------------------------------------------------------------- commands


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_scaler_ui_command_serves_the_status_and_stops_cleanly(
    cluster: SchedulerClusterCombo, signum: signal.Signals
) -> None:
    port = free_port()
    monitor = default_monitor_address(cluster.get_address())
    ui = start_command(str(BIN / "scaler_ui"), monitor, "--port", str(port))
    try:
        base = f"http://127.0.0.1:{port}"
        status = json_when(base + "/api/status", lambda s: len(s.get("workers", [])) == 2, 20)
        assert isinstance(status["workers"][0]["name"], str)
        assert "tasks" in status and "scheduler" in status
        health = json_when(base + "/healthz", lambda h: h["statuses_received"] >= 1, 10)
        assert health["ok"] is True and health["monitor_address"] == monitor
        ui.send_signal(signum)
        assert ui.wait(timeout=15) == 0
        output = ui.stdout.read().decode() if ui.stdout else ""
        assert f"http://127.0.0.1:{port}/" in output, output
        assert "Traceback" not in output and "ERROR" not in output, output
    finally:
        stop_process(ui)


@pytest.mark.timeout(60)
def test_api_status_is_503_until_a_status_arrives_and_a_taken_port_is_a_clear_error() -> None:
    port = free_port()
    silent = f"tcp://127.0.0.1:{free_port()}"
    ui = start_command(str(BIN / "scaler_ui"), silent, "--port", str(port))
    second = None
    try:
        assert wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), 20, interval=0.1)
        code, _, body = http_get(f"http://127.0.0.1:{port}/api/status")
        assert code == 503 and "no status" in json.loads(body)["error"]
        second = start_command(str(BIN / "scaler_ui"), silent, "--port", str(port))
        assert second.wait(timeout=30) == 1
        output = second.stdout.read().decode() if second.stdout else ""
        assert f"cannot serve the dashboard on 127.0.0.1:{port}" in output, output
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=15) == 0
    finally:
        stop_process(ui)
        if second is not None:
            stop_process(second)


def test_scaler_ui_without_starlette_says_how_to_install_it(tmp_path: Path) -> None:
    blocked = tmp_path / "starlette"
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ImportError('starlette is blocked by the test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPOSITORY)])}
    result = subprocess.run(
        [str(BIN / "scaler_ui"), "tcp://127.0.0.1:1", "--port", "0"], capture_output=True, timeout=60, env=env
    )
    assert result.returncode == 1
    assert b'pip install "scaler[dashboard]"' in result.stderr, result.stderr


def test_scaler_ui_has_help() -> None:
    result = subprocess.run([str(BIN / "scaler_ui"), "--help"], capture_output=True, timeout=60)
    assert result.returncode == 0
    assert b"MONITOR_ADDRESS" in result.stdout and b"--port" in result.stdout and b"--host" in result.stdout


@pytest.mark.timeout(90)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_scheduler_command_starts_the_dashboard_with_dashboard_port(signum: signal.Signals) -> None:
    """The dashboard runs next to the scheduler, and ends with it (even when the scheduler is killed)."""
    address = local_address()
    port = free_port()
    scheduler = start_command(str(BIN / "scaler_scheduler"), address, "--dashboard-port", str(port))
    try:
        status = json_when(f"http://127.0.0.1:{port}/api/status", lambda s: "scheduler" in s, 30)
        assert status["scheduler"].get("address", address) == address
        scheduler.send_signal(signum)
        assert scheduler.wait(timeout=30) == (0 if signum == signal.SIGTERM else -signal.SIGKILL)
        assert wait_until(lambda: not answers(f"http://127.0.0.1:{port}/healthz"), 10, interval=0.1)
    finally:
        stop_process(scheduler)


# ---------------------------------------------------------------------------------------------- the page


_URL_ATTRIBUTE = re.compile(r"""\b(?:src|href|action)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]*)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+["']([^"']+)""", re.IGNORECASE)
_ABSOLUTE_URL = re.compile(r"""["'`(]\s*(?:https?:|wss?:)?//[^"'`)\s]*""", re.IGNORECASE)


def _is_same_origin(reference: str, base: str) -> bool:
    if reference.startswith(("data:", "#")):
        return True
    target = urlparse(urljoin(base, reference))
    origin = urlparse(base)
    return (target.scheme, target.netloc) == (origin.scheme, origin.netloc)


@pytest.mark.timeout(60)
def test_the_page_uses_no_external_url(cluster: SchedulerClusterCombo) -> None:
    from scaler.ui.server import DashboardProcess

    assert cluster.dashboard_address is None  # no dashboard unless asked for
    dashboard = DashboardProcess(default_monitor_address(cluster.get_address()), "127.0.0.1", 0)
    dashboard.start()
    try:
        base = dashboard.url
        code, headers, body = http_get(base)
        assert code == 200
        html = body.decode()
        references = _URL_ATTRIBUTE.findall(html)
        assert any(reference.endswith("dashboard.js") for reference in references)
        assert any(reference.endswith("dashboard.css") for reference in references)
        foreign = [reference for reference in references if not _is_same_origin(reference, base)]
        assert foreign == [], foreign
        assert "default-src 'self'" in headers.get("content-security-policy", "")

        for reference in references:
            if reference.startswith(("data:", "#")):
                continue
            code, _, asset = http_get(urljoin(base, reference))
            assert code == 200, reference
            text = asset.decode()
            nested = _CSS_URL.findall(text) + _CSS_IMPORT.findall(text)
            assert [r for r in nested if r and not _is_same_origin(r, base)] == [], reference
            assert _ABSOLUTE_URL.findall(text) == [], reference
    finally:
        dashboard.shutdown()


# ---------------------------------------------------------------------------------------------- the feed


async def test_status_feed_keeps_only_the_newest_status_for_a_slow_browser() -> None:
    from scaler.ui.status_feed import StatusFeed

    publisher = _Publisher()
    feed = StatusFeed(publisher.address)
    await feed.start()
    try:
        with feed.subscribe() as fast, feed.subscribe() as slow:
            # A subscriber joins late: publish until the feed hears.
            deadline = time.monotonic() + 10
            while feed.statuses_received == 0 and time.monotonic() < deadline:
                publisher.send({"sequence": -1})
                await asyncio.sleep(0.02)
            assert feed.statuses_received > 0
            assert json.loads(await fast.next(1.0) or "null")["sequence"] == -1
            for sequence in range(50):
                publisher.send({"sequence": sequence, "nan": float("nan"), "raw": b"\xffbytes"})
            deadline = time.monotonic() + 10
            while (feed.latest or {}).get("sequence") != 49 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            newest = json.loads(await slow.next(1.0) or "null")
            assert newest["sequence"] == 49 and newest["nan"] is None and newest["raw"].endswith("bytes")
            assert await slow.next(0.05) is None  # nothing older is left over
            assert slow.dropped > 0
            assert json.loads(await fast.next(1.0) or "null")["sequence"] == 49
            assert json.loads(feed.latest_json or "null")["sequence"] == 49
            assert feed.subscriber_count == 2
        assert feed.subscriber_count == 0
    finally:
        await feed.stop()
        publisher.close()
