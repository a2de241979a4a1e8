"""Futures as task arguments: a task given a future waits for it and receives its result.

A future still pending becomes a dependency the scheduler resolves: the result goes from worker to
worker through the scheduler's object store, never through the client. A future already done gives
its value (the client has it), and a failed or cancelled one fails the new task with that cause. A
future inside a list, tuple or dict is replaced by a slot, filled on the worker by ``fill_slots``.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from typing import Any

from scaler.client.future import ScalerFuture

# Containers searched for futures (exactly these types: a subclass may not rebuild from its items).
_CONTAINERS = (list, tuple, dict)


def holds_future(value: Any) -> bool:
    """Whether ``value`` is a ScalerFuture or a list, tuple or dict holding one, at any depth."""
    kind = type(value)
    if kind is ScalerFuture or isinstance(value, ScalerFuture):
        return True
    if kind is list or kind is tuple:
        return any(holds_future(item) for item in value)
    if kind is dict:
        return any(holds_future(key) or holds_future(item) for key, item in value.items())
    return False


def futures_in(value: Any) -> list[ScalerFuture]:
    """Every ScalerFuture in ``value`` (a future, or a list, tuple or dict holding some, at any depth)."""
    if isinstance(value, ScalerFuture):
        return [value]
    kind = type(value)
    if kind is list or kind is tuple:
        return [future for item in value for future in futures_in(item)]
    if kind is dict:
        return [future for key, item in value.items() for future in (*futures_in(key), *futures_in(item))]
    return []


@dataclass(frozen=True)
class Slot:
    """Stands in a container for the ``index``-th value ``fill_slots`` receives."""

    index: int


def fill_slots(template: Any, *values: Any) -> Any:
    """``template`` with every Slot replaced by its value (runs on the worker, as a task of its own)."""
    return _filled(template, values)


def _filled(template: Any, values: tuple[Any, ...]) -> Any:
    kind = type(template)
    if kind is Slot:
        return values[template.index]
    if kind is list:
        return [_filled(item, values) for item in template]
    if kind is tuple:
        return tuple(_filled(item, values) for item in template)
    if kind is dict:
        return {_filled(key, values): _filled(item, values) for key, item in template.items()}
    return template


class InputFailed(Exception):
    """A future given as an argument failed or was cancelled; ``cause`` says how."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass(frozen=True)
class Pending:
    """A pending future of this client standing for a whole argument: it becomes a dependency."""

    future: ScalerFuture


@dataclass(frozen=True)
class Filled:
    """A container holding pending futures: a ``fill_slots`` task builds it from ``template`` and ``futures``."""

    template: Any
    futures: list[ScalerFuture] = field(default_factory=list)


def resolve_argument(value: Any, belongs: Any) -> Any:
    """``value`` with done futures replaced by their values; a pending future (or a container holding
    some) comes back as Pending (or Filled). ``belongs(future)`` says whether a future is this client's.

    Raises InputFailed for a failed or cancelled future, TypeError for a pending future of another client.
    """
    if isinstance(value, ScalerFuture):
        return _resolved_future(value, belongs)
    if not holds_future(value):
        return value
    pending: list[ScalerFuture] = []
    template = _template(value, belongs, pending)
    return Filled(template, pending) if pending else template


def _resolved_future(future: ScalerFuture, belongs: Any) -> Any:
    if future.done():
        try:
            return future.result()
        except concurrent.futures.CancelledError as exc:
            raise InputFailed(exc) from None
        except Exception as exc:
            raise InputFailed(exc) from None
    if not belongs(future):
        raise TypeError("a pending future of another client cannot be an argument: pass its result instead")
    return Pending(future)


def _template(value: Any, belongs: Any, pending: list[ScalerFuture]) -> Any:
    if isinstance(value, ScalerFuture):
        resolved = _resolved_future(value, belongs)
        if type(resolved) is not Pending:
            return resolved
        pending.append(value)
        return Slot(len(pending) - 1)
    kind = type(value)
    if kind is list:
        return [_template(item, belongs, pending) for item in value]
    if kind is tuple:
        return tuple(_template(item, belongs, pending) for item in value)
    if kind is dict:
        return {_template(key, belongs, pending): _template(item, belongs, pending) for key, item in value.items()}
    return value
