"""The Client a parallel helper works through: its own local cluster, a cluster at an address, or a lent Client."""

from __future__ import annotations

from scaler.client.client import Client
from scaler.cluster.combo import SchedulerClusterCombo
from scaler.io.address import validate_address

ClientOption = Client | str | None


def scheduler_address(address: str) -> str:
    """``address`` as a ZeroMQ address: RLTK's ``'HOST:PORT'`` becomes ``'tcp://HOST:PORT'``.

    Raises ValueError for anything that is not an address scaler can connect to.
    """
    if not isinstance(address, str):
        raise TypeError(f"a scheduler address is a string like '127.0.0.1:8516', not {type(address).__name__}")
    if "://" not in address:
        address = f"tcp://{address}"
    return validate_address(address)


class ClusterConnection:
    """Holds the Client that tasks are submitted through, and knows what to stop at the end.

    ``client=None`` starts a ``SchedulerClusterCombo(n_workers=n_workers)`` on this machine, stopped by
    ``close()``; an address string connects a new Client, disconnected by ``close()``; a Client is only
    borrowed: ``close()`` leaves it (and its cluster) as they are.
    """

    def __init__(self, client: ClientOption, n_workers: int) -> None:
        self._cluster: SchedulerClusterCombo | None = None
        self._owns_client = not isinstance(client, Client)
        if isinstance(client, Client):
            self.client = client
        elif isinstance(client, str):
            self.client = Client(scheduler_address(client))
        elif client is None:
            self._cluster = SchedulerClusterCombo(n_workers=n_workers)
            try:
                self.client = Client(self._cluster.get_address())
            except BaseException:
                self._cluster.shutdown()
                raise
        else:
            raise TypeError(f"client must be a scaler Client, an address string or None, not {type(client).__name__}")

    @property
    def owns_cluster(self) -> bool:
        """Whether this connection started the cluster it works on."""
        return self._cluster is not None

    def close(self) -> None:
        """Disconnect a Client this connection made, and stop a cluster it started; idempotent."""
        try:
            if self._owns_client:
                self.client.disconnect()
        finally:
            if self._cluster is not None:
                cluster, self._cluster = self._cluster, None
                cluster.shutdown()
