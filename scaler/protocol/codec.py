"""Encoding and decoding of multipart messages: one msgpack envelope plus payload frames."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack
import zmq

from scaler.defaults import PAYLOAD_INLINE_LIMIT_BYTES
from scaler.protocol.messages import MessageType

Payload = bytes | zmq.Frame | memoryview
PayloadRef = bytes | int

_TYPES_BY_CODE = {int(t): t for t in MessageType}


class MalformedMessage(ValueError):
    """A message that cannot be decoded or does not have the layout its type requires."""


class FrameWriter:
    """Collects the payload frames of one outgoing message and hands out payload references."""

    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames: list[Payload] = []

    def add(self, payload: Payload) -> PayloadRef:
        """Return a reference to ``payload``: the bytes themselves when small, else a frame index."""
        if type(payload) is bytes and len(payload) <= PAYLOAD_INLINE_LIMIT_BYTES:
            return payload
        self.frames.append(payload)
        return len(self.frames) - 1


def encode(msg_type: MessageType, fields: Sequence[Any] = (), frames: Sequence[Payload] = ()) -> list[Payload]:
    """Build the multipart message for ``msg_type`` with its envelope fields and payload frames."""
    return [msgpack.packb([int(msg_type), *fields], use_bin_type=True), *frames]


def decode(parts: Sequence[Any]) -> tuple[MessageType, list[Any], list[Any]]:
    """Split a received multipart message into its type, envelope fields and payload frames.

    Raises MalformedMessage for anything that is not a well-formed envelope of a known type.
    """
    if not parts:
        raise MalformedMessage("empty message")
    head = parts[0]
    raw = head.bytes if isinstance(head, zmq.Frame) else head
    try:
        envelope = msgpack.unpackb(raw, raw=False, use_list=True, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise MalformedMessage(f"undecodable envelope: {type(exc).__name__}") from None
    if not isinstance(envelope, list) or not envelope or type(envelope[0]) is not int:
        raise MalformedMessage("envelope is not a list starting with a type code")
    msg_type = _TYPES_BY_CODE.get(envelope[0])
    if msg_type is None:
        raise MalformedMessage(f"unknown message type {envelope[0]}")
    return msg_type, envelope[1:], list(parts[1:])


def resolve(ref: Any, frames: Sequence[Any]) -> Payload:
    """Return the payload a reference names within a received message."""
    if type(ref) is bytes:
        return ref
    if type(ref) is int and 0 <= ref < len(frames):
        return frames[ref]
    raise MalformedMessage("bad payload reference")


def payload_bytes(payload: Payload) -> bytes:
    """Return a payload as ``bytes`` (copies a frame)."""
    if type(payload) is bytes:
        return payload
    if isinstance(payload, zmq.Frame):
        return payload.bytes
    return bytes(payload)


def payload_view(payload: Payload) -> bytes | memoryview:
    """Return a payload as a buffer without copying it."""
    if isinstance(payload, zmq.Frame):
        return payload.buffer
    return payload


def payload_size(payload: Payload) -> int:
    """Number of bytes of a payload."""
    if isinstance(payload, zmq.Frame):
        return len(payload.buffer)
    return len(payload)
