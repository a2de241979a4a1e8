"""Prints on this process's stdout and stderr the lines tasks printed on workers (Client(stream_output=True))."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from scaler.protocol.messages import OutputField, OutputFromWorkerField, OutputStream


def print_task_output(fields: list[Any]) -> None:
    """Print one OUTPUT_FROM_WORKER message: each line prefixed with ``[worker name]``, each stream in one write."""
    worker_name = fields[OutputFromWorkerField.WORKER_NAME]
    prefix = f"[{worker_name}] "
    texts: dict[int, list[str]] = {}
    for item in fields[OutputFromWorkerField.ITEMS]:
        lines = texts.setdefault(item[OutputField.STREAM], [])
        lines.extend(prefix + line for line in item[OutputField.TEXT].splitlines(keepends=True))
    for stream, lines in texts.items():
        target: TextIO = sys.stderr if stream == OutputStream.STDERR else sys.stdout
        # One write per message and stream: a line is never split by another thread's print.
        target.write("".join(lines))
        target.flush()
