"""What a task prints, sent home line by line while it runs (tasks submitted with TaskFlag.STREAM_OUTPUT)."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from scaler.protocol.messages import OutputStream

# A line longer than this is sent in pieces: a task printing without newlines must not grow a buffer forever.
LONGEST_PIECE = 64 * 1024

SendOutput = Callable[[int, OutputStream, str], None]


class TaskOutputWriter(io.TextIOBase):
    """A text stream that sends each complete line it is given; what follows the last newline waits.

    Only whole lines are sent (``end_of_task`` closes a last unfinished one), so the client can print
    each message at once and lines of different tasks never mix within a line.
    """

    def __init__(self, send: SendOutput, task_id: int, stream: OutputStream) -> None:
        super().__init__()
        self._send = send
        self._task_id = task_id
        self._stream = stream
        self._partial = ""
        self._lock = threading.Lock()  # a task's threads may print at once

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            pending = self._partial + text
            cut = pending.rfind("\n") + 1
            if cut == 0 and len(pending) >= LONGEST_PIECE:
                cut = len(pending)
            self._partial = pending[cut:]
        if cut:
            whole = pending[:cut]
            self._send(self._task_id, self._stream, whole if whole.endswith("\n") else whole + "\n")
        return len(text)

    def end_of_task(self) -> None:
        """Send what is left of an unfinished last line."""
        with self._lock:
            rest, self._partial = self._partial, ""
        if rest:
            self._send(self._task_id, self._stream, rest + "\n")


@contextmanager
def output_sent_home(send: SendOutput, task_id: int) -> Iterator[None]:
    """While the block runs, what is printed on stdout and stderr is sent with ``send`` instead of printed here."""
    saved = sys.stdout, sys.stderr
    out = TaskOutputWriter(send, task_id, OutputStream.STDOUT)
    err = TaskOutputWriter(send, task_id, OutputStream.STDERR)
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        out.end_of_task()
        err.end_of_task()
