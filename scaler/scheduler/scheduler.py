"""The scheduler: wires the managers to one ROUTER socket and runs their periodic routines."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Any

import zmq

from scaler.io.address import default_monitor_address
from scaler.io.async_socket import AsyncSocket
from scaler.protocol.checks import as_bytes, as_list, resolve_object_items
from scaler.protocol.codec import MalformedMessage, decode, encode
from scaler.protocol.messages import MessageType
from scaler.scheduler.client_manager import ClientManager, ClientRecord
from scaler.scheduler.config import SchedulerConfig
from scaler.scheduler.object_manager import ObjectManager
from scaler.scheduler.outbox import Outbox
from scaler.scheduler.status_reporter import StatusReporter
from scaler.scheduler.task_manager import TaskManager
from scaler.scheduler.worker_manager import WorkerManager, WorkerRecord

logger = logging.getLogger(__name__)

# Malformed messages logged one by one before the log only counts them.
_MALFORMED_LOG_LIMIT = 20


class Scheduler:
    """One asyncio loop, one ROUTER socket, and managers that each have a single job."""

    def __init__(self, config: SchedulerConfig, context: zmq.Context) -> None:
        self.config = config
        self._context = context
        self._router = context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.SNDHWM, 0)
        self._router.setsockopt(zmq.RCVHWM, 0)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.bind(config.address)
        self.monitor_address = config.monitor_address or default_monitor_address(config.address)
        self._monitor = context.socket(zmq.PUB)
        self._monitor.setsockopt(zmq.LINGER, 0)
        self._monitor.setsockopt(zmq.SNDHWM, 10)
        self._monitor.bind(self.monitor_address)
        self._socket: AsyncSocket | None = None
        self._stopped = asyncio.Event()
        self.counters: collections.Counter[str] = collections.Counter()

        self.outbox = Outbox(self._send)
        self.clients = ClientManager(self._send, config.client_timeout_seconds, config.protected, self._on_client_gone)
        self.objects = ObjectManager(self._tell_worker_to_delete)
        self.workers = WorkerManager(
            self._send,
            config.worker_timeout_seconds,
            config.per_worker_queue_size,
            self._on_worker_gone,
            lambda: None,
        )
        self.tasks = TaskManager(
            self._send,
            self.outbox,
            self.clients,
            self.workers,
            self.objects,
            config.allowed_failures,
            config.max_number_of_tasks_waiting,
        )
        self.status = StatusReporter(
            self._monitor,
            {
                "clients": self._describe_clients,
                "workers": self.workers.describe,
                "tasks": self.tasks.describe,
                "objects": self.objects.describe,
                "counters": lambda: dict(self.counters),
            },
        )
        self._client_handlers: dict[MessageType, Callable[[ClientRecord, list[Any], list[Any]], None]] = {
            MessageType.CLIENT_HEARTBEAT: lambda c, f, fr: self.clients.on_heartbeat(c.identity),
            MessageType.TASK_SUBMIT: self.tasks.on_submit,
            MessageType.OBJECT_PUT: self._on_object_put,
            MessageType.TASK_CANCEL: lambda c, f, fr: self.tasks.on_cancel(c, f),
            MessageType.OBJECT_DELETE: self._on_object_delete,
            MessageType.CLIENT_CLEAR: self._on_client_clear,
            MessageType.CLIENT_DISCONNECT: lambda c, f, fr: self.clients.remove(c.identity, "disconnected"),
            MessageType.CLUSTER_SHUTDOWN: self._on_cluster_shutdown,
        }
        self._worker_handlers: dict[MessageType, Callable[[WorkerRecord, list[Any], list[Any]], None]] = {
            MessageType.WORKER_HEARTBEAT: lambda w, f, fr: self.workers.on_heartbeat(w, f),
            MessageType.TASK_RESULTS: self.tasks.on_worker_results,
            MessageType.TASKS_RETURNED: lambda w, f, fr: self.tasks.on_tasks_returned(w, f),
            MessageType.TASKS_STARTED: lambda w, f, fr: self.tasks.on_tasks_started(w, f),
            MessageType.WORKER_DISCONNECT: lambda w, f, fr: self.workers.remove(w.identity, "disconnected"),
        }

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
            self._socket.close()
            self._monitor.close(linger=0)
            logger.info("scheduler stopped")

    def stop(self) -> None:
        """Ask the scheduler to stop serving."""
        self._stopped.set()

    async def _every(self, seconds: float, routine: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                routine()
                self._after_handling()
            except Exception:
                logger.exception("periodic routine %s failed", getattr(routine, "__name__", routine))

    # ------------------------------------------------------------------ messages

    def _send(self, identity: bytes, parts: list[Any]) -> None:
        assert self._socket is not None
        self._socket.send([identity, *parts])

    def _on_message(self, parts: list[Any]) -> None:
        self.counters["messages"] += 1
        try:
            identity = parts[0].bytes
            msg_type, fields, frames = decode(parts[1:])
            self._dispatch(identity, msg_type, fields, frames)
        except MalformedMessage as exc:
            self._count_malformed(str(exc))
        except Exception:
            self.counters["handler_errors"] += 1
            logger.exception("failed to handle a message; it was dropped")
        self._after_handling()

    def _dispatch(self, identity: bytes, msg_type: MessageType, fields: list[Any], frames: list[Any]) -> None:
        if msg_type is MessageType.CLIENT_CONNECT:
            self.clients.on_connect(identity, fields)
            return
        if msg_type is MessageType.WORKER_CONNECT:
            self.workers.on_connect(identity, fields)
            # A worker that joins while others hold queued work gets its share now, not after the balancing delay.
            self.tasks.balance(trigger_times=0)
            return
        client_handler = self._client_handlers.get(msg_type)
        if client_handler is not None:
            client = self.clients.touch(identity)
            if client is None:
                self.counters["unknown_client_messages"] += 1
                self._send(identity, encode(MessageType.CLIENT_REJECTED, ["the scheduler does not know this client"]))
                return
            client_handler(client, fields, frames)
            return
        worker_handler = self._worker_handlers.get(msg_type)
        if worker_handler is not None:
            worker = self.workers.touch(identity)
            if worker is None:
                self.counters["unknown_worker_messages"] += 1
                self._send(identity, encode(MessageType.WORKER_RECONNECT))
                return
            worker_handler(worker, fields, frames)
            return
        raise MalformedMessage(f"{msg_type.name} is not a message the scheduler takes")

    def _after_handling(self) -> None:
        self.tasks.assign_ready_tasks()
        self.outbox.flush()

    def _count_malformed(self, reason: str) -> None:
        self.counters["malformed"] += 1
        count = self.counters["malformed"]
        if count <= _MALFORMED_LOG_LIMIT:
            logger.warning("dropped a malformed message: %s", reason)
        elif count % 10_000 == 0:
            logger.warning("dropped %d malformed messages so far", count)

    # ------------------------------------------------------------------ handlers

    def _on_object_put(self, client: ClientRecord, fields: list[Any], frames: list[Any]) -> None:
        for object_id, payload in resolve_object_items(fields, frames):
            self.objects.put(client.number, object_id, payload)

    def _on_object_delete(self, client: ClientRecord, fields: list[Any], frames: list[Any]) -> None:
        object_ids = [as_bytes(o, "object id") for o in as_list(fields, "object ids")]
        self.objects.delete(client.number, object_ids)

    def _describe_clients(self) -> list[dict[str, Any]]:
        """Each connected client with its unfinished tasks and the objects it owns."""
        lines = self.clients.describe()
        for line in lines:
            line["tasks"] = self.tasks.tasks_of_client(line["number"])
            line["objects"] = self.objects.objects_of(line["number"])
        return lines

    def _on_client_clear(self, client: ClientRecord, fields: list[Any], frames: list[Any]) -> None:
        self.tasks.cancel_all_of(client.number)
        self.objects.delete_all_of(client.number)

    def _on_cluster_shutdown(self, client: ClientRecord, fields: list[Any], frames: list[Any]) -> None:
        if self.config.protected:
            reason = "the scheduler runs protected; start it with --unprotected to allow clients to shut it down"
            self._send(client.identity, encode(MessageType.SHUTDOWN_REPLY, [False, reason]))
            return
        logger.info("client %s asked to shut the cluster down", client.number)
        self._send(client.identity, encode(MessageType.SHUTDOWN_REPLY, [True, "shutting down"]))
        self.shutdown_cluster()

    def shutdown_cluster(self) -> None:
        """Cancel all work, tell every worker and client, then stop."""
        for record in list(self.workers):
            self._send(record.identity, encode(MessageType.WORKER_SHUTDOWN))
        for identity in self.clients.identities():
            self._send(identity, encode(MessageType.CLIENT_REJECTED, ["the cluster was shut down"]))
        asyncio.get_running_loop().call_later(0.2, self.stop)

    def _on_client_gone(self, client: ClientRecord) -> None:
        self.tasks.cancel_all_of(client.number)
        self.objects.delete_all_of(client.number)

    def _on_worker_gone(self, worker: WorkerRecord) -> None:
        self.tasks.on_worker_gone(worker)

    def _tell_worker_to_delete(self, worker: bytes, object_ids: list[bytes]) -> None:
        for object_id in object_ids:
            self.outbox.add_id(worker, MessageType.OBJECT_DELETE, object_id)

    def _expire_peers(self) -> None:
        now = time.monotonic()
        self.clients.expire(now)
        self.workers.expire(now)

    def _balance(self) -> None:
        self.tasks.balance(self.config.load_balance_trigger_times)
