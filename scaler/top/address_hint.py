"""What to say when no status comes: most often the address is the scheduler's own port, not its monitor's."""

from __future__ import annotations

import socket

from scaler.io.address import connectable_address, default_monitor_address, tcp_host_and_port


def suggested_monitor_address(address: str) -> str | None:
    """The monitor address of a scheduler listening on ``address``: its port + 1 for tcp, ``PATH.monitor`` for ipc.

    None when there is nothing sensible to suggest (the port is already the last one, the ipc path is already a
    monitor path, or the address is neither tcp nor ipc).
    """
    if address.startswith("tcp://"):
        parsed = tcp_host_and_port(address)
        if parsed is None or parsed[1] >= 65535:
            return None
        return default_monitor_address(address)
    if address.startswith("ipc://") and not address.endswith(".monitor"):
        return default_monitor_address(address)
    return None


def something_listens(address: str, timeout_seconds: float = 0.5) -> bool | None:
    """Whether a TCP connection to a tcp ``address`` succeeds; None for other transports or unparsable addresses."""
    parsed = tcp_host_and_port(connectable_address(address))
    if parsed is None:
        return None
    try:
        with socket.create_connection(parsed, timeout=timeout_seconds):
            return True
    except OSError:
        return False


def no_status_message(address: str, waited_seconds: float, listening: bool | None = None) -> str:
    """The message for no status from ``address`` after ``waited_seconds``, with a hint about the monitor port.

    ``listening`` says whether something accepted a TCP connection on the address (None: unknown).
    """
    message = f"no status from {address} within {waited_seconds:g} s"
    monitor = suggested_monitor_address(address)
    if listening is False:
        message += "; nothing listens there: is the scheduler running?"
    elif listening is True:
        message += "; something listens there but publishes no status"
    if monitor is not None:
        where = "port + 1" if address.startswith("tcp://") else "path + .monitor"
        message += f"; a scheduler's monitor is on its {where} ({monitor}) unless it was started with --monitor-address"
    return message
