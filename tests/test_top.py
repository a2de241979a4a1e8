"""scaler_top: the figures a status turns into, --once against a live cluster, and the full-screen monitor in tmux."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from scaler import Client, SchedulerClusterCombo
from scaler.io.address import default_monitor_address, free_tcp_port
from scaler.top.address_hint import no_status_message, something_listens, suggested_monitor_address
from scaler.top.feed import StatusFeed
from scaler.top.figures import (
    SORT_KEYS,
    format_bytes,
    format_rate,
    format_seconds,
    header_sections,
    identity,
    objects_section,
    sort_label,
    stale_mark,
    tasks_now_section,
    tasks_total_section,
    worker_rows,
)
from scaler.top.text_view import TEXTUAL_MISSING_NOTE, render
from tests.helpers import wait_until

BIN = Path(sys.executable).parent
TMUX = shutil.which("tmux")
IN_CI = os.environ.get("CI") == "true"
requires_tmux = pytest.mark.skipif(
    TMUX is None and not IN_CI, reason="tmux is not installed (with CI=true these tests run, and fail without it)"
)


def a_status(**overrides: Any) -> dict[str, Any]:
    """A status of layout version 2 (docs/monitoring.md) with three workers."""
    status: dict[str, Any] = {
        "version": 2,
        "time": 1_000_100.0,
        "interval_seconds": 1.0,
        "scheduler": {
            "address": "tcp://10.0.0.1:6378",
            "pid": 4711,
            "version": "0.1.0",
            "started": 1_000_000.0,
            "cpu_percent": 12.4,
            "rss_bytes": 45_000_000,
            "messages_received_per_second": 830.0,
            "messages_sent_per_second": 810.0,
            "malformed_messages": 0,
        },
        "tasks": {
            "waiting": 3,
            "queued": 5,
            "assigned": 36,
            "running": 4,
            "suspended": 1,
            "unfinished": 48,
            "submitted": 1000,
            "succeeded": 940,
            "failed": 2,
            "cancelled": 1,
            "ended_per_second": 88.0,
            "ended_per_second_last_minute": 71.3,
            "throughput_history": [[1_000_099.0, 80.0], [1_000_100.0, 88.0]],
        },
        "workers": [
            {
                "name": "beta",
                "cpu_percent": 203.0,
                "rss_bytes": 240_000_000,
                "queued": 16,
                "running": 2,
                "processors": [{"pid": 1, "busy": True}, {"pid": 2, "busy": True}],
                "succeeded": 300,
                "failed": 2,
                "heartbeat_age_seconds": 0.8,
            },
            {
                "name": "alpha",
                "cpu_percent": 3.0,
                "rss_bytes": 80_000_000,
                "queued": 18,
                "running": 0,
                "processors": [{"pid": 3, "busy": False}, {"pid": 4, "busy": False}],
                "succeeded": 340,
                "failed": 0,
                "heartbeat_age_seconds": 0.1,
            },
            {
                "name": "gamma",
                "cpu_percent": 103.0,
                "rss_bytes": 160_000_000,
                "queued": 2,
                "running": 1,
                "processors": [{"pid": 5, "busy": True}, {"pid": 6, "busy": False}],
                "succeeded": 300,
                "failed": 0,
                "heartbeat_age_seconds": 1.9,
            },
        ],
        "clients": [{"number": 1, "name": "notebook", "tasks": 48, "objects": 5, "submitted": 1000}],
        "functions": [
            {"name": "square", "count": 12, "mean_seconds": 0.0004, "max_seconds": 0.001, "failures": 2},
            {"name": "simulate", "count": 928, "mean_seconds": 0.5, "max_seconds": 2.5, "failures": 0},
        ],
        "objects": {"count": 3, "bytes": 1234, "functions": 2, "function_bytes": 3456},
        "task_stream": [],
    }
    status.update(overrides)
    return status


def figures_of(section: Any) -> dict[str, str]:
    return {figure.label: figure.value for figure in section.figures}


# -- the figures: pure functions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("cpu", ["beta", "gamma", "alpha"]),
        ("rss", ["beta", "gamma", "alpha"]),
        ("queued", ["alpha", "beta", "gamma"]),
        ("running", ["beta", "gamma", "alpha"]),
        ("name", ["alpha", "beta", "gamma"]),
        ("heartbeat", ["gamma", "beta", "alpha"]),
    ],
)
def test_workers_sort_largest_first_and_names_a_to_z_and_reverse_flips_it(sort: str, expected: list[str]) -> None:
    assert [row.name for row in worker_rows(a_status(), sort)] == expected
    assert [row.name for row in worker_rows(a_status(), sort, reverse=True)] == expected[::-1]


def test_equal_values_keep_name_order_and_an_unknown_sort_key_is_refused() -> None:
    status = a_status(workers=[{"name": name, "cpu_percent": 50.0} for name in ("c", "a", "b")])
    assert [row.name for row in worker_rows(status, "cpu")] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="choose one of"):
        worker_rows(status, "colour")
    assert {"cpu", "rss", "queued", "running", "name"} <= set(SORT_KEYS)
    assert sort_label("cpu") == "cpu %, largest first" and sort_label("name", reverse=True) == "worker, Z to A"


def test_worker_cells_show_cpu_of_one_core_busy_processors_and_the_heartbeat_age() -> None:
    beta = worker_rows(a_status(), "cpu")[0]
    assert beta.cells() == ("beta", "203", "240.0 MB", "2/2", "16", "2", "300", "2", "800 ms")


def test_scheduler_and_worker_queues_are_labelled_apart() -> None:
    now = figures_of(tasks_now_section(a_status()))
    assert now["queued in scheduler"] == "5" and now["queued on workers"] == "36"
    assert now["running"] == "4" and now["suspended"] == "1" and now["waiting on dependencies"] == "3"
    totals = figures_of(tasks_total_section(a_status()))
    assert (totals["succeeded"], totals["failed"], totals["cancelled"]) == ("940", "2", "1")
    assert (totals["throughput now"], totals["last minute"]) == ("88/s", "71/s")


def test_the_object_store_counts_functions_apart_from_objects() -> None:
    objects = figures_of(objects_section(a_status()))
    assert objects["objects"] == "3 (1.2 kB)" and objects["functions"] == "2 (3.5 kB)"


def test_the_identity_line_names_the_scheduler_and_flags_an_older_layout() -> None:
    assert identity(a_status()) == "scheduler pid 4711 at tcp://10.0.0.1:6378, scaler 0.1.0, up 1m 40s"
    assert "status layout 1" in identity({"scheduler": {"pid": 1}})


def test_missing_fields_show_as_a_dash_instead_of_failing() -> None:
    older = {  # what a scheduler of layout 1 sends
        "scheduler": {"pid": 7, "cpu_percent": 0.0, "rss_bytes": 1},
        "tasks": {"queued": 0, "ended_success": 5},
        "workers": [{"name": "old", "assigned": 0, "queued": 3, "processors": 2, "cpu_percent": 1.0, "rss_bytes": 0}],
        "clients": [{"number": 1}],
    }
    text = render(older)
    assert "succeeded -" in text and "queued in scheduler 0" in text
    assert worker_rows(older)[0].cells()[3] == "-/2"
    for broken in ({}, {"workers": "nonsense", "tasks": [], "functions": [1, None]}, {"scheduler": None}):
        assert "scheduler pid -" in render(broken)


def test_render_labels_every_figure_and_column_and_keeps_the_worker_order() -> None:
    text = render(a_status(), sort="name")
    for label in [
        "scheduler pid 4711",
        "cpu 12 % of one core",
        "messages in 830/s",
        "queued in scheduler 5",
        "queued on workers 36",
        "running 4",
        "suspended 1",
        "waiting on dependencies 3",
        "succeeded 940",
        "functions 2 (3.5 kB)",
        "cpu %",
        "processors busy/total",
        "queued on worker",
        "heartbeat age",
        "mean time",
        "max time",
        "failures",
        "unfinished tasks",
        "notebook",
        "of one core",
    ]:
        assert label in text, label
    assert text.index("alpha") < text.index("beta") < text.index("gamma")
    assert text.index("simulate") < text.index("square")  # the most total run time first
    assert len(header_sections(a_status())) == 4


def test_formats() -> None:
    assert [format_bytes(v) for v in (None, 12, 1234, 45_000_000, 3e9)] == ["-", "12 B", "1.2 kB", "45.0 MB", "3.0 GB"]
    assert [format_seconds(v) for v in (0, 0.0004, 0.25, 3.44, 307, 7380)] == [
        "0 s",
        "0.4 ms",
        "250 ms",
        "3.4 s",
        "5m 07s",
        "2h 03m",
    ]
    assert [format_rate(v) for v in (None, 2.54, 1234.0)] == ["-", "2.5/s", "1,234/s"]


def test_stale_after_three_publishing_intervals() -> None:
    assert stale_mark(None, None) is None
    assert stale_mark(a_status(), 2.9) is None
    assert stale_mark(a_status(), 7.2) == "STALE: no status for 7 s; the figures below are from then (still waiting)"
    slow = a_status(interval_seconds=5.0)
    assert stale_mark(slow, 14.0) is None and stale_mark(slow, 16.0) is not None


def test_the_monitor_address_is_the_next_port_or_the_monitor_path() -> None:
    assert suggested_monitor_address("tcp://127.0.0.1:6378") == "tcp://127.0.0.1:6379"
    assert suggested_monitor_address("tcp://[::1]:8000") == "tcp://[::1]:8001"
    assert suggested_monitor_address("tcp://host:65535") is None
    assert suggested_monitor_address("ipc:///tmp/scheduler") == "ipc:///tmp/scheduler.monitor"
    assert suggested_monitor_address("ipc:///tmp/scheduler.monitor") is None


def test_no_status_message_says_where_the_monitor_probably_is() -> None:
    assert no_status_message("tcp://h:6378", 10, listening=True) == (
        "no status from tcp://h:6378 within 10 s; something listens there but publishes no status; "
        "a scheduler's monitor is on its port + 1 (tcp://h:6379) unless it was started with --monitor-address"
    )
    assert "nothing listens there" in no_status_message("tcp://h:6378", 1.5, listening=False)
    assert "path + .monitor (ipc:///x.monitor)" in no_status_message("ipc:///x", 1)


def test_something_listens_tells_an_open_port_from_a_closed_one() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert something_listens(f"tcp://127.0.0.1:{server.getsockname()[1]}") is True
    assert something_listens(f"tcp://127.0.0.1:{free_tcp_port()}") is False
    assert something_listens("ipc:///tmp/nothing") is None


def test_the_feed_keeps_the_newest_status_and_survives_a_malformed_message() -> None:
    context = zmq.Context()
    publisher = context.socket(zmq.PUB)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    try:
        with StatusFeed(f"tcp://127.0.0.1:{port}", poll_seconds=0.02) as feed:

            def publish_and_check(payload: bytes, check: Any) -> bool:
                publisher.send(payload)  # again and again: a SUB misses what is sent before it has joined
                return bool(check(feed.state()))

            assert wait_until(lambda: publish_and_check(b"\xc1", lambda s: s.error), 10)
            assert feed.state().status is None
            good = msgpack.packb(a_status(), use_bin_type=True)
            assert wait_until(lambda: publish_and_check(good, lambda s: s.status is not None), 10)
            state = feed.state()
            assert state.status == a_status() and state.error is None and state.received >= 1
            assert state.seconds_since_received(time.monotonic()) is not None
    finally:
        publisher.close(linger=0)
        context.term()


async def test_the_app_sorts_by_keys_and_header_clicks_without_a_terminal() -> None:
    pytest.importorskip("textual")
    from rich.text import Text
    from textual.widgets import DataTable
    from textual.widgets.data_table import ColumnKey

    from scaler.top.app import TopApp

    context = zmq.Context()
    publisher = context.socket(zmq.PUB)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    status = msgpack.packb(a_status(), use_bin_type=True)
    try:
        app = TopApp(f"tcp://127.0.0.1:{port}", interval_seconds=0.05, timeout_seconds=10, sort="cpu")
        async with app.run_test(size=(200, 50)) as pilot:
            table = app.query_one("#workers", DataTable)

            async def shows(expected: list[str]) -> None:
                names: list[str] = []
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    publisher.send(status)  # again and again: a SUB misses what is sent before it has joined
                    names = [str(table.get_row_at(index)[0]) for index in range(table.row_count)]
                    if names == expected:
                        return
                    await pilot.pause(0.05)
                raise AssertionError(f"the worker table shows {names}, not {expected}")

            await shows(["beta", "gamma", "alpha"])  # --sort cpu
            await pilot.press("u")
            await shows(["alpha", "beta", "gamma"])  # queued on worker: 18, 16, 2
            await pilot.press("u")
            await shows(["gamma", "beta", "alpha"])  # the same key again reverses
            table.post_message(DataTable.HeaderSelected(table, ColumnKey("name"), 0, Text("worker")))
            await shows(["alpha", "beta", "gamma"])
            await pilot.press("q")
        assert app.return_code == 0
    finally:
        publisher.close(linger=0)
        context.term()


# -- the command line against a live cluster -------------------------------------------------------------------------


def _names(*stems: str) -> list[str]:
    suffix = uuid.uuid4().hex[:6]
    return [f"top-{stem}-{suffix}" for stem in stems]


def _once(monitor: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "scaler_top"), monitor, "--once", *options], capture_output=True, text=True, timeout=30
    )


def _succeeded(screen: str) -> int | None:
    """The scheduler's succeeded count, from the header line of tasks since start."""
    for line in screen.splitlines():
        if "tasks since start" in line:
            match = re.search(r"succeeded ([\d,]+)", line)
            return int(match.group(1).replace(",", "")) if match else None
    return None


