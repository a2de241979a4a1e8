"""Dask-style task graphs: a dict of key -> literal or (function, *arguments) whose arguments may be keys."""

from __future__ import annotations

import collections
from collections.abc import Hashable, Iterable
from typing import Any

from scaler.errors import GraphCycleError, GraphKeyError


def is_task(value: Any) -> bool:
    """Whether a graph value is a task: a tuple whose first item is callable."""
    return type(value) is tuple and len(value) > 0 and callable(value[0])


def _is_key(graph: dict[Hashable, Any], value: Any) -> bool:
    try:
        return value in graph
    except TypeError:  # unhashable values are never keys
        return False


def dependencies_of(graph: dict[Hashable, Any], value: Any) -> list[Hashable]:
    """The keys a graph value refers to, including keys inside nested lists and tuples."""
    found: list[Hashable] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if _is_key(graph, item) and item is not value:
            found.append(item)
        elif is_task(item):
            stack.extend(item[1:])
        elif type(item) in (list, tuple):
            stack.extend(item)
    return found


def cull_and_order(graph: dict[Hashable, Any], keys: Iterable[Hashable]) -> list[Hashable]:
    """The keys needed for ``keys``, dependencies first.

    Raises GraphKeyError (a KeyError) for keys missing from the graph or named twice, and GraphCycleError
    (a graphlib.CycleError) for a cycle.
    """
    wanted = list(keys)
    missing = [key for key in wanted if not _is_key(graph, key)]
    if missing:
        raise GraphKeyError(f"keys not in the graph: {missing!r}")
    if len(set(wanted)) != len(wanted):
        repeated = [key for key, count in collections.Counter(wanted).items() if count > 1]
        raise GraphKeyError(f"keys named more than once: {repeated!r}")
    order: list[Hashable] = []
    state: dict[Hashable, int] = {}  # 1: being visited, 2: done
    for root in wanted:
        if state.get(root) == 2:
            continue
        stack: list[tuple[Hashable, bool]] = [(root, False)]
        while stack:
            key, children_done = stack.pop()
            if children_done:
                state[key] = 2
                order.append(key)
                continue
            if state.get(key) == 2:
                continue
            if state.get(key) == 1:
                raise GraphCycleError(f"the graph has a cycle through key {key!r}")
            state[key] = 1
            stack.append((key, True))
            value = graph[key]
            children = dependencies_of(graph, value) if is_task(value) else [
                d for d in dependencies_of(graph, value) if d != key
            ]
            for child in children:
                if state.get(child) == 1:
                    raise GraphCycleError(f"the graph has a cycle: {key!r} depends on {child!r}")
                if state.get(child) != 2:
                    stack.append((child, False))
    return order


def build_container(kind: type, *items: Any) -> Any:
    """Rebuild a list or tuple argument from its items (runs on a worker)."""
    return kind(items)
