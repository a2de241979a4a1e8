"""A log that lets a few lines a second through and counts the rest, so a storm of events cannot flood it."""

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
