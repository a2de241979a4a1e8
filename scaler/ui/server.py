"""Running the dashboard: ``serve()`` in this process, or ``DashboardProcess`` as a child process."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

from scaler import defaults
from scaler.cluster.service import ServiceProcess
from scaler.io.address import tcp_host_and_port
from scaler.security import Security
from scaler.ui import require_dashboard_dependencies
from scaler.utility.logging_setup import LoggingSettings

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
# Seconds uvicorn waits for open responses when it stops (the event streams end at once anyway).
_GRACEFUL_SHUTDOWN_SECONDS = 3


def dashboard_url(host: str, port: int) -> str:
    """The URL a browser opens for a dashboard listening on ``host``:``port``."""
    if host in ("", "0.0.0.0", "*", "::"):
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def dashboard_host_for(scheduler_address: str) -> str:
    """The host a dashboard started next to a scheduler listens on: the scheduler's tcp host, else 127.0.0.1."""
    parsed = tcp_host_and_port(scheduler_address)
    if parsed is None:
        return DEFAULT_HOST
    return "0.0.0.0" if parsed[0] == "*" else parsed[0]


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: any free port) and listening; OSError if it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except BaseException:
        listener.close()
        raise
    return listener


def serve(
    monitor_address: str,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    on_listening: Callable[[int], None] | None = None,
    security: Security | None = None,
) -> None:
    """Serve the dashboard of the scheduler publishing on ``monitor_address`` until SIGINT or SIGTERM.

    ``security``: the CURVE keys to read the status of a scheduler that has security on (scaler.security).

    Raises DashboardUnavailable without Starlette and uvicorn, OSError if ``host``:``port`` cannot be bound.
    ``on_listening`` gets the port (useful with ``port=0``) once the socket listens. Returns normally on a signal.
    """
    require_dashboard_dependencies()
    import uvicorn

    from scaler.ui.app import build_app
    from scaler.ui.status_feed import StatusFeed

    listener = listening_socket(host, port)
    port = listener.getsockname()[1]
    feed = StatusFeed(monitor_address, security)

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            feed.close_subscriptions()  # the browsers' event streams end, so their connections close at once
            await super().shutdown(sockets=sockets)

    config = uvicorn.Config(
        build_app(monitor_address, feed),
        log_config=None,  # uvicorn's messages go through this process's logging
        log_level="warning",
        access_log=False,
        loop="asyncio",
        lifespan="on",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = _Server(config)

    # uvicorn handles SIGINT and SIGTERM while it serves, then raises the signal again for the previous handler:
    # these handlers make that a no-op, and a signal before uvicorn takes over a request to stop.
    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        logger.info("dashboard of %s at %s", monitor_address, dashboard_url(host, port))
        if on_listening is not None:
            on_listening(port)
        server.run(sockets=[listener])
    finally:
        listener.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    logger.info("dashboard stopped")


class DashboardProcess(ServiceProcess):
    """The dashboard in a child process, which ends with its parent.

    ``start()`` returns once it listens (``url`` then tells where; ``port=0`` picks a free port) and raises
    DashboardUnavailable or RuntimeError if it cannot; ``shutdown()`` stops it.
    """

    def __init__(
        self,
        monitor_address: str,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        logging_settings: LoggingSettings | None = None,
        start_timeout_seconds: float = defaults.COMBO_START_TIMEOUT_SECONDS,
        security: Security | None = None,
    ) -> None:
        super().__init__("scaler-dashboard", logging_settings)
        self.monitor_address = monitor_address
        self.security = security
        self.host = host
        self.port = port
        self._start_timeout_seconds = start_timeout_seconds
        self._tell: multiprocessing.connection.Connection | None = None

    @property
    def url(self) -> str:
        """The http URL of the page."""
        return dashboard_url(self.host, self.port)

    def start(self) -> None:
        """Start the process; return once it listens, or raise RuntimeError (after stopping it) if it cannot."""
        require_dashboard_dependencies()
        listening, self._tell = multiprocessing.Pipe(duplex=False)
        try:
            super().start()
        finally:
            self._tell.close()
            self._tell = None
        answer: Any = None
        try:
            if listening.poll(self._start_timeout_seconds):
                answer = listening.recv()
        except EOFError:  # the process ended without telling
            pass
        finally:
            listening.close()
        if isinstance(answer, int):
            self.port = answer
            return
        self.shutdown(timeout_seconds=5)
        reason = answer if isinstance(answer, str) else f"exit code {self.exitcode}"
        raise RuntimeError(f"the dashboard could not listen on {self.host}:{self.port}: {reason}")

    def _serve(self) -> None:
        tell = self._tell
        try:
            serve(
                self.monitor_address, self.host, self.port, tell.send if tell is not None else None, self.security
            )
        except OSError as exc:
            if tell is None:
                raise
            tell.send(str(exc))
            raise SystemExit(1) from None
        finally:
            if tell is not None:
                tell.close()

    def __repr__(self) -> str:
        state = "running" if self.pid is not None and self.exitcode is None else "not running"
        return f"<scaler DashboardProcess {self.url} of {self.monitor_address} {state}>"
