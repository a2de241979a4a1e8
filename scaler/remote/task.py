"""Task: RLTK's remote task, inputs sent in chunks to a Remote's cluster and outputs handled here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scaler.parallel.processor import ParallelProcessor
from scaler.remote.remote import Remote


class Task:
    """Run ``input_handler`` on the workers of ``remote``'s cluster; call ``output_handler`` here on each result.

    ``Task(remote, input_handler, output_handler=None, chunk_size=1000, max_queue_size=10)``: ``start()``,
    ``compute(*args, **kwargs)`` for every input, ``task_done()``, ``join()``.

    - Every ``chunk_size`` inputs make one task; ``task_done`` sends the last, partial chunk.
    - At most ``max_queue_size`` chunks are in flight: ``compute`` blocks while that many are unfinished or
      not yet handled.
    - ``output_handler`` runs in one thread of this process, once per input, chunk by chunk in the order the
      chunks finish; an ``input_handler`` return value that is a tuple is unpacked as its arguments.
    - The first exception of ``input_handler`` (or of ``output_handler``) cancels the chunks in flight and
      ends ``join()`` with it. ``join()`` leaves ``remote`` connected.
    """

    def __init__(
        self,
        remote: Remote,
        input_handler: Callable[..., Any],
        output_handler: Callable[..., Any] | None = None,
        chunk_size: int = 1000,
        max_queue_size: int = 10,
    ) -> None:
        if not isinstance(remote, Remote):
            raise TypeError(f"Task needs a scaler.remote.Remote, not {type(remote).__name__}")
        if isinstance(max_queue_size, bool) or not isinstance(max_queue_size, int) or max_queue_size < 1:
            raise ValueError(f"max_queue_size must be a positive integer, not {max_queue_size!r}")
        self.remote = remote
        self.input_handler = input_handler
        self.output_handler = output_handler
        self.chunk_size = chunk_size
        self.max_queue_size = max_queue_size
        self._processor = ParallelProcessor(
            max_queue_size,
            input_handler,
            output_handler,
            client=remote.client,
            max_in_flight=max_queue_size,
            batch_size=chunk_size,
        )

    @property
    def error(self) -> BaseException | None:
        """The first exception of a handler so far, or None."""
        return self._processor.error

    def start(self) -> None:
        """Start the thread that runs ``output_handler``; ``compute`` calls it when needed."""
        self._processor.start()

    def compute(self, *args: Any, **kwargs: Any) -> None:
        """Add ``input_handler(*args, **kwargs)``; blocks while ``max_queue_size`` chunks are in flight."""
        self._processor.add_task(*args, **kwargs)

    def task_done(self) -> None:
        """No more inputs: send the last, partial chunk."""
        self._processor.task_done()

    def join(self) -> None:
        """Wait until every input has been computed and handled; raises the first handler exception."""
        self._processor.join()

    def close(self) -> None:
        """Stop at once: cancel the chunks in flight (``remote`` stays connected)."""
        self._processor.close()

    def __enter__(self) -> Task:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: Any) -> None:
        if exc_type is None:
            self.join()
        else:
            self.close()
