"""The small interface every benchmarked engine implements."""

from __future__ import annotations

import abc
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any


class NotSupportedError(Exception):
    """Raised by an engine for an operation it cannot perform; the case is then reported as ``n/a``."""


class Engine(abc.ABC):
    """A task engine with ``workers`` worker processes.

    Lifecycle: :meth:`prepare` (imports, not timed), :meth:`start`, any number of operations,
    :meth:`shutdown`. Each benchmark subprocess creates exactly one engine.
    """

    #: Name used on the command line and in the report.
    name: str = ""
    #: Whether the engine runs its scheduler in a separate child process whose RSS should be reported.
    reports_scheduler_rss: bool = False

    def __init__(self, workers: int) -> None:
        self.workers = workers
        #: Notes about how this engine implements a case differently from the others, keyed by case.
        self.notes: dict[str, str] = {}

    def scheduler_pid(self) -> int | None:
        """Process id of the scheduler if the engine can tell it (used to report its RSS)."""
        return None

    def prepare(self) -> None:  # noqa: B027  (optional hook, deliberately empty)
        """Import the engine's library; an ``ImportError`` here marks the engine as unavailable."""

    @abc.abstractmethod
    def start(self) -> None:
        """Start the cluster (scheduler and workers) and connect a client to it."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Disconnect and stop every process the engine started."""

    @abc.abstractmethod
    def map(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Run ``fn(*a)`` for every tuple ``a`` in ``args`` and return the results in order."""

    @abc.abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Submit one task and return a handle accepted by :meth:`result` and :meth:`gather`."""

    def result(self, handle: Any) -> Any:
        """Wait for one submitted task and return its result."""
        return handle.result()

    def gather(self, handles: Sequence[Any]) -> list[Any]:
        """Wait for many submitted tasks and return their results in order."""
        return [h.result() for h in handles]

    def put(self, obj: Any) -> Any:
        """Send ``obj`` once to the cluster and return a reference usable as a task argument."""
        raise NotSupportedError(f"{self.name} has no object store")

    def get(self, graph: dict[Any, Any], keys: Sequence[Any]) -> dict[Any, Any]:
        """Compute a dask-style dict graph and return ``{key: value}`` for ``keys``."""
        raise NotSupportedError(f"{self.name} cannot run task graphs")


def is_task(node: Any) -> bool:
    """Return whether a graph value is a task tuple ``(fn, *args)`` rather than a literal."""
    return isinstance(node, tuple) and len(node) > 0 and callable(node[0])


def run_graph_client_side(
    submit: Callable[..., Future[Any]], graph: dict[Any, Any], keys: Sequence[Any]
) -> dict[Any, Any]:
    """Execute a dask-style dict graph with a client-side dependency driver on top of ``submit``.

    Used by the engines that have no graph scheduler of their own: each node is submitted as soon as all its
    dependencies have returned, and their values are shipped back with it.
    """
    needed: set[Any] = set()
    stack = list(keys)
    while stack:
        key = stack.pop()
        if key in needed:
            continue
        needed.add(key)
        node = graph[key]
        if is_task(node):
            stack.extend(a for a in node[1:] if _is_key(a, graph))

    values: dict[Any, Any] = {}
    missing: dict[Any, int] = {}
    dependents: dict[Any, list[Any]] = {k: [] for k in needed}
    for key in needed:
        node = graph[key]
        if not is_task(node):
            values[key] = node
            continue
        deps = {a for a in node[1:] if _is_key(a, graph)}
        missing[key] = len(deps)
        for dep in deps:
            dependents[dep].append(key)

    completed: queue.SimpleQueue[tuple[Any, Future[Any]]] = queue.SimpleQueue()
    in_flight = 0

    def launch(key: Any) -> None:
        nonlocal in_flight
        fn, *args = graph[key]
        resolved = [values[a] if _is_key(a, graph) else a for a in args]
        future = submit(fn, *resolved)
        in_flight += 1
        future.add_done_callback(lambda f, k=key: completed.put((k, f)))

    def finish(key: Any) -> None:
        for child in dependents[key]:
            missing[child] -= 1
            if missing[child] == 0:
                launch(child)

    roots = [k for k, count in missing.items() if count == 0]
    for key in roots:
        launch(key)
    for key in list(values):
        finish(key)

    while in_flight:
        key, future = completed.get()
        in_flight -= 1
        values[key] = future.result()
        finish(key)
    return {k: values[k] for k in keys}


def _is_key(arg: Any, graph: dict[Any, Any]) -> bool:
    """Return whether a task argument refers to another node of ``graph``."""
    try:
        return arg in graph
    except TypeError:  # unhashable literal
        return False
