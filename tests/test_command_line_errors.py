"""Command lines a person can trust: each mistake gives one clear line and the right exit status.

Every case runs the installed command as a new user would; none may print a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import scaler.version
from scaler import Client, SchedulerClusterCombo
from scaler.errors import SchedulerLostError, StartError, VersionMismatchError
from scaler.io.address import free_tcp_port, local_address
from tests import tasks
from tests.helpers import environment_without_settings, stop_processes, wait_until

BIN = Path(sys.executable).parent


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = environment_without_settings()
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout, env=env)


def _one_error_line(result: subprocess.CompletedProcess[str], status: int, *parts: str) -> str:
    """The one ``Error: ...`` line of a failed command, checked: its status, no traceback, and ``parts`` in it."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for part in parts:
        assert part in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_the_same_short_flags_mean_the_same_on_scheduler_and_worker() -> None:
    helps = {command: _run(command, "--help").stdout for command in ("scaler_scheduler", "scaler_worker")}
    for flags in (
        "-e, -el, --event-loop",
        "-it, --io-threads",
        "-lp, --logging-paths",
        "-ll, --logging-level",
        "-lc, --logging-config-file",
        "-qs, --per-worker-queue-size",
        "-c, --config",
    ):
        for command, text in helps.items():
            assert flags in text, (command, flags)


def test_the_help_of_n_says_what_its_default_means() -> None:
    text = " ".join(_run("scaler_worker", "--help").stdout.split())
    assert "-n, --num-of-workers" in text
    assert f"one per core but one, {max(1, (os.cpu_count() or 1) - 1)} on this machine" in text


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("scaler_worker", "-n", "0", "tcp://127.0.0.1:5555"), "'--num-of-workers' / '-n'"),
        (("scaler_worker", "--death-timeout-seconds", "-3", "tcp://127.0.0.1:5555"), "'--death-timeout-seconds'"),
        (("scaler_scheduler", "-ct", "-1", "tcp://127.0.0.1:5555"), "'--client-timeout-seconds' / '-ct'"),
        (("scaler_scheduler", "--worker-timeout-seconds", "0", "tcp://127.0.0.1:5555"), "'--worker-timeout-seconds'"),
        (("scaler_top", "--interval", "0", "tcp://127.0.0.1:5555"), "'--interval-seconds'"),
        (("scaler_ui", "--port", "70000", "tcp://127.0.0.1:5555"), "'--port'"),
        (("scaler_scheduler", "tcp://127.0.0.1:99999"), "a tcp address needs a host and a port"),
    ],
)
def test_a_value_out_of_range_is_refused_by_the_option_parser(args: tuple[str, ...], option: str) -> None:
    _one_error_line(_run(*args), 2, option)


def test_a_taken_port_is_one_line(taken_port: int) -> None:
    _one_error_line(
        _run("scaler_scheduler", f"tcp://127.0.0.1:{taken_port}"),
        1,
        f"cannot listen on its address tcp://127.0.0.1:{taken_port}: Address already in use",
    )


def test_a_taken_monitor_port_is_one_line(taken_port: int) -> None:
    address = local_address()
    _one_error_line(
        _run("scaler_scheduler", "--monitor-address", f"tcp://127.0.0.1:{taken_port}", address),
        1,
        f"monitor address tcp://127.0.0.1:{taken_port}: Address already in use",
    )


def test_an_address_whose_monitor_port_is_out_of_range_is_one_line() -> None:
    _one_error_line(_run("scaler_scheduler", "tcp://127.0.0.1:65535"), 1, "would be port 65536, out of range")


def test_a_logging_path_in_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "scaler.log"
    for command in ("scaler_scheduler", "scaler_worker"):
        _one_error_line(_run(command, "-lp", str(path), "tcp://127.0.0.1:5555"), 1, f"cannot log to {path}")


def test_a_broken_json_logging_config_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "logging.json"
    broken.write_text('{"version": 1, "handlers": {')
    _one_error_line(_run("scaler_scheduler", "-lc", str(broken), "tcp://127.0.0.1:5555"), 1, str(broken))
    not_a_config = tmp_path / "other.json"
    not_a_config.write_text('{"handlers": {}}')
    _one_error_line(
        _run("scaler_scheduler", "-lc", str(not_a_config), "tcp://127.0.0.1:5555"), 1, "not a logging.config dictionary"
    )
    bad_handler = tmp_path / "handler.json"
    bad_handler.write_text(json.dumps({"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}))
    _one_error_line(
        _run("scaler_scheduler", "-lc", str(bad_handler), "tcp://127.0.0.1:5555"), 1, "cannot set up logging"
    )


@pytest.mark.timeout(60)
def test_a_logging_config_dictionary_file_is_used(tmp_path: Path) -> None:
    log_file = tmp_path / "scheduler.log"
    config = tmp_path / "logging.json"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "formatters": {"tagged": {"format": "TAGGED %(name)s %(message)s"}},
                "handlers": {
                    "file": {"class": "logging.FileHandler", "filename": str(log_file), "formatter": "tagged"}
                },
                "root": {"level": "INFO", "handlers": ["file"]},
            }
        )
    )
    address = local_address()
    scheduler = subprocess.Popen([str(BIN / "scaler_scheduler"), "-lc", str(config), address])
    try:
        assert wait_until(lambda: log_file.exists() and "scheduler listening on" in log_file.read_text(), 30)
        assert log_file.read_text().startswith("TAGGED ")
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=30) == 0
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait(timeout=10)


