"""Small checks used while parsing a peer's message, before any state is changed."""

from __future__ import annotations

from typing import Any

from scaler.protocol.codec import MalformedMessage, Payload, resolve


def require(condition: bool, what: str) -> None:
    """Raise MalformedMessage saying ``what`` is wrong unless ``condition`` holds."""
    if not condition:
        raise MalformedMessage(what)


def as_list(value: Any, what: str, min_length: int = 0) -> list[Any]:
    """Return ``value`` if it is a list of at least ``min_length`` items."""
    if type(value) is not list or len(value) < min_length:
        raise MalformedMessage(f"{what} must be a list of at least {min_length} items")
    return value


def as_int(value: Any, what: str) -> int:
    """Return ``value`` if it is an int (not a bool)."""
    if type(value) is not int:
        raise MalformedMessage(f"{what} must be an integer")
    return value


def as_bytes(value: Any, what: str) -> bytes:
    """Return ``value`` if it is bytes."""
    if type(value) is not bytes:
        raise MalformedMessage(f"{what} must be bytes")
    return value


def as_str(value: Any, what: str) -> str:
    """Return ``value`` if it is a str."""
    if type(value) is not str:
        raise MalformedMessage(f"{what} must be a string")
    return value


def as_number(value: Any, what: str) -> float:
    """Return ``value`` as a float if it is an int or a float."""
    if type(value) not in (int, float):
        raise MalformedMessage(f"{what} must be a number")
    return float(value)


def resolve_object_items(items: Any, frames: list[Any]) -> list[tuple[bytes, Payload]]:
    """Parse ``[[object_id, payload_ref], ...]`` into (object id, payload) pairs."""
    parsed = []
    for item in as_list(items, "objects"):
        as_list(item, "object", 2)
        parsed.append((as_bytes(item[0], "object id"), resolve(item[1], frames)))
    return parsed
