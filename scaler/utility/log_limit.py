"""Logs a storm of events cannot flood: a few lines a second (the rest counted), or one line per peer."""

from __future__ import annotations

import logging
import time
from typing import Any


class LimitedLog:
    """Logs at most ``lines_per_second`` lines each second; the rest are counted and told in one line."""

    def __init__(self, logger: logging.Logger, what: str, lines_per_second: int = 20) -> None:
        self._logger = logger
        self._what = what
        self._limit = lines_per_second
        self._window_start = time.monotonic()
        self._lines = 0
        self._held_back = 0
        self._level = logging.INFO

    def log(self, level: int, message: str, *args: Any) -> None:
        """Log one line, unless this second's lines are used up."""
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self.flush()
            self._window_start = now
        if self._lines < self._limit:
            self._lines += 1
            self._logger.log(level, message, *args)
        else:
            self._held_back += 1
            self._level = level

    def flush(self) -> None:
        """Tell how many lines were held back, if any, and start a new second."""
        if self._held_back:
            self._logger.log(self._level, "%d more %s not logged one by one", self._held_back, self._what)
        self._lines = 0
        self._held_back = 0


class OncePerKey:
    """Remembers which keys (peers) were already logged, so each is logged once; bounded: past ``capacity``
    keys it forgets them all and starts again."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._seen: set[Any] = set()

    def first(self, key: Any) -> bool:
        """Whether ``key`` is seen for the first time (and remember it)."""
        if key in self._seen:
            return False
        if len(self._seen) >= self._capacity:
            self._seen.clear()
        self._seen.add(key)
        return True

    def forget(self) -> None:
        self._seen.clear()
