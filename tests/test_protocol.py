"""The message codec on its own."""

from __future__ import annotations

import msgpack
import pytest
import zmq

from scaler.defaults import PAYLOAD_INLINE_LIMIT_BYTES
from scaler.protocol.codec import FrameWriter, MalformedMessage, decode, encode, resolve
from scaler.protocol.messages import MessageType


def test_a_message_round_trips_with_its_frames() -> None:
    writer = FrameWriter()
    small = writer.add(b"small")
    large = writer.add(b"L" * (PAYLOAD_INLINE_LIMIT_BYTES + 1))
    parts = encode(MessageType.OBJECT_PUT, [[b"a", small], [b"b", large]], writer.frames)
    msg_type, fields, frames = decode(parts)
    assert msg_type is MessageType.OBJECT_PUT
    assert resolve(fields[0][1], frames) == b"small"
    assert resolve(fields[1][1], frames) == b"L" * (PAYLOAD_INLINE_LIMIT_BYTES + 1)
    assert len(frames) == 1


def test_zmq_frames_always_travel_as_frames() -> None:
    writer = FrameWriter()
    assert writer.add(zmq.Frame(b"tiny")) == 0


@pytest.mark.parametrize(
    "parts",
    [
        [],
        [b""],
        [b"\xc1"],
        [msgpack.packb({"a": 1})],
        [msgpack.packb([])],
        [msgpack.packb(["1"])],
        [msgpack.packb([9999])],
        [msgpack.packb([True])],
    ],
)
def test_malformed_envelopes_raise_malformed_message(parts: list[bytes]) -> None:
    with pytest.raises(MalformedMessage):
        decode(parts)


@pytest.mark.parametrize("reference", [5, -1, "x", None, 1.5])
def test_bad_payload_references_raise_malformed_message(reference: object) -> None:
    with pytest.raises(MalformedMessage):
        resolve(reference, [b"only one frame"])
