"""Which peers may talk: a client, worker and scheduler must run the same scaler version."""

from __future__ import annotations

from typing import Any

from scaler import version

UNKNOWN_VERSION = "a version older than the version check"


def version_field(fields: list[Any], index: int) -> str:
    """The version a peer sent at ``index`` of its message, or UNKNOWN_VERSION when it sent none."""
    if len(fields) > index and type(fields[index]) is str:
        return fields[index]
    return UNKNOWN_VERSION


def mismatch(peer: str, peer_version: str, here: str) -> str | None:
    """None when ``peer_version`` is this process's version, else one line naming both, e.g. ``the client
    runs scaler 1.0, this scheduler runs scaler 1.1: run the same version everywhere``."""
    own = version.__version__
    if peer_version == own:
        return None
    return f"the {peer} runs scaler {peer_version}, {here} runs scaler {own}: run the same version everywhere"