@pytest.mark.timeout(60)
def test_once_prints_each_worker_and_labelled_counts_of_a_live_cluster() -> None:
    names = _names("alpha", "beta")
    with SchedulerClusterCombo(worker_names=names) as cluster:
        monitor = default_monitor_address(cluster.get_address())
        with Client(cluster.get_address(), timeout_seconds=30) as client:
            assert client.map(time.sleep, [(0.001,)] * 50) == [None] * 50
        outputs: list[str] = []

        def shows_the_run() -> bool:
            result = _once(monitor, "-t", "10")
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout)
            return all(name in result.stdout for name in names) and (_succeeded(result.stdout) or 0) >= 50

        assert wait_until(shows_the_run, 20, interval=0.2), outputs[-1:]
        text = outputs[-1]
        for label in [
            "scheduler pid",
            "queued in scheduler",
            "queued on workers",
            "running",
            "waiting on dependencies",
            "cancelled",
            "objects",
            "functions",
            "cpu %",
            "queued on worker",
            "heartbeat age",
        ]:
            assert label in text, label
        assert re.search(r"^sleep +50 ", text, re.MULTILINE), text  # the function table: time.sleep ran 50 times


def spin(seconds: float) -> None:
    """Keep one core busy (a task for the workers, which import this module by name)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.timeout(60)
def test_a_worker_spinning_on_one_core_shows_about_100_percent_and_a_busy_processor() -> None:
    (name,) = _names("spinner")
    with SchedulerClusterCombo(worker_names=[name], heartbeat_interval_seconds=0.5) as cluster:
        monitor = default_monitor_address(cluster.get_address())
        with Client(cluster.get_address(), timeout_seconds=30) as client:
            spinning = client.submit(spin, 30)
            rows: list[str] = []

            def spins() -> bool:
                result = _once(monitor, "-t", "10")
                rows.append(result.stdout)
                # worker, cpu %, rss (e.g. "48.5 MB"), processors busy/total, ...
                match = re.search(rf"^{name} +(\d+) +\S+ \S+ +1/1 ", result.stdout, re.MULTILINE)
                return match is not None and 80 <= int(match.group(1)) <= 130  # one core, not a share of the machine

            try:
                assert wait_until(spins, 30, interval=0.2), rows[-1:]
            finally:
                spinning.cancel()


@pytest.mark.timeout(60)
def test_once_pointed_at_the_scheduler_port_says_the_monitor_is_on_the_next_port() -> None:
    with SchedulerClusterCombo(n_workers=0) as cluster:
        address = cluster.get_address()
        result = _once(address, "-t", "1")
    assert result.returncode == 1 and result.stdout == ""
    message = " ".join(result.stderr.split())
    assert f"no status from {address} within 1 s; something listens there" in message
    assert f"a scheduler's monitor is on its port + 1 ({default_monitor_address(address)})" in message


@pytest.mark.timeout(60)
def test_without_textual_the_full_screen_mode_falls_back_to_the_plain_view() -> None:
    names = _names("plain")
    with SchedulerClusterCombo(worker_names=names) as cluster:
        monitor = default_monitor_address(cluster.get_address())
        code = "import sys; sys.modules['textual'] = None; from scaler.cli.top import main; main()"
        process = subprocess.Popen(
            [sys.executable, "-c", code, monitor, "-i", "0.2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        output: list[str] = []
        stdout = process.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: output.extend(iter(stdout.readline, "")), daemon=True)
        reader.start()
        try:
            assert wait_until(lambda: names[0] in "".join(output), 20), "".join(output)[-3000:]
            assert TEXTUAL_MISSING_NOTE in "".join(output) and "queued in scheduler" in "".join(output)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            reader.join(timeout=5)


# -- the full-screen monitor in tmux ----------------------------------------------------------------------------------


class Tmux:
    """A tmux server on a private socket, with one session running a command in a 200x50 window."""

    def __init__(self, directory: Path) -> None:
        assert TMUX is not None
        self._tmux = TMUX
        self.socket = f"scaler-top-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._config = directory / "tmux.conf"
        self._config.write_text("set -g remain-on-exit on\n", encoding="utf-8")
        self._exit_file = directory / "exit-status"
        # where tmux puts the socket of -L NAME (replaced by what the server says once it runs)
        self._socket_path = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / self.socket

    def _run(self, *args: str, check: bool = True) -> str:
        env = {key: value for key, value in os.environ.items() if key not in ("TMUX", "COLUMNS", "LINES")}
        result = subprocess.run(
            [self._tmux, "-u", "-L", self.socket, "-f", str(self._config), *args],
            capture_output=True,
            text=True,
            timeout=15,
            env=env,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def start(self, command: list[str]) -> None:
        """Run ``command`` in the session; the shell around it writes its exit status to a file when it ends.

        (tmux's own record of a pane's exit status is not reliable enough to poll.)
        """
        command_line = shlex.join(["env", "TERM=xterm-256color", *command])
        self._run(
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "200",
            "-y",
            "50",
            f"{command_line}; echo $? > {shlex.quote(str(self._exit_file))}",
        )
        self._socket_path = Path(self._run("display-message", "-p", "#{socket_path}").strip())

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-t", "top")

    def send_keys(self, *keys: str) -> None:
        self._run("send-keys", "-t", "top", *keys)

    def exit_status(self) -> int | None:
        """The command's exit status once it has exited, else None."""
        try:
            text = self._exit_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return int(text) if text.endswith("\n") else None

    def kill_server(self) -> None:
        """Stop the server (which hangs up on the command) and remove its socket file."""
        self._run("kill-server", check=False)
        self._socket_path.unlink(missing_ok=True)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if TMUX is None:
        pytest.fail("tmux is required for the full-screen tests in CI (CI=true); install tmux")
    server = Tmux(tmp_path)
    try:
        yield server
    finally:
        server.kill_server()


