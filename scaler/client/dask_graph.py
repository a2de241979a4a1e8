"""Graphs that Dask's collections hand to ``Client.get`` (``dask.compute(x, scheduler=client.get)``).

Work in progress: ``dask_request`` recognises nothing yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DaskRequest:
    """A Dask graph turned into a plain scaler graph, the flat keys to compute, and how Dask wants them back."""

    graph: dict[Any, Any]
    keys: list[Any]
    repack: Callable[[dict[Any, Any]], Any]


def dask_request(graph: Any, keys: Any) -> DaskRequest | None:
    """The plain form of a graph Dask sent, or None for a scaler graph (``get`` then works as documented)."""
    return None
