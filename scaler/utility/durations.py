"""Running estimates of how long each function's tasks take, learnt from the run times workers report.

A function not yet measured counts as long (``UNKNOWN_SECONDS``): its first tasks are spread one per
worker, and once a result brings a measured time the estimate follows the measurements. Dask starts
unknown tasks the same way.
"""

from __future__ import annotations

# The estimate of a function not yet measured: long enough that its tasks go one per worker.
UNKNOWN_SECONDS = 0.5
# Weight of the newest measurement in the running average.
_NEWEST_WEIGHT = 0.25
# Functions remembered at most; the oldest entries are forgotten first.
_REMEMBERED_FUNCTIONS = 10_000


class DurationEstimates:
    """Seconds per task of each function (by function id), as an exponentially weighted average."""

    def __init__(self, unknown_seconds: float = UNKNOWN_SECONDS) -> None:
        self.unknown_seconds = unknown_seconds
        self._seconds: dict[bytes, float] = {}

    def of(self, function_id: bytes) -> float:
        """The estimate for ``function_id``: measured, or ``unknown_seconds`` until its first result."""
        return self._seconds.get(function_id, self.unknown_seconds)

    def observe(self, function_id: bytes, run_seconds: float) -> None:
        """Learn from one task that ran (it returned or raised) for ``run_seconds``."""
        seconds = self._seconds
        current = seconds.get(function_id)
        if current is None:
            if len(seconds) >= _REMEMBERED_FUNCTIONS:
                del seconds[next(iter(seconds))]
            seconds[function_id] = run_seconds
        else:
            seconds[function_id] = current + _NEWEST_WEIGHT * (run_seconds - current)

