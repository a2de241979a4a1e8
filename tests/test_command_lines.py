"""scaler_scheduler and scaler_worker as real subprocesses: serve, then stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from scaler import Client
from scaler.io.address import local_address
from tests import tasks

BIN = Path(sys.executable).parent
REPOSITORY = Path(__file__).resolve().parent.parent


def _start(*args: str) -> subprocess.Popen[bytes]:
    # Workers import the tests' task functions by module name, as a user's workers import the user's modules.
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("worker_command", ["scaler_worker", "scaler_cluster"])
def test_scheduler_and_worker_commands_serve_then_exit_zero_on_sigterm(worker_command: str) -> None:
    address = local_address()
    scheduler = _start(str(BIN / "scaler_scheduler"), address, "--logging-level", "WARNING")
    workers = _start(str(BIN / worker_command), "-n", "2", address, "--logging-level", "WARNING")
    try:
        with Client(address, timeout_seconds=30) as client:
            assert client.map(tasks.add, [(i, i) for i in range(200)]) == [2 * i for i in range(200)]
        workers.send_signal(signal.SIGTERM)
        scheduler.send_signal(signal.SIGTERM)
        assert workers.wait(timeout=30) == 0, workers.stderr.read().decode() if workers.stderr else ""
        assert scheduler.wait(timeout=30) == 0, scheduler.stderr.read().decode() if scheduler.stderr else ""
    finally:
        for process in (workers, scheduler):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@pytest.mark.timeout(60)
def test_sigint_also_stops_both_commands_with_exit_zero() -> None:
    address = local_address()
    scheduler = _start(str(BIN / "scaler_scheduler"), address)
    workers = _start(str(BIN / "scaler_worker"), "-n", "1", address)
    try:
        with Client(address, timeout_seconds=30) as client:
            assert client.submit(tasks.add, 1, 2).result(timeout=30) == 3
        workers.send_signal(signal.SIGINT)
        scheduler.send_signal(signal.SIGINT)
        assert workers.wait(timeout=30) == 0
        assert scheduler.wait(timeout=30) == 0
    finally:
        for process in (workers, scheduler):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@pytest.mark.parametrize("command", ["scaler_scheduler", "scaler_worker", "scaler_cluster", "scaler_top", "scaler_ui"])
def test_every_command_has_help(command: str) -> None:
    result = subprocess.run([str(BIN / command), "--help"], capture_output=True, timeout=60)
    assert result.returncode == 0
    assert b"ADDRESS" in result.stdout


def test_worker_accepts_every_option_of_the_original_command_line() -> None:
    result = subprocess.run(
        [str(BIN / "scaler_worker"), "--help"], capture_output=True, timeout=60, env={**os.environ, "COLUMNS": "200"}
    )
    text = result.stdout.decode()
    for option in [
        "--num-of-workers", "-n", "--worker-names", "-wn", "--heartbeat-interval", "-hi", "--task-timeout-seconds",
        "-tts", "--death-timeout-seconds", "-ds", "--garbage-collect-interval-seconds", "-gc",
        "--trim-memory-threshold-bytes", "-tm", "--event-loop", "-el", "--io-threads", "-it",
        "--hard-processor-suspend", "-hps", "--log-hub-address", "-la", "--logging-paths", "-lp", "--logging-level",
        "-ll", "--logging-config-file", "-lc",
    ]:
        assert option in text, option


def test_scheduler_accepts_every_option_of_the_original_command_line() -> None:
    result = subprocess.run(
        [str(BIN / "scaler_scheduler"), "--help"], capture_output=True, timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    text = result.stdout.decode()
    for option in [
        "--client-timeout-seconds", "-ct", "--worker-timeout-seconds", "-wt", "--object-retention-seconds", "-ot",
        "--load-balance-seconds", "-ls", "--load-balance-trigger-times", "-lbt", "--per-worker-queue-size", "-qs",
        "--max-number-of-tasks-waiting", "-mt", "--io-threads", "--event-loop", "-e", "--protected", "-p",
        "--unprotected", "--monitor-address", "-ma", "--logging-paths", "-lp", "--logging-level", "-ll",
        "--logging-config-file", "-lc",
    ]:
        assert option in text, option


@pytest.mark.parametrize(
    ("command", "option"),
    [("scaler_scheduler", "--object-retention-seconds"), ("scaler_worker", "--hard-processor-suspend")],
)
def test_help_says_which_accepted_options_have_no_effect(command: str, option: str) -> None:
    lines = subprocess.run([str(BIN / command), "--help"], capture_output=True, timeout=60).stdout.decode().splitlines()
    start = next(index for index, line in enumerate(lines) if option in line)
    end = next(index for index in range(start + 1, len(lines)) if lines[index].lstrip().startswith("-"))
    assert "no effect" in " ".join(" ".join(lines[start:end]).split())


@pytest.mark.timeout(120)
def test_options_without_effect_are_accepted_with_a_warning_and_the_commands_serve() -> None:
    address = local_address()
    scheduler = _start(
        str(BIN / "scaler_scheduler"), address, "-ot", "5", "--logging-paths", "/dev/stderr", "-ll", "WARNING"
    )
    workers = _start(
        str(BIN / "scaler_worker"), "-n", "1", address, "--hard-processor-suspend", "-la", "tcp://127.0.0.1:1",
        "-lp", "/dev/stderr", "-ll", "WARNING",
    )
    try:
        with Client(address, timeout_seconds=30) as client:
            assert client.submit(tasks.add, 1, 2).result(timeout=30) == 3
        workers.send_signal(signal.SIGTERM)
        scheduler.send_signal(signal.SIGTERM)
        assert workers.wait(timeout=30) == 0 and scheduler.wait(timeout=30) == 0
        assert scheduler.stderr is not None and workers.stderr is not None
        assert b"object_retention_seconds=5 has no effect" in scheduler.stderr.read()
        worker_log = workers.stderr.read()
        assert b"hard_processor_suspend has no effect" in worker_log
        assert b"--log-hub-address is ignored" in worker_log
    finally:
        for process in (workers, scheduler):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def test_scaler_top_prints_the_status_of_a_running_scheduler() -> None:
    address = local_address()
    monitor = address.rsplit(":", 1)[0] + ":" + str(int(address.rsplit(":", 1)[1]) + 1)
    scheduler = _start(str(BIN / "scaler_scheduler"), address, "--monitor-address", monitor)
    try:
        result = subprocess.run(
            [str(BIN / "scaler_top"), monitor, "--once", "-t", "20"], capture_output=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert b"scheduler pid" in result.stdout
    finally:
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=30) == 0
