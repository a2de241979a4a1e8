"""Helpers shared by the tests: polling with a deadline, the process tree, and the environment of commands."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil


def wait_until(condition: Callable[[], bool], timeout_seconds: float, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it holds or the deadline passes; return whether it held."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def live_children() -> list[psutil.Process]:
    """Every live descendant of this test process (zombies excluded)."""
    alive = []
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


def describe(processes: list[psutil.Process]) -> str:
    lines = []
    for process in processes:
        try:
            lines.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
        except psutil.Error:
            lines.append(str(process.pid))
    return "; ".join(lines)


def stop_processes(*processes: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGTERM each process still running, SIGKILL it after 30 s, and reap it."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def environment_without_settings(**extra: str) -> dict[str, str]:
    """This process's environment without any scaler setting (SCALER_<SECTION>_..., SCALER_CONFIG), with the
    repository importable (workers import the tests' task functions), plus ``extra``."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("SCALER_SCHEDULER_", "SCALER_WORKER_"))
    }
    env.pop("SCALER_CONFIG", None)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    return {**env, **extra}
