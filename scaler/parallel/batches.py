"""What runs on the workers: a mapper over a batch of items, and a mapper whose chunk is reduced where it ran.

Each is a callable object holding the user's functions, so a client sends it once (a client caches the
functions it has sent) and every batch task carries only its items.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

ArgumentsList = list[tuple[Any, ...]]
KeywordsList = list[dict[str, Any]] | None  # None: no item of the batch has keyword arguments


def _mapped(mapper: Callable[..., Any], arguments: ArgumentsList, keywords: KeywordsList) -> list[Any]:
    if keywords is None:
        return [mapper(*item) for item in arguments]
    return [mapper(*item, **item_keywords) for item, item_keywords in zip(arguments, keywords, strict=True)]


class BatchMapper:
    """``mapper`` applied to every item of a batch, in order; returns the list of its results.

    An item whose mapper raises fails the whole batch with that exception.
    """

    def __init__(self, mapper: Callable[..., Any], name: str) -> None:
        self.mapper = mapper
        self.__qualname__ = f"{name}[batch]"  # what monitors show for these tasks

    def __call__(self, arguments: ArgumentsList, keywords: KeywordsList = None) -> list[Any]:
        return _mapped(self.mapper, arguments, keywords)


class ChunkReducer:
    """``mapper`` applied to every item of a chunk, the results reduced with ``reducer`` on the same worker."""

    def __init__(self, mapper: Callable[..., Any], reducer: Callable[[Any, Any], Any], name: str) -> None:
        self.mapper = mapper
        self.reducer = reducer
        self.__qualname__ = f"{name}[map+reduce]"

    def __call__(self, arguments: ArgumentsList, keywords: KeywordsList = None) -> Any:
        return functools.reduce(self.reducer, _mapped(self.mapper, arguments, keywords))
