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
from scaler.scheduler.core import SchedulerCore
from scaler.scheduler.invariants import enabled_by_environment
from scaler.scheduler.status_reporter import StatusReporter

logger = logging.getLogger(__name__)

# Malformed messages logged one by one before the log only counts them.
_MALFORMED_LOG_LIMIT = 20
_HANDSHAKE_MILLISECONDS = 5000
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
        self._router = context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.SNDHWM, 0)
        self._router.setsockopt(zmq.RCVHWM, 0)
        self._router.setsockopt(zmq.LINGER, 0)
        # A connection that has not finished ZeroMQ's greeting within this time is closed, so silent TCP
        # connections cannot hold the scheduler's file descriptors for long.
        self._router.setsockopt(zmq.HANDSHAKE_IVL, _HANDSHAKE_MILLISECONDS)
        self.monitor_address = config.monitor_address or default_monitor_address(config.address)
        self._monitor = context.socket(zmq.PUB)
        self._monitor.setsockopt(zmq.LINGER, 0)
        self._monitor.setsockopt(zmq.SNDHWM, 10)
        try:
            _bind(self._router, config.address, "")
            _bind(self._monitor, self.monitor_address, "monitor ")
        except StartError:
            self._router.close(linger=0)
            self._monitor.close(linger=0)
            raise
        self._socket: AsyncSocket | None = None
        self._stopped = asyncio.Event()
        self._stop_reason = "stopped"
        self.core = SchedulerCore(config, self._send, self._stop_soon, enabled_by_environment())
        self._messages_sent = 0
        self.status = StatusReporter(
            self._monitor, self.core, config.address, config.status_interval_seconds, lambda: self._messages_sent
        )

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Serve until stop() is called."""
        self._socket = AsyncSocket(self._router, self._on_message, "scheduler")
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
        self.core.expire_peers(time.monotonic())

    def _balance(self) -> None:
        self.core.balance()