def _flat(screen: str) -> str:
    return " ".join(screen.split())


def _scaler_top(monitor: str, *options: str) -> list[str]:
    return [str(BIN / "scaler_top"), monitor, "--interval", "0.2", *options]


@requires_tmux
@pytest.mark.timeout(60)
def test_full_screen_shows_the_workers_counts_rise_keys_sort_and_q_quits(tmux: Tmux) -> None:
    alpha, beta = _names("alpha", "beta")
    with SchedulerClusterCombo(worker_names=[beta, alpha]) as cluster:
        tmux.start(_scaler_top(default_monitor_address(cluster.get_address()), "--sort", "name"))
        assert wait_until(lambda: alpha in tmux.screen() and beta in tmux.screen(), 20), tmux.screen()
        screen = tmux.screen()
        for label in [
            "queued in scheduler",
            "queued on workers",
            "waiting on dependencies",
            "suspended",
            "processors busy/total",
            "queued on worker",
            "heartbeat age",
        ]:
            assert label in screen, (label, screen)
        assert "STALE" not in screen, screen
        assert screen.index(alpha) < screen.index(beta), screen
        before = _succeeded(screen)
        assert before is not None, screen

        with Client(cluster.get_address(), timeout_seconds=30) as client:
            assert client.map(time.sleep, [(0.001,)] * 300) == [None] * 300
        assert wait_until(lambda: (_succeeded(tmux.screen()) or 0) >= before + 300, 20), tmux.screen()

        tmux.send_keys("n")  # sorted by name already: the same key again reverses
        assert wait_until(lambda: tmux.screen().index(beta) < tmux.screen().index(alpha), 10), tmux.screen()
        tmux.send_keys("n")
        assert wait_until(lambda: tmux.screen().index(alpha) < tmux.screen().index(beta), 10), tmux.screen()

        tmux.send_keys("q")
        assert wait_until(lambda: tmux.exit_status() is not None, 10), tmux.screen()
        assert tmux.exit_status() == 0, tmux.screen()


