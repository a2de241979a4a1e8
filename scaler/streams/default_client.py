"""Which Client a stream uses when none is given: the one set with set_default_client, else the most
recently created Client of this process that is still connected (Dask's rule for its default client).
"""

from __future__ import annotations

import threading
import weakref

from scaler.client.client import Client, latest_client

_lock = threading.Lock()
_chosen: weakref.ref[Client] | None = None


def set_default_client(client: Client | None) -> None:
    """Make ``client`` the default client of this process while it is connected; ``None`` goes back to
    the most recently created client."""
    global _chosen
    if client is not None and not isinstance(client, Client):
        raise TypeError(f"expected a scaler Client or None, got {type(client).__name__}")
    with _lock:
        _chosen = weakref.ref(client) if client is not None else None


def default_client() -> Client:
    """The client set with ``set_default_client`` if it is still connected, else the most recently
    created client of this process that is; ValueError if there is none."""
    with _lock:
        chosen = _chosen() if _chosen is not None else None
    if chosen is not None and is_connected(chosen):
        return chosen
    client = latest_client()
    if client is None:
        raise ValueError(
            "no connected scaler Client in this process: create one, Client(address), or pass one to "
            "scatter(client=...)"
        )
    return client


def is_connected(client: Client) -> bool:
    """Whether ``client`` can still submit tasks (neither disconnected nor cut off from its scheduler)."""
    return client.connected
