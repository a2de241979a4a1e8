"""dask.distributed: ``LocalCluster(n_workers=W, processes=True, threads_per_worker=1)`` plus a ``Client``."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from benchmarks.engines.base import Engine


class DaskEngine(Engine):
    """A local dask.distributed cluster with one single-threaded worker process per worker."""

    name = "dask"

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._cluster: Any = None
        self._client: Any = None

    def prepare(self) -> None:
        import distributed  # noqa: F401  (ImportError marks the engine unavailable)

    def start(self) -> None:
        import distributed

        self._cluster = distributed.LocalCluster(
            n_workers=self.workers,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
        )
        self._client = distributed.Client(self._cluster)

    def shutdown(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    @property
    def address(self) -> str:
        """The scheduler's address (``cluster.scheduler_address``)."""
        assert self._cluster is not None, "engine not started"
        return str(self._cluster.scheduler_address)

    def worker_command(self) -> list[str]:
        """Command line starting one more single-threaded worker process for this scheduler."""
        return [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            self.address,
            "--nworkers",
            "1",
            "--nthreads",
            "1",
            "--no-dashboard",
        ]

    @contextlib.contextmanager
    def second_client(self) -> Iterator[Callable[..., Any]]:
        """Connect another ``distributed.Client`` to the same scheduler; yield its ``submit``; close it after."""
        import distributed

        client = distributed.Client(self.address)
        try:
            yield functools.partial(client.submit, pure=False)
        finally:
            client.close()

    @property
    def client(self) -> Any:
        """The connected ``distributed.Client``."""
        assert self._client is not None, "engine not started"
        return self._client

    def map(self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> list[Any]:
        futures = self.client.map(fn, *zip(*args, strict=True), pure=False)
        return self.client.gather(futures)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def gather(self, handles: Sequence[Any]) -> list[Any]:
        return self.client.gather(list(handles))

    def put(self, obj: Any) -> Any:
        return self.client.scatter(obj, hash=False)

    def get(self, graph: dict[Any, Any], keys: Sequence[Any]) -> dict[Any, Any]:
        keys = list(keys)
        values = self.client.get(graph, keys)
        return dict(zip(keys, values, strict=True))
