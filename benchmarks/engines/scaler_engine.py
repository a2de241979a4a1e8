"""scaler: ``SchedulerClusterCombo(n_workers=W)`` plus a ``Client`` connected to ``combo.get_address()``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from benchmarks.engines.base import Engine


class ScalerEngine(Engine):
    """A local scaler scheduler with ``W`` workers, driven through the public ``scaler`` API."""

    name = "scaler"
    reports_scheduler_rss = True

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._stack: contextlib.ExitStack | None = None
        self._client: Any = None
        self._combo: Any = None

    def prepare(self) -> None:
        from scaler import Client, SchedulerClusterCombo  # noqa: F401  (ImportError marks it unavailable)

    def start(self) -> None:
        from scaler import Client, SchedulerClusterCombo

        stack = contextlib.ExitStack()
        try:
            combo = SchedulerClusterCombo(n_workers=self.workers)
            stack.callback(combo.shutdown)
            client = Client(combo.get_address())
            stack.enter_context(client)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        self._client = client
        self._combo = combo

    def shutdown(self) -> None:
        self._client = None
        self._combo = None
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()  # leaves the client context first, then shuts the combo down

    def scheduler_pid(self) -> int | None:
        """``combo.scheduler_pid`` when the combo offers it (attribute, property or method), else ``None``."""
        pid = getattr(self._combo, "scheduler_pid", None)
        if callable(pid):
            pid = pid()
        return pid if isinstance(pid, int) else None

    @property
    def address(self) -> str:
        """The scheduler's address (``combo.get_address()``)."""
        assert self._combo is not None, "engine not started"
        return str(self._combo.get_address())

    def worker_command(self) -> list[str]:
        """Command line starting one more worker for this scheduler, in a new process."""
        return [sys.executable, "-m", "scaler.cli.worker", self.address, "-n", "1"]

    @contextlib.contextmanager
    def second_client(self) -> Iterator[Callable[..., Any]]:
        """Connect another ``scaler.Client`` to the same scheduler; yield its ``submit``; disconnect it after."""
        from scaler import Client

        client = Client(self.address)
        try:
            yield client.submit
        finally:
            client.disconnect()

    @property
    def client(self) -> Any:
        """The connected ``scaler.Client``."""
        assert self._client is not None, "engine not started"
        return self._client

    def map(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return list(self.client.map(fn, list(args)))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(fn, *args)

    def put(self, obj: Any) -> Any:
        return self.client.send_object(obj)

    def get(self, graph: dict[Any, Any], keys: Sequence[Any]) -> dict[Any, Any]:
        return dict(self.client.get(graph, keys=list(keys)))
