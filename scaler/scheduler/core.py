"""The scheduler's decisions, with no sockets: a message in, the messages it causes out through ``send``.

The Scheduler (scheduler.py) is the I/O shell around this core: it decodes what arrives on its
ROUTER socket, hands it here, and runs the periodic routines. Tests drive the core directly.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any

from scaler import version
from scaler.protocol.checks import as_bytes, as_list, as_str, require
from scaler.protocol.codec import MalformedMessage, Payload, encode, payload_view, resolve
from scaler.protocol.ids import content_object_id, is_content_object_id, is_result_object_id
from scaler.protocol.messages import MessageType, ObjectField
from scaler.scheduler.client_manager import ClientManager, ClientRecord
from scaler.scheduler.config import SchedulerConfig
from scaler.scheduler.invariants import check_scheduler, record_breaches
from scaler.scheduler.object_manager import ObjectManager
from scaler.scheduler.outbox import Outbox, SendFunction
from scaler.scheduler.task_manager import TaskManager
from scaler.scheduler.worker_manager import WorkerManager, WorkerRecord

logger = logging.getLogger(__name__)

# Invariant breaches logged one by one before the log only counts them.
_BREACH_LOG_LIMIT = 20
# Longest function name kept for the monitors.
_FUNCTION_NAME_LIMIT = 200


class SchedulerCore:
    """The managers, wired together, and the table of which manager handles which message."""

    def __init__(
        self,
        config: SchedulerConfig,
        send: SendFunction,
        on_shutdown: Callable[[], None] = lambda: None,
        check_invariants: bool = False,
        authorize_worker: Callable[[bytes], str | None] | None = None,
        authorize_client: Callable[[bytes, int | None], str | None] | None = None,
    ) -> None:
        """``authorize_worker`` and ``authorize_client``: with security on, why a peer may not register as a
        worker, or connect as a client (None: it may)."""
        self.config = config
        self._send = send
        self._on_shutdown = on_shutdown
        self._check_invariants = check_invariants
        self.counters: collections.Counter[str] = collections.Counter()
        self._told_peers = False  # every worker and client was told the scheduler stops
        self.outbox = Outbox(send)
        self.clients = ClientManager(
            send, config.client_timeout_seconds, config.protected, self._on_client_gone, authorize_client
        )
        self.objects = ObjectManager(self._tell_worker_to_delete)
        self.workers = WorkerManager(
            send,
            config.worker_timeout_seconds,
            config.per_worker_queue_size,
            self._on_worker_gone,
            config.worker_answer_timeout_seconds,
            authorize_worker,
        )
        self.tasks = TaskManager(
            send,
            self.outbox,
            self.clients,
            self.workers,
            self.objects,
            config.allowed_failures,
            config.max_number_of_tasks_waiting,
        )
        self._client_handlers: dict[MessageType, Callable[[ClientRecord, list[Any], list[Any]], None]] = {
            MessageType.CLIENT_HEARTBEAT: lambda c, f, fr: self.clients.on_heartbeat(c.identity),
            MessageType.TASK_SUBMIT: self.tasks.on_submit,
            MessageType.OBJECT_PUT: self._on_object_put,
            MessageType.TASK_CANCEL: lambda c, f, fr: self.tasks.on_cancel(c, f),
            MessageType.RESULT_HOLD: lambda c, f, fr: self.tasks.on_result_hold(c, f),
            MessageType.RESULT_FETCH: lambda c, f, fr: self.tasks.on_result_fetch(c, f),
            MessageType.RESULT_RELEASE: lambda c, f, fr: self.tasks.on_result_release(c, f),
            MessageType.INFO_REQUEST: lambda c, f, fr: self._send(
                c.identity, encode(MessageType.INFO_REPLY, [self.info()])
            ),
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
            MessageType.TASK_SUSPENDED: lambda w, f, fr: self.workers.set_suspended(w, f),
            MessageType.TASK_OUTPUT: lambda w, f, fr: self.tasks.on_task_output(w, f),
            MessageType.WORKER_DISCONNECT: lambda w, f, fr: self.workers.remove(w.identity, "disconnected"),
        }

    # ------------------------------------------------------------------ events

    def on_message(self, identity: bytes, msg_type: MessageType, fields: list[Any], frames: list[Any]) -> None:
        """Handle one decoded message from ``identity``; MalformedMessage if its fields are wrong."""
        if msg_type is MessageType.CLIENT_CONNECT:
            self.clients.on_connect(identity, fields)
            return
        if msg_type is MessageType.WORKER_CONNECT:
            # A worker that joins gets work at once (in dispatch): queued tasks, or waiting ones taken back.
            self.workers.on_connect(identity, fields)
            return
        client_handler = self._client_handlers.get(msg_type)
        if client_handler is not None:
            client = self.clients.touch(identity)
            if client is None:
                self.counters["unknown_client_messages"] += 1
                self._send(
                    identity,
                    encode(
                        MessageType.CLIENT_REJECTED, ["the scheduler does not know this client", version.__version__]
                    ),
                )
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

    def after_handling(self) -> None:
        """After each message or routine: hand out ready tasks, send what was batched, check if asked to."""
        self.tasks.dispatch()
        self.outbox.flush()
        if self._check_invariants:
            self.check_invariants()

    def expire_peers(self, now: float) -> None:
        """Forget clients and workers silent for longer than their time-outs."""
        self.clients.expire(now)
        self.workers.expire(now)
        self.tasks.flush_logs()

    def balance(self) -> None:
        """The periodic balancing pass."""
        self.tasks.balance(self.config.load_balance_trigger_times)

    def check_invariants(self) -> list[str]:
        """Check the whole state; each breach is logged and counted, never raised."""
        try:
            breaches = check_scheduler(self.tasks, self.objects, self.clients, self.workers)
        except Exception as exc:  # a check that trips over corrupt state is a breach too
            breaches = [f"the check itself failed: {exc!r}"]
        if breaches:
            record_breaches(breaches)
            self.counters["invariant_breaches"] += len(breaches)
            if self.counters["invariant_breaches"] <= _BREACH_LOG_LIMIT:
                for breach in breaches:
                    logger.error("invariant breached: %s", breach)
        return breaches

    def info(self) -> dict[str, Any]:
        """What a client's scheduler_info() gets: workers, tasks, clients, functions and objects."""
        return {
            "workers": self.workers.describe(),
            "tasks": self.tasks.describe(),
            "clients": self.describe_clients(),
            "functions": self.tasks.activity.describe_functions(),
            "objects": self.objects.describe(),
        }

    def describe_clients(self) -> list[dict[str, Any]]:
        """Each connected client with its unfinished tasks and the objects it owns."""
        lines = self.clients.describe()
        for line in lines:
            line.update(self.tasks.describe_client(line["number"]))
            line["objects"] = self.objects.objects_of(line["number"])
        return lines

    def shutdown_cluster(self) -> None:
        """Tell every worker and client the cluster stops, then let the shell stop."""
        self._told_peers = True
        for record in list(self.workers):
            self._send(record.identity, encode(MessageType.WORKER_SHUTDOWN))
        for identity in self.clients.identities():
            self._send(
                identity, encode(MessageType.CLIENT_REJECTED, ["the cluster was shut down", version.__version__])
            )
        self._on_shutdown()

    def farewell(self, reason: str) -> None:
        """The scheduler stops (a signal, not a cluster shutdown): every client's work fails at once with
        ``reason``, and every worker drops its tasks and waits for a scheduler at the same address."""
        if self._told_peers:
            return
        self._told_peers = True
        for record in list(self.workers):
            self._send(record.identity, encode(MessageType.SCHEDULER_STOPPING, [reason]))
        for identity in self.clients.identities():
            self._send(
                identity,
                encode(MessageType.CLIENT_REJECTED, [f"the scheduler stopped ({reason})", version.__version__]),
            )

    # ------------------------------------------------------------------ handlers

    def _on_object_put(self, client: ClientRecord, fields: list[Any], frames: list[Any]) -> None:
        items = parse_object_put(fields, frames)
        for object_id, payload, function_name in items:
            self.objects.put(client.number, object_id, payload, function_name)

    def _on_object_delete(self, client: ClientRecord, fields: list[Any], frames: list[Any]) -> None:
        object_ids = [as_bytes(o, "object id") for o in as_list(fields, "object ids")]
        self.objects.delete(client.number, [o for o in object_ids if not is_result_object_id(o)])

    def _on_client_clear(self, client: ClientRecord, fields: list[Any], frames: list[Any]) -> None:
        self.tasks.cancel_all_of(client.number)
        self.tasks.drop_held_results(client.number)
        # The client sent its serializer once, when it connected: its later tasks still need it.
        self.objects.delete_all_of(client.number, keep=client.serializer_id)

    def _on_cluster_shutdown(self, client: ClientRecord, fields: list[Any], frames: list[Any]) -> None:
        if self.config.protected:
            reason = "the scheduler runs protected; start it with --unprotected to allow clients to shut it down"
            self._send(client.identity, encode(MessageType.SHUTDOWN_REPLY, [False, reason]))
            return
        logger.info("client %s asked to shut the cluster down", client.number)
        self._send(client.identity, encode(MessageType.SHUTDOWN_REPLY, [True, "shutting down"]))
        self.shutdown_cluster()

    def _on_client_gone(self, client: ClientRecord) -> None:
        self.tasks.cancel_all_of(client.number)
        self.tasks.forget_client(client.number)
        self.objects.delete_all_of(client.number)

    def _on_worker_gone(self, worker: WorkerRecord) -> None:
        self.tasks.on_worker_gone(worker)

    def _tell_worker_to_delete(self, worker: bytes, object_ids: list[bytes]) -> None:
        for object_id in object_ids:
            self.outbox.add_id(worker, MessageType.OBJECT_DELETE, object_id)


def parse_object_put(fields: list[Any], frames: list[Any]) -> list[tuple[bytes, Payload, str | None]]:
    """(object id, payload, function name or None) of each OBJECT_PUT item, all checked before any is stored."""
    items: list[tuple[bytes, Payload, str | None]] = []
    for item in as_list(fields, "objects"):
        as_list(item, "object", ObjectField.PAYLOAD + 1)
        object_id = as_bytes(item[ObjectField.OBJECT_ID], "object id")
        # Kept task results are the scheduler's to store and delete, never a client's.
        require(not is_result_object_id(object_id), "object id of a task result")
        function_name = None
        if len(item) > ObjectField.FUNCTION_NAME and item[ObjectField.FUNCTION_NAME] is not None:
            function_name = as_str(item[ObjectField.FUNCTION_NAME], "function name")[:_FUNCTION_NAME_LIMIT]
        payload = resolve(item[ObjectField.PAYLOAD], frames)
        # An id made from content is checked against it: a peer cannot put other bytes under a function's id
        # (the first put of an id is the one every later task runs).
        if is_content_object_id(object_id):
            require(content_object_id(payload_view(payload)) == object_id, "object id does not match its content")
        items.append((object_id, payload, function_name))
    return items
