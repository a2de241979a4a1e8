"""Remote: a connection to a scheduler, as RLTK's ``rltk.remote.Remote`` (which wrapped a Dask client)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from scaler.client.client import Client
from scaler.client.future import ScalerFuture
from scaler.client.object_reference import ObjectReference
from scaler.parallel.connection import scheduler_address


class Remote:
    """A connection to the scheduler at ``address``: ``'HOST:PORT'`` (RLTK's form) or ``'tcp://HOST:PORT'``.

    ``client_options`` go to ``scaler.Client`` (``timeout_seconds``, ``serializer``, ...). Connecting where no
    scheduler answers fails with SchedulerLostError within the timeout. ``close()`` (or a ``with`` block)
    disconnects (a Remote left open goes with its program: the scheduler drops a client it stops hearing from).
    """

    def __init__(self, address: str, **client_options: Any) -> None:
        self.address = scheduler_address(address)
        self.client = Client(self.address, **client_options)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> ScalerFuture:
        """Run ``fn(*args, **kwargs)`` on a worker; returns its future."""
        return self.client.submit(fn, *args, **kwargs)

    def scatter(self, data: Any) -> ObjectReference:
        """Store ``data`` in the scheduler once; pass the reference to tasks in its place."""
        return self.client.send_object(data)

    def fetch(self, futures: Iterable[ScalerFuture], timeout: float | None = None) -> list[Any]:
        """The results of ``futures``, in order (raises the first failure)."""
        return [future.result(timeout) for future in futures]

    def cancel(self, futures: Iterable[ScalerFuture]) -> None:
        """Cancel the tasks of ``futures``."""
        for future in futures:
            future.cancel()

    def close(self) -> None:
        """Disconnect from the scheduler; the cluster goes on."""
        self.client.disconnect()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<scaler.remote.Remote {self.address}>"
