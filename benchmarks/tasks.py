"""Task functions executed by the workers of every engine.

They live in an importable module (not in ``__main__``) so that every engine pickles them by reference and
the worker processes import the very same code.
"""

from __future__ import annotations

import os
import time
from typing import Any


def noop(x: Any = None) -> Any:
    """Return the argument unchanged: the cheapest possible task."""
    return x


def sleep_task(seconds: float) -> float:
    """Sleep for ``seconds`` and return it (a task that waits without using CPU)."""
    time.sleep(seconds)
    return seconds


def cpu_work(loops: int) -> int:
    """Burn CPU in pure Python for ``loops`` iterations and return a checksum."""
    acc = 0
    for i in range(loops):
        acc = (acc + i * i) % 1_000_003
    return acc


def length(obj: Any) -> int:
    """Return ``len(obj)``: used to check that a large shared object reached the task."""
    return len(obj)


def value(x: Any) -> Any:
    """Return ``x``; the root nodes of the layered graph."""
    return x


def add(a: int, b: int) -> int:
    """Add two numbers; the inner nodes of the layered graph."""
    return a + b


def sleep_for(seconds: float, tag: Any) -> Any:
    """Sleep for ``seconds`` and return ``tag`` (lets a case check that every task of a map came back)."""
    time.sleep(seconds)
    return tag


def sleep_report_pid(seconds: float, tag: Any) -> tuple[Any, int]:
    """Sleep for ``seconds`` and return ``(tag, pid)``: which process ran the task."""
    time.sleep(seconds)
    return tag, os.getpid()
