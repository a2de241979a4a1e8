"""What ran, for the monitors: per-function counts and run times, and the spans of the tasks that just ended.

The task manager calls ``record`` once per result a worker sends; it only adds to counters and a
bounded deque. Names and summaries are worked out once per status message, in ``describe``.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

# Task spans kept between two status messages (the newest).
TASK_STREAM_LIMIT = 2_000
# Functions counted one by one; further ones are counted under OTHER_FUNCTIONS.
FUNCTION_LIMIT = 1_000
OTHER_FUNCTIONS = "(other)"
_OTHER_ID = b""

# Positions in a function's tally.
_NAME, _COUNT, _TOTAL_SECONDS, _MAX_SECONDS, _FAILURES = range(5)


class TaskActivity:
    """Per-function tallies and the recent task stream, learnt from the results workers send."""

    def __init__(self, function_name: Callable[[bytes], str | None]) -> None:
        self._function_name = function_name
        self._functions: dict[bytes, list[Any]] = {}
        self._stream: collections.deque[tuple[float, str, bytes, float, bool]] = collections.deque(
            maxlen=TASK_STREAM_LIMIT
        )

    def record(self, now: float, worker_name: str, function_id: bytes, run_seconds: float, succeeded: bool) -> None:
        """One task of ``function_id`` ran ``run_seconds`` on ``worker_name``; its result arrived at ``now``."""
        tally = self._functions.get(function_id)
        if tally is None:
            tally = self._new_tally(function_id)
        tally[_COUNT] += 1
        tally[_TOTAL_SECONDS] += run_seconds
        if run_seconds > tally[_MAX_SECONDS]:
            tally[_MAX_SECONDS] = run_seconds
        if not succeeded:
            tally[_FAILURES] += 1
        self._stream.append((now, worker_name, function_id, run_seconds, succeeded))

    def _new_tally(self, function_id: bytes) -> list[Any]:
        if len(self._functions) >= FUNCTION_LIMIT:
            other = self._functions.get(_OTHER_ID)
            if other is None:
                other = self._functions[_OTHER_ID] = [OTHER_FUNCTIONS, 0, 0.0, 0.0, 0]
            return other
        # The name is looked up once, when the function first runs: it stays after the object is deleted.
        name = self._function_name(function_id) or f"function {function_id.hex()[:12]}"
        tally = self._functions[function_id] = [name, 0, 0.0, 0.0, 0]
        return tally

    def name_of(self, function_id: bytes) -> str:
        """The name recorded for ``function_id``, or what the object store knows, or its id."""
        tally = self._functions.get(function_id)
        if tally is not None:
            return str(tally[_NAME])
        return self._function_name(function_id) or f"function {function_id.hex()[:12]}"

    def describe_functions(self) -> list[dict[str, Any]]:
        """One line per function name (docs/monitoring.md, ``functions``), most run first."""
        by_name: dict[str, list[Any]] = {}
        for name, count, total, longest, failures in self._functions.values():
            line = by_name.get(name)
            if line is None:
                by_name[name] = [count, total, longest, failures]
            else:
                line[0] += count
                line[1] += total
                line[2] = max(line[2], longest)
                line[3] += failures
        lines = [
            {
                "name": name,
                "count": count,
                "mean_seconds": total / count if count else 0.0,
                "max_seconds": longest,
                "failures": failures,
            }
            for name, (count, total, longest, failures) in by_name.items()
        ]
        lines.sort(key=lambda line: line["count"], reverse=True)
        return lines

    def take_task_stream(self) -> list[list[Any]]:
        """The spans recorded since the last call: ``[worker, function, start, end, succeeded]`` each."""
        stream, self._stream = self._stream, collections.deque(maxlen=TASK_STREAM_LIMIT)
        names: dict[bytes, str] = {}
        spans = []
        for end, worker_name, function_id, run_seconds, succeeded in stream:
            name = names.get(function_id)
            if name is None:
                name = names[function_id] = self.name_of(function_id)
            spans.append([worker_name, name, end - run_seconds, end, succeeded])
        return spans
