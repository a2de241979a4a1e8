"""Addresses: parsing, free ports, and the monitor address derived from a scheduler address."""

from __future__ import annotations

import socket

_SCHEMES = ("tcp://", "ipc://", "inproc://")


def validate_address(address: str) -> str:
    """Return ``address`` if it is a ZeroMQ address scaler can use, else raise ValueError."""
    if not isinstance(address, str) or not address.startswith(_SCHEMES):
        raise ValueError(f"not a ZeroMQ address (tcp://HOST:PORT or ipc://PATH): {address!r}")
    if address.startswith("tcp://"):
        host, _, port = address[len("tcp://") :].rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"a tcp address needs a host and a port in 1..65535: {address!r}")
    return address


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def local_address(host: str = "127.0.0.1") -> str:
    """A fresh tcp address on ``host`` (127.0.0.1 by default; an IPv6 host such as ``::1`` works too) whose next
    port (the default monitor port) is free too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    for _ in range(100):
        with socket.socket(family, socket.SOCK_STREAM) as first:
            first.bind((host, 0))
            port = first.getsockname()[1]
            with socket.socket(family, socket.SOCK_STREAM) as second:
                try:
                    second.bind((host, port + 1))
                except OSError:
                    continue
        return f"tcp://{shown}:{port}"
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return f"tcp://{shown}:{probe.getsockname()[1]}"


def tcp_host_and_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a tcp address (brackets around an IPv6 host removed); None for other addresses."""
    if not address.startswith("tcp://"):
        return None
    host, _, port = address[len("tcp://") :].rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def connectable_address(address: str) -> str:
    """``address`` with a wildcard host (``*``, ``0.0.0.0``: every interface, as a scheduler may bind) replaced
    by 127.0.0.1, so that this machine can connect to it."""
    parsed = tcp_host_and_port(address)
    if parsed is not None and parsed[0] in ("*", "0.0.0.0", "::"):
        return f"tcp://127.0.0.1:{parsed[1]}"
    return address


def default_monitor_address(address: str) -> str:
    """The monitor address of a scheduler: the next port for tcp, a sibling path for ipc.

    ValueError when the next port is out of range (a scheduler on port 65535 needs a monitor address given).
    """
    if address.startswith("tcp://"):
        host, _, port = address[len("tcp://") :].rpartition(":")
        if int(port) + 1 > 65535:
            raise ValueError(
                f"the monitor address of {address} would be port {int(port) + 1}, out of range: "
                "give a monitor address (--monitor-address) or another port"
            )
        return f"tcp://{host}:{int(port) + 1}"
    return address + ".monitor"