def test_the_combo_says_why_its_scheduler_cannot_start(taken_port: int, tmp_path: Path) -> None:
    with pytest.raises(StartError, match=f"tcp://127.0.0.1:{taken_port}: Address already in use"):
        SchedulerClusterCombo(n_workers=0, address=f"tcp://127.0.0.1:{taken_port}")
    with pytest.raises(ValueError, match="would be port 65536"):
        SchedulerClusterCombo(n_workers=0, address="tcp://127.0.0.1:65535")
    with pytest.raises(ValueError, match="cannot log to"):
        SchedulerClusterCombo(n_workers=0, logging_paths=[str(tmp_path / "missing" / "x.log")])


@pytest.mark.timeout(90)
def test_a_worker_warns_while_unanswered_then_exits_1_at_its_death_timeout() -> None:
    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    started = time.monotonic()
    result = _run("scaler_worker", "-n", "1", "--death-timeout-seconds", "7", "-lp", "/dev/stderr", address, timeout=60)
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started >= 7
    assert f"no answer from the scheduler at {address} for" in result.stderr
    assert "(death timeout)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(90)
def test_a_worker_logs_connected_when_the_scheduler_answers(tmp_path: Path) -> None:
    address = local_address()
    log = tmp_path / "worker.log"
    scheduler = subprocess.Popen([str(BIN / "scaler_scheduler"), "-ll", "WARNING", address])
    worker = subprocess.Popen([str(BIN / "scaler_worker"), "-n", "1", "--worker-names", "w1", "-lp", str(log), address])
    try:
        assert wait_until(
            lambda: log.exists() and f"worker w1 connected to the scheduler at {address}" in log.read_text(), 30
        )
    finally:
        stop_processes(worker, scheduler)


@pytest.mark.timeout(120)
def test_a_scheduler_stopped_by_sigterm_tells_its_workers_and_clients(tmp_path: Path) -> None:
    address = local_address()
    worker_log = tmp_path / "worker.log"
    env = environment_without_settings()
    scheduler = subprocess.Popen([str(BIN / "scaler_scheduler"), "-ll", "WARNING", address], env=env)
    worker = subprocess.Popen(
        [str(BIN / "scaler_worker"), "-n", "1", "-lp", str(worker_log), "--death-timeout-seconds", "60", address],
        env=env,
    )
    try:
        with Client(address, timeout_seconds=60) as client:
            assert client.submit(tasks.add, 1, 2).result(timeout=30) == 3
            pending = client.submit(tasks.sleep_and_return, 60, 1)
            assert wait_until(lambda: client.scheduler_info()["tasks"]["running"] == 1, timeout_seconds=30)
            sent = time.monotonic()
            scheduler.send_signal(signal.SIGTERM)
            with pytest.raises(SchedulerLostError, match=r"the scheduler stopped \(received SIGTERM\)"):
                pending.result(timeout=30)
            assert time.monotonic() - sent < 20  # told at once, not after the client's 60 s time-out
        assert scheduler.wait(timeout=30) == 0
        assert wait_until(lambda: "the scheduler stopped (received SIGTERM)" in worker_log.read_text(), 30)
        assert worker.poll() is None  # it waits for a scheduler at the same address until its death timeout
    finally:
        stop_processes(worker, scheduler)


@pytest.mark.timeout(90)
def test_a_client_of_another_version_is_refused_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    with SchedulerClusterCombo(n_workers=0) as combo:
        real = scaler.version.__version__
        monkeypatch.setattr(scaler.version, "__version__", "0.0.1-other")
        with pytest.raises(VersionMismatchError) as refused:
            Client(combo.get_address(), timeout_seconds=30)
        assert "the client runs scaler 0.0.1-other" in str(refused.value)
        assert f"this scheduler runs scaler {real}" in str(refused.value)


@pytest.mark.timeout(90)
def test_a_worker_of_another_version_is_refused_naming_both_and_exits_1() -> None:
    with SchedulerClusterCombo(n_workers=0) as combo:
        program = (
            "import scaler.version, sys; scaler.version.__version__ = '0.0.1-other'; "
            "from scaler.cli.worker import main; sys.argv = ['scaler_worker', '-n', '1', '-lp', '/dev/stderr', "
            f"'{combo.get_address()}']; main()"
        )
        result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        assert "the worker runs scaler 0.0.1-other" in result.stderr
        assert f"this scheduler runs scaler {scaler.version.__version__}" in result.stderr
