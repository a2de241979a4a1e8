"""The scheduler's I/O shell: one ROUTER socket and a monitor socket around a SchedulerCore, and its routines."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import zmq

from scaler.errors import StartError
from scaler.io.address import default_monitor_address
from scaler.io.async_socket import AsyncSocket
from scaler.protocol.codec import MalformedMessage, decode
from scaler.scheduler.config import SchedulerConfig
from scaler.scheduler.connection_watch import ConnectionWatch
from scaler.scheduler.core import SchedulerCore
from scaler.scheduler.invariants import enabled_by_environment
from scaler.scheduler.status_reporter import StatusReporter
from scaler.security import (
    CLIENT_ROLE,
    MONITOR_DOMAIN,
    ROUTER_DOMAIN,
    WORKER_ROLE,
    Authenticator,
    Security,
    apply_server,
    peer_address_text,
    peer_role,
)
from scaler.utility.log_limit import OncePerKey

logger = logging.getLogger(__name__)

# Malformed messages logged one by one before the log only counts them.
_MALFORMED_LOG_LIMIT = 20
_HANDSHAKE_MILLISECONDS = 5000
# Seconds a connection may stay open without sending a message (clients and workers say hello at once and
# heartbeat every few seconds) before the scheduler closes it.
_SILENT_CONNECTION_SECONDS = 10.0
# How long a stopping scheduler may take to hand its last words to its peers' connections.
_FAREWELL_LINGER_MILLISECONDS = 1000


def _bind(socket: zmq.Socket, address: str, what: str) -> None:
    try:
        socket.bind(address)
    except zmq.ZMQError as exc:
        reason = zmq.strerror(exc.errno or 0)
        raise StartError(f"the scheduler cannot listen on its {what}address {address}: {reason}") from None


class Scheduler:
    """One asyncio loop and one ROUTER socket; the decisions are the core's (``self.core``)."""

    def __init__(self, config: SchedulerConfig, context: zmq.Context) -> None:
        self.config = config
        self._context = context
        # CURVE security: the ZAP handler is bound before the secured sockets, so no handshake goes unchecked.
        self._security = Security.from_settings(config)
        self.authenticator: Authenticator | None = None
        self._zap_socket: AsyncSocket | None = None
        self._handshake_failures = 0
        self._refused_peers = OncePerKey()  # (what was refused, identity): each logged once
        self._current_frame: Any = None
        if self._security is not None:
            try:
                self.authenticator = Authenticator(context, self._security)
                self.authenticator.bind()
            except ValueError as exc:
                raise StartError(f"the scheduler cannot start its CURVE security: {exc}") from None
        self._router = context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.IPV6, 1)  # IPv6 addresses as well as IPv4 ones (tcp://* binds both)
        self._router.setsockopt(zmq.SNDHWM, 0)
        self._router.setsockopt(zmq.RCVHWM, 0)
        self._router.setsockopt(zmq.LINGER, 0)
        # A connection that has not finished ZeroMQ's greeting within this time is closed, so silent TCP
        # connections cannot hold the scheduler's file descriptors for long.
        self._router.setsockopt(zmq.HANDSHAKE_IVL, _HANDSHAKE_MILLISECONDS)
        self.monitor_address = config.monitor_address or default_monitor_address(config.address)
        self._monitor = context.socket(zmq.PUB)
        self._monitor.setsockopt(zmq.IPV6, 1)
        self._monitor.setsockopt(zmq.LINGER, 0)
        self._monitor.setsockopt(zmq.SNDHWM, 10)
        if self._security is not None:
            apply_server(self._router, self._security, ROUTER_DOMAIN)
            apply_server(self._monitor, self._security, MONITOR_DOMAIN)
        self._connection_watch = ConnectionWatch(
            self._router,
            _SILENT_CONNECTION_SECONDS,
            zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL if self._security else 0,
            self._on_handshake_event if self._security else None,
        )
        try:
            _bind(self._router, config.address, "")
            _bind(self._monitor, self.monitor_address, "monitor ")
        except StartError:
            self._router.close(linger=0)
            self._monitor.close(linger=0)
            self._connection_watch.close()
            if self.authenticator is not None:
                self.authenticator.close()
            raise
        self._socket: AsyncSocket | None = None
        self._stopped = asyncio.Event()
        self._stop_reason = "stopped"
        self.core = SchedulerCore(
            config,
            self._send,
            self._stop_soon,
            enabled_by_environment(),
            self._worker_refusal if self._security is not None else None,
            self._client_refusal if self._security is not None else None,
        )
        self._messages_sent = 0
        self.status = StatusReporter(
            self._monitor, self.core, config.address, config.status_interval_seconds, lambda: self._messages_sent
        )

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Serve until stop() is called."""
        on_message = self._on_message
        if self.authenticator is not None:
            authenticator = self.authenticator
            self._zap_socket = AsyncSocket(authenticator.socket, self._on_zap_request, "scheduler ZAP")
            on_message = self._on_secured_message
        self._watch_socket = AsyncSocket(
            self._connection_watch.monitor, self._connection_watch.on_monitor_message, "scheduler connections"
        )
        self._socket = AsyncSocket(self._router, on_message, "scheduler")
        logger.info("scheduler listening on %s", self.config.address)
        logger.info("scheduler monitor address is %s", self.monitor_address)
        routines = [
            asyncio.create_task(self._every(1.0, self._expire_peers)),
            asyncio.create_task(self._every(self.config.load_balance_seconds, self._balance)),
            asyncio.create_task(self._every(self.config.status_interval_seconds, self.status.publish)),
        ]
        try:
            await self._stopped.wait()
        finally:
            for routine in routines:
                routine.cancel()
            await asyncio.gather(*routines, return_exceptions=True)
            self.core.farewell(self._stop_reason)
            self.core.outbox.flush()
            self._socket.close(linger_ms=_FAREWELL_LINGER_MILLISECONDS)
            self._monitor.close(linger=0)
            self._watch_socket.close()
            if self._zap_socket is not None:
                self._zap_socket.close()
            logger.info("scheduler stopped")

    def stop(self, reason: str = "stopped") -> None:
        """Ask the scheduler to stop serving; its workers and clients are told ``reason``."""
        if not self._stopped.is_set():
            self._stop_reason = reason
        self._stopped.set()

    async def _every(self, seconds: float, routine: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                routine()
                self.core.after_handling()
            except Exception:
                logger.exception("periodic routine %s failed", getattr(routine, "__name__", routine))

    # ------------------------------------------------------------------ messages

    def _send(self, identity: bytes, parts: list[Any]) -> None:
        assert self._socket is not None
        self._messages_sent += 1
        self._socket.send([identity, *parts])

    def _on_message(self, parts: list[Any]) -> None:
        core = self.core
        core.counters["messages"] += 1
        self._connection_watch.spoke(parts[-1])
        try:
            identity = parts[0].bytes
            msg_type, fields, frames = decode(parts[1:])
            core.on_message(identity, msg_type, fields, frames)
        except MalformedMessage as exc:
            self._count_malformed(str(exc))
        except Exception:
            core.counters["handler_errors"] += 1
            logger.exception("failed to handle a message; it was dropped")
        try:
            core.after_handling()
        except Exception:
            core.counters["handler_errors"] += 1
            logger.exception("failed to assign tasks or send after a message")

    # ------------------------------------------------------------------ CURVE security

    def _on_secured_message(self, parts: list[Any]) -> None:
        # The routing id frame is made by the ROUTER; the peer's frames carry the connection's ZAP User-Id.
        self._current_frame = parts[1] if len(parts) > 1 else None
        try:
            self._on_message(parts)
        finally:
            self._current_frame = None

    def _client_refusal(self, identity: bytes, parent_task_id: int | None) -> str | None:
        """Why the peer sending the CLIENT_CONNECT being handled may not be a client, or None if it may: a client
        key may; a worker key only from inside a task a worker holds (a nested client)."""
        role = peer_role(self._current_frame)
        if role == CLIENT_ROLE:
            return None
        if role == WORKER_ROLE and parent_task_id is not None and self.core.tasks.on_a_worker(parent_task_id):
            return None
        if self._refused_peers.first(("client", identity)):
            logger.warning(
                "CURVE: refused CLIENT_CONNECT from %s: its key is allowed as a %s, which may connect as a client "
                "only from inside a running task",
                self._current_peer_address(),
                role or "nothing",
            )
        return "this key is not allowed to connect as a client (curve_allowed_clients)"

    def _current_peer_address(self) -> str:
        try:
            address = self._current_frame.get("Peer-Address") if self._current_frame is not None else None
        except (zmq.ZMQError, KeyError):
            address = None
        return peer_address_text(address) if address else "?"

    def _worker_refusal(self, identity: bytes) -> str | None:
        """Why the peer sending the WORKER_CONNECT being handled may not be a worker, or None if it may."""
        role = peer_role(self._current_frame)
        if role == WORKER_ROLE:
            return None
        if self._refused_peers.first(("worker", identity)):
            logger.warning(
                "CURVE: refused WORKER_CONNECT from %s (peer %r): its key is allowed as a %s, not as a worker",
                self._current_peer_address(),
                identity,
                role or "nothing",
            )
        return "this key is not allowed to register as a worker (curve_allowed_workers)"

    def _on_zap_request(self, parts: list[Any]) -> None:
        assert self.authenticator is not None and self._zap_socket is not None
        reply = self.authenticator.on_request(parts)
        if reply is not None:
            self._zap_socket.send(reply)

    def _on_handshake_event(self, parts: list[Any]) -> None:
        # Peers without CURVE, or with a wrong public key for this scheduler, never reach the ZAP handler.
        self._handshake_failures += 1
        count = self._handshake_failures
        if count == 1 or count in (10, 100, 1000) or count % 10_000 == 0:
            logger.warning(
                "CURVE: refused %d connection%s that failed the security handshake (a peer without keys, or "
                "with a wrong scheduler public key; ZeroMQ does not tell its address)",
                count,
                "" if count == 1 else "s",
            )

    def reload_security(self) -> None:
        """Read the CURVE allow-lists again (on SIGHUP); the connections already accepted stay."""
        if self.authenticator is None:
            logger.info("SIGHUP: CURVE security is off, nothing to reload")
            return
        self.authenticator.reload()
        self._refused_peers.forget()

    def _count_malformed(self, reason: str) -> None:
        counters = self.core.counters
        counters["malformed"] += 1
        count = counters["malformed"]
        if count <= _MALFORMED_LOG_LIMIT:
            logger.warning("dropped a malformed message: %s", reason)
        elif count % 10_000 == 0:
            logger.warning("dropped %d malformed messages so far", count)

    def shutdown_cluster(self) -> None:
        """Cancel all work, tell every worker and client, then stop."""
        self.core.shutdown_cluster()

    def _stop_soon(self) -> None:
        asyncio.get_running_loop().call_later(0.2, self.stop)

    def _expire_peers(self) -> None:
        now = time.monotonic()
        self.core.expire_peers(now)
        self._connection_watch.close_silent(now)

    def _balance(self) -> None:
        self.core.balance()