@requires_tmux
@pytest.mark.timeout(60)
def test_full_screen_marks_stale_when_the_scheduler_stops_and_recovers_when_it_returns(tmux: Tmux) -> None:
    (name,) = _names("stale")
    cluster = SchedulerClusterCombo(worker_names=[name])
    address = cluster.get_address()
    try:
        tmux.start(_scaler_top(default_monitor_address(address)))
        assert wait_until(lambda: name in tmux.screen(), 20), tmux.screen()
        cluster.shutdown()
        assert wait_until(lambda: "STALE: no status for" in tmux.screen(), 15), tmux.screen()
        assert name in tmux.screen()  # the last figures stay on screen
        with SchedulerClusterCombo(n_workers=0, address=address):
            assert wait_until(lambda: "STALE" not in tmux.screen(), 15), tmux.screen()
        assert tmux.exit_status() is None  # still running
    finally:
        cluster.shutdown()


@requires_tmux
@pytest.mark.timeout(60)
def test_full_screen_pointed_at_the_scheduler_port_says_the_monitor_is_on_the_next_port(tmux: Tmux) -> None:
    with SchedulerClusterCombo(n_workers=0) as cluster:
        address = cluster.get_address()
        tmux.start(_scaler_top(address, "--timeout-seconds", "1"))
        hint = f"a scheduler's monitor is on its port + 1 ({default_monitor_address(address)})"
        assert wait_until(lambda: hint in _flat(tmux.screen()), 15), tmux.screen()
        assert wait_until(lambda: "something listens there" in _flat(tmux.screen()), 10), tmux.screen()
