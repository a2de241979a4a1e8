"""The Client: submit functions to a scheduler and get concurrent.futures-compatible futures back."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import inspect
import itertools
import logging
import math
import os
import queue
import socket
import threading
import types
import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import cloudpickle

from scaler import defaults, version
from scaler.client.connection import SchedulerConnection
from scaler.client.dask_graph import dask_request
from scaler.client.executor import ScalerExecutor
from scaler.client.future import ScalerFuture
from scaler.client.future_arguments import (
    Filled,
    InputFailed,
    Pending,
    fill_slots,
    futures_in,
    holds_future,
    resolve_argument,
)
from scaler.client.graph import build_container, cull_and_order, dependencies_of, is_task
from scaler.client.object_reference import ObjectReference
from scaler.client.progress import progress_bar, require_tqdm
from scaler.client.task_output import print_task_output
from scaler.errors import (
    ClientClosedError,
    SchedulerLostError,
    SerializationError,
    ShutdownRefusedError,
    TaskFailedError,
    VersionMismatchError,
)
from scaler.io.address import validate_address
from scaler.protocol import versions
from scaler.protocol.codec import FrameWriter, Payload, encode, payload_bytes, resolve
from scaler.protocol.ids import content_object_id, random_object_id, task_id_base
from scaler.protocol.messages import (
    ArgumentKind,
    ClientAcceptField,
    ClientConnectField,
    MessageType,
    TaskFlag,
    TaskStatus,
)
from scaler.security import Security, process_default
from scaler.serializer import DefaultSerializer, Serializer
from scaler.task_context import current_processor, waiting_on_nested_tasks

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Client:
    """A connection to a scheduler through which tasks are submitted.

    ``Client(address)`` connects at once and fails with SchedulerLostError (a TimeoutError) if no
    scheduler answers within ``timeout_seconds``. Inside a task, ``Client()`` with no address connects
    to the scheduler that runs the task. A Client can be passed to a task as an argument.

    The parameters come in the order of Scaler 1.x: ``Client(address, profiling, timeout_seconds,
    heartbeat_interval_seconds, serializer)``. With ``stream_output=True``, what tasks print on stdout
    and stderr appears on this process's stdout and stderr, each line prefixed with ``[worker name]``;
    by default it stays in the workers' own output. ``security=Security(secret_key_file=...,
    server_key_file=...)`` (scaler.security) connects with CURVE encryption and authentication to a
    scheduler that has it on (docs/security.md); inside a task, a client uses its worker's keys.
    """

    def __init__(
        self,
        address: str | None = None,
        profiling: bool = False,
        timeout_seconds: float = defaults.CLIENT_TIMEOUT_SECONDS,
        heartbeat_interval_seconds: float = defaults.CLIENT_HEARTBEAT_INTERVAL_SECONDS,
        serializer: Serializer | None = None,
        *,
        stream_output: bool = False,
        security: Security | None = None,
    ) -> None:
        processor = current_processor()  # the task running in this process, if this client is a nested one
        if address is None:
            if processor is None:
                raise ValueError(
                    "No scheduler address provided, and not running inside a worker context: Client needs the "
                    "scheduler's address, e.g. Client('tcp://127.0.0.1:2345')"
                )
            address = processor.scheduler_address
        self.address = validate_address(address)
        self.timeout_seconds = timeout_seconds
        self.heartbeat_interval_seconds = heartbeat_interval_seconds
        self.profiling = profiling
        self.stream_output = stream_output
        self._custom_serializer = serializer
        self._serializer: Serializer = serializer if serializer is not None else DefaultSerializer()
        self._futures: dict[int, ScalerFuture] = {}
        self._function_ids: dict[Any, bytes] = {}
        self._call_shapes: dict[Any, _CallShape | None] = {}
        self._sent_objects: set[bytes] = set()
        self._retry_records: dict[int, _RetryRecord] = {}
        self._info_lock = threading.Lock()
        self._fetches: dict[int, concurrent.futures.Future[Payload]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._shutting_down = False
        serializer_id: bytes | None = None
        serializer_payload = b""
        if serializer is not None:
            if not isinstance(serializer, Serializer):
                raise TypeError("serializer must have serialize(obj) -> bytes and deserialize(bytes) -> obj")
            try:
                serializer_payload = cloudpickle.dumps(serializer, protocol=5)
            except Exception as exc:
                raise SerializationError(f"the serializer itself cannot be pickled: {exc}") from exc
            serializer_id = content_object_id(serializer_payload)

        self._connection = SchedulerConnection(
            self.address,
            timeout_seconds,
            heartbeat_interval_seconds,
            self._on_results,
            self._on_lost,
            print_task_output if stream_output else None,
            security if security is not None else process_default(),  # in a task: its worker's keys
        )
        connect: list[Any] = [None] * len(ClientConnectField)
        connect[ClientConnectField.NAME] = f"{socket.gethostname()}:{os.getpid()}"
        connect[ClientConnectField.SERIALIZER_ID] = serializer_id
        connect[ClientConnectField.PID] = os.getpid()
        connect[ClientConnectField.HOSTNAME] = socket.gethostname()
        connect[ClientConnectField.VERSION] = version.__version__
        connect[ClientConnectField.PARENT_TASK_ID] = processor.task_id if processor is not None else None
        self._connection.send_message(encode(MessageType.CLIENT_CONNECT, connect))
        refusal: BaseException | None = None
        if not self._connection.accepted.wait(timeout_seconds):
            why = self._connection.handshake_failure()
            if why is None and self._connection.security is not None:
                why = (
                    "CURVE security is on: check that the scheduler's public key (server_key_file) is right and "
                    "that this client's key is in the scheduler's allow-list"
                )
            refusal = SchedulerLostError(
                f"no scheduler answered at {self.address} within {timeout_seconds:g} s"
                + (f" ({why})" if why is not None else "")
            )
        elif self._connection.lost_error is not None:
            refusal = self._connection.lost_error
        else:
            scheduler_version = versions.version_field(self._connection.accept_fields, ClientAcceptField.VERSION)
            mismatch = versions.mismatch(f"scheduler at {self.address}", scheduler_version, "this client")
            if mismatch is not None:
                refusal = VersionMismatchError(mismatch)
        if refusal is not None:
            self._connection.close(timeout_seconds=1)
            self._closed = True
            raise refusal
        self.client_number: int = self._connection.accept_fields[ClientAcceptField.CLIENT_NUMBER]
        self._task_ids = itertools.count(task_id_base(self.client_number) + 1)
        if serializer_id is not None:
            self._put_object(serializer_id, serializer_payload)
        self._base_priority = processor.task_priority + 1 if processor is not None else 0
        with _created_lock:
            _created_clients[:] = [reference for reference in _created_clients if reference() is not None]
            _created_clients.append(weakref.ref(self))

    # ------------------------------------------------------------------ context manager and pickling

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.disconnect()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _client_in_task, (self.address, self._custom_serializer, self.profiling, self.timeout_seconds)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "connected"
        return f"<scaler.Client {state} to {self.address}>"

    # ------------------------------------------------------------------ submitting

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> ScalerFuture[T]:
        """Run ``fn(*args, **kwargs)`` on a worker; returns its future at once.

        Every argument after ``fn`` is the task's own, whatever its name (``profiling`` and ``fn``
        included); per-task options go through ``submit_verbose``. Arguments that do not fit ``fn``'s
        signature raise TypeError here, before anything is sent.
        """
        return self._submit_batch(fn, [args], kwargs, None)[0]

    def submit_verbose(
        self,
        fn: Callable[..., T],
        /,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        profiling: bool | None = None,
    ) -> ScalerFuture[T]:
        """Run ``fn(*args, **kwargs)`` with this task's own options: ``profiling`` (None: the client's)."""
        return self._submit_batch(fn, [tuple(args)], dict(kwargs or {}), profiling)[0]

    def map(
        self,
        fn: Callable[..., T],
        iterable: Iterable[Any],
        /,
        *,
        profiling: bool | None = None,
        progress: bool = False,
    ) -> list[T]:
        """Run ``fn(*args)`` for every argument tuple in ``iterable``; returns the results in order.

        ``client.map(f, [(1,), (2,)])`` returns ``[f(1), f(2)]``. A tuple that does not fit ``fn``'s
        signature raises TypeError before any task is sent. If a task fails, map cancels the others
        and raises that task's exception. ``progress=True`` shows a progress bar (the ``progress`` extra).
        """
        argument_tuples = []
        for position, arguments in enumerate(iterable):
            if not isinstance(arguments, (tuple, list)):
                raise TypeError(
                    f"map takes an iterable of argument tuples, like [(1,), (2,)]; item {position} is "
                    f"{type(arguments).__name__}"
                )
            argument_tuples.append(arguments)
        if not argument_tuples:
            return []
        if progress:
            require_tqdm()  # fails before anything is sent
        futures = self._submit_batch(fn, argument_tuples, {}, profiling)
        if not progress:
            return gather(futures)
        with progress_bar(futures, getattr(fn, "__name__", None)):
            return gather(futures)

    starmap = map

    def get(
        self,
        graph: dict[Any, Any],
        keys: list[Any],
        block: bool = True,
        profiling: bool | None = None,
        **dask_options: Any,
    ) -> Any:
        """Compute ``keys`` of a Dask-style graph; returns {key: value}, or {key: future} when not blocking.

        A graph maps keys to literal values or to tasks ``(function, *arguments)`` whose arguments
        may be keys, or lists and tuples holding keys. Only what ``keys`` need runs; each task runs as
        soon as its inputs are ready. Raised at once, before anything runs: GraphCycleError (a
        graphlib.CycleError) for a cycle, GraphKeyError (a KeyError) for a key missing from the graph
        or named twice in ``keys``, TypeError for a task whose arguments do not fit its function.

        It is also a Dask scheduler: ``dask.compute(x, scheduler=client.get)`` hands it a Dask graph
        (``dask_options`` are Dask's, ignored), and the results come back in the nesting of Dask's keys.
        """
        self._check_open()
        request = dask_request(graph, keys)
        if request is not None:
            return request.repack(self.get(request.graph, request.keys, profiling=profiling))
        order = cull_and_order(graph, keys)
        builder = _GraphBuilder(self, graph, set(keys), profiling)
        for key in order:
            builder.add_node(key)
        futures = builder.futures_for(keys)
        with self._lock:
            for future in futures.values():
                if not future.done():
                    self._futures[future.task_id] = future
        if builder.items:
            self._connection.send_tasks(builder.items)
        if not block:
            return futures
        values = gather(list(futures.values()))
        return dict(zip(futures.keys(), values, strict=True))

    def executor(self) -> ScalerExecutor:
        """A concurrent.futures.Executor that submits through this client; its shutdown leaves the client open."""
        return ScalerExecutor(self)

    def scheduler_info(self, timeout_seconds: float | None = None) -> dict[str, Any]:
        """The scheduler's view now: ``workers``, ``tasks``, ``clients``, ``functions`` and ``objects``,
        each as in the status (docs/monitoring.md). SchedulerLostError if no answer comes in time."""
        self._check_open()
        with self._info_lock:
            replies = self._connection.info_replies
            while not replies.empty():  # an answer to a request that timed out
                replies.get_nowait()
            self._connection.send_message(encode(MessageType.INFO_REQUEST))
            try:
                return replies.get(timeout=timeout_seconds or self.timeout_seconds)
            except queue.Empty:
                raise SchedulerLostError(f"the scheduler at {self.address} did not answer scheduler_info") from None

    def ship_module(self, module: types.ModuleType) -> None:
        """Send ``module`` with the functions that use it: for code that exists only on this machine.

        From now on, functions and classes defined in ``module`` (a module or a package) are pickled by
        value, so workers that lack it can still run them. Call it before submitting.
        """
        if not isinstance(module, types.ModuleType):
            raise TypeError(f"ship_module takes a module, not {type(module).__name__}")
        cloudpickle.register_pickle_by_value(module)
        self._function_ids.clear()  # functions already sent went by reference

    def send_object(self, obj: Any, name: str | None = None) -> ObjectReference:
        """Store ``obj`` in the scheduler once; pass the reference to tasks instead of the object."""
        self._check_open()
        payload = self._serialize(obj, what=f"object {name or type(obj).__name__}")
        object_id = random_object_id()
        self._put_object(object_id, payload)
        return ObjectReference(object_id, name, len(payload))

    def delete_object(self, reference: ObjectReference) -> None:
        """Delete an object sent with send_object from the scheduler and the workers."""
        self._check_open()
        self._connection.send_message(encode(MessageType.OBJECT_DELETE, [reference.object_id]))

    # ------------------------------------------------------------------ ending

    def clear(self) -> None:
        """Cancel every pending future of this client and delete its objects everywhere."""
        self._check_open()
        with self._lock:
            pending = list(self._futures.values())
            self._futures.clear()
            self._function_ids.clear()
            self._call_shapes.clear()
            self._sent_objects.clear()
        self._connection.send_message(encode(MessageType.CLIENT_CLEAR))
        for future in pending:
            future._mark_cancelled()

    def disconnect(self) -> None:
        """Leave the scheduler: pending futures are cancelled and this client's objects deleted."""
        if self._closed:
            return
        self._closed = True
        if self._connection.is_open:
            self._connection.send_message(encode(MessageType.CLIENT_DISCONNECT))
        self._connection.close()
        with self._lock:
            pending = list(self._futures.values())
            self._futures.clear()
        for future in pending:
            future._mark_cancelled()

    def shutdown(self) -> None:
        """Ask the scheduler to stop the whole cluster; this client's pending futures end cancelled, as in 1.x.

        Refused with ShutdownRefusedError (a ValueError, as in Scaler 1.x) when the scheduler runs protected;
        the client then goes on as before.
        """
        self._check_open()
        self._shutting_down = True  # the scheduler drops this client as it stops: pending work is cancelled
        try:
            self._connection.shutdown_replied.clear()
            self._connection.send_message(encode(MessageType.CLUSTER_SHUTDOWN))
            if not self._connection.shutdown_replied.wait(self.timeout_seconds):
                raise SchedulerLostError(f"the scheduler at {self.address} did not answer the shutdown request")
            if self._connection.lost_error is not None and not self._connection.shutdown_reply:
                raise self._connection.lost_error
            accepted, reason = self._connection.shutdown_reply[:2]
            if not accepted:
                raise ShutdownRefusedError(reason)
        except BaseException:
            self._shutting_down = False
            raise
        self.disconnect()

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this client is disconnected")
        if self._connection.lost_error is not None:
            raise self._connection.lost_error

    def _serialize(self, obj: Any, what: str) -> bytes:
        try:
            return self._serializer.serialize(obj)
        except Exception as exc:
            raise SerializationError(f"cannot serialize {what}: {type(exc).__name__}: {exc}") from exc

    def _put_object(self, object_id: bytes, payload: bytes, function_name: str | None = None) -> None:
        writer = FrameWriter()
        item: list[Any] = [object_id, writer.add(payload)]
        if function_name is not None:
            item.append(function_name)
        self._connection.send_message(encode(MessageType.OBJECT_PUT, [item], writer.frames))

    def _function_id(self, fn: Callable[..., Any]) -> bytes:
        try:
            cached = self._function_ids.get(fn)
        except TypeError:  # an unhashable callable: serialized each time, stored once by content
            cached = None
        if cached is not None:
            return cached
        if not callable(fn):
            raise TypeError(f"expected a callable, got {type(fn).__name__}")
        name = function_name(fn)
        payload = self._serialize(fn, what=f"function {name}")
        function_id = content_object_id(payload)
        with self._lock:
            if function_id not in self._sent_objects:
                self._sent_objects.add(function_id)
                self._put_object(function_id, payload, name)
            try:
                self._function_ids[fn] = function_id
            except TypeError:
                pass
        return function_id

    def _check_arguments(self, fn: Callable[..., Any], argument_tuples: list[Any], kwargs: dict[str, Any]) -> None:
        """Raise TypeError if one of the calls ``fn(*arguments, **kwargs)`` cannot bind to ``fn``'s signature."""
        try:
            shape = self._call_shapes[fn]
        except KeyError:
            shape = _CallShape.of(fn)
            self._call_shapes[fn] = shape
        except TypeError:  # an unhashable callable
            shape = _CallShape.of(fn)
        if shape is None:
            return
        if kwargs:
            for arguments in argument_tuples:
                shape.bind(fn, arguments, kwargs)
            return
        low, high = shape.min_positional, shape.max_positional
        for arguments in argument_tuples:
            if not low <= len(arguments) <= high:
                shape.bind(fn, arguments, kwargs)

    def _encode_argument(self, value: Any, position: int) -> list[Any]:
        if isinstance(value, ObjectReference):
            return [ArgumentKind.OBJECT, value.object_id]
        return [ArgumentKind.INLINE, self._serialize(value, what=f"argument {position} ({type(value).__name__})")]

    def _base_flags(self, profiling: bool | None) -> int:
        """The flags every task of this client carries: profiling (this call's choice, or the client's) and output."""
        flags = int(TaskFlag.PROFILING) if (self.profiling if profiling is None else profiling) else 0
        if self.stream_output:
            flags |= int(TaskFlag.STREAM_OUTPUT)
        return flags

    def _submit_batch(
        self,
        fn: Callable[..., Any],
        argument_tuples: list[Any],
        kwargs: dict[str, Any],
        profiling: bool | None,
    ) -> list[ScalerFuture]:
        self._check_open()
        self._check_arguments(fn, argument_tuples, kwargs)
        function_id = self._function_id(fn)
        flags = self._base_flags(profiling) | int(TaskFlag.RESULT_TO_CLIENT)
        keywords = list(kwargs)
        keyword_values = list(kwargs.values())
        priority = self._base_priority
        serialize = self._serializer.serialize
        encode_argument = self._encode_argument
        items: list[list[Any]] = []
        futures: list[ScalerFuture] = []
        for arguments in argument_tuples:
            task_id = next(self._task_ids)
            encoded = []
            for position, value in enumerate((*arguments, *keyword_values)):
                if type(value) in _PLAIN_TYPES:
                    try:
                        encoded.append([ArgumentKind.INLINE, serialize(value)])
                        continue
                    except Exception:
                        pass
                elif holds_future(value):
                    return self._submit_with_futures(fn, argument_tuples, kwargs, profiling)
                encoded.append(encode_argument(value, position))
            items.append([task_id, function_id, priority, flags, encoded, keywords])
            futures.append(ScalerFuture(task_id, self._serializer, self._cancel_tasks))
        with self._lock:
            idle = not self._futures
            for future in futures:
                self._futures[future.task_id] = future
        # A client with nothing in flight (a round trip) sends at once; a burst of submits is batched.
        self._connection.send_tasks(items, now=idle)
        return futures

    @property
    def connected(self) -> bool:
        """Whether this client can still submit tasks (neither disconnected nor cut off from its scheduler)."""
        return not self._closed and self._connection.is_open

    @property
    def bytes_received(self) -> int:
        """Bytes this client has received from the scheduler so far (results, mostly)."""
        return self._connection.bytes_received

    def _submit_with_futures(
        self,
        fn: Callable[..., Any],
        argument_tuples: list[Any],
        kwargs: dict[str, Any],
        profiling: bool | None,
        again: ScalerFuture | None = None,
    ) -> list[ScalerFuture]:
        """Submit tasks some of whose arguments are futures (see future_arguments).

        The results of the pending ones are held in the scheduler (RESULT_HOLD, sent first): they go from
        worker to worker, and reach this client only if its code asks for them. ``again`` is the future of
        a task submitted again (one task): it takes the new task's id, so tasks that take it follow.
        """
        function_id = self._function_id(fn)
        base_flags = self._base_flags(profiling)
        flags = base_flags | int(TaskFlag.RESULT_TO_CLIENT)
        keywords = list(kwargs)
        priority = self._base_priority
        items: list[list[Any]] = []
        futures: list[ScalerFuture] = []
        to_hold: list[ScalerFuture] = []
        for arguments in argument_tuples:
            task_id = next(self._task_ids)
            if again is None:
                future: ScalerFuture[Any] = ScalerFuture(task_id, self._serializer, self._cancel_tasks)
            else:
                future = again
                future.task_id = task_id
                if future.held_results is not None:
                    to_hold.append(future)  # its dependents' holds named its old id
            futures.append(future)
            try:
                values = [resolve_argument(value, self._owns) for value in (*arguments, *kwargs.values())]
            except InputFailed as failed:
                future.set_exception(failed.cause)
                continue
            encoded: list[list[Any]] = []
            for position, value in enumerate(values):
                if type(value) is Pending:
                    encoded.append([ArgumentKind.TASK, value.future.task_id])
                    to_hold.append(value.future)
                elif type(value) is Filled:
                    fill_id = next(self._task_ids)
                    template = self._serialize(value.template, what=f"argument {position}")
                    fill_args = [[ArgumentKind.INLINE, template]]
                    fill_args += [[ArgumentKind.TASK, pending.task_id] for pending in value.futures]
                    items.append([fill_id, self._function_id(fill_slots), priority, base_flags, fill_args, []])
                    encoded.append([ArgumentKind.TASK, fill_id])
                    to_hold.extend(value.futures)
                else:
                    encoded.append(self._encode_argument(value, position))
            items.append([task_id, function_id, priority, flags, encoded, keywords])
            # Kept until the task ends, in case a future it takes ended before the task reached the scheduler.
            self._retry_records[task_id] = _RetryRecord(fn, tuple(arguments), kwargs, profiling)
            future.add_done_callback(functools.partial(self._forget_retry, task_id))
        hold_ids = []
        for pending in to_hold:
            if pending.held_results is None or pending is again:
                pending.held_results = self
                hold_ids.append(pending.task_id)
        with self._lock:
            for future in futures:
                if not future.done():
                    self._futures[future.task_id] = future
        if hold_ids:
            self._connection.send_message(encode(MessageType.RESULT_HOLD, hold_ids))
        if items:
            self._connection.send_tasks(items)
        return futures

    def _forget_retry(self, task_id: int, _: concurrent.futures.Future[Any]) -> None:
        self._retry_records.pop(task_id, None)

    def _owns(self, future: ScalerFuture) -> bool:
        """Whether ``future`` is of a task this client submitted."""
        return getattr(future._cancel_remote, "__self__", None) is self

    def fetch(self, task_id: int) -> Payload:
        """The held result of ``task_id``, fetched from the scheduler (ScalerFuture calls it; see HeldResults)."""
        reply: concurrent.futures.Future[Payload] = concurrent.futures.Future()
        with self._lock:
            self._fetches[task_id] = reply
        self._connection.send_message(encode(MessageType.RESULT_FETCH, [task_id]))
        try:
            return reply.result(timeout=self.timeout_seconds)
        except concurrent.futures.TimeoutError:
            raise SchedulerLostError(f"the scheduler did not send the held result of task {task_id:#x}") from None
        finally:
            with self._lock:
                self._fetches.pop(task_id, None)

    def release(self, task_id: int) -> None:
        """The held result of ``task_id`` is no longer needed here (ScalerFuture calls it; see HeldResults)."""
        if not self._closed and self._connection.is_open:
            self._connection.send_message(encode(MessageType.RESULT_RELEASE, [task_id]))

    def _on_fetched(self, task_id: int, status: int, payload: Payload | None) -> None:
        with self._lock:
            reply = self._fetches.pop(task_id, None)
        if reply is None:
            return
        if status == TaskStatus.SUCCESS and payload is not None:
            reply.set_result(payload)
        else:
            text = payload_bytes(payload).decode("utf-8", "replace") if payload is not None else "no payload"
            reply.set_exception(TaskFailedError(f"cannot fetch the result of task {task_id:#x}: {text}"))

    def _retry_when_inputs_done(self, future: ScalerFuture, record: _RetryRecord) -> None:
        """Submit again a task one of whose inputs had ended before it came, once every input future is
        done: their values then go with it, so it is never sent back twice (inputs retried themselves
        included)."""
        inputs = [f for f in futures_in((*record.arguments, *record.kwargs.values())) if not f.done()]
        remaining = [len(inputs)]
        lock = threading.Lock()

        def one_done(_: concurrent.futures.Future[Any]) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0] > 0:
                    return
            # Off the I/O thread: a done input's held result may have to be fetched.
            threading.Thread(target=self._retry, args=(future, record), daemon=True).start()

        if not inputs:
            one_done(future)
        for done_input in inputs:
            done_input.add_done_callback(one_done)

    def _retry(self, future: ScalerFuture, record: _RetryRecord) -> None:
        """Submit again a task whose inputs are all done, as ``future``'s task."""
        try:
            self._submit_with_futures(record.fn, [record.arguments], record.kwargs, record.profiling, again=future)
        except Exception as exc:
            future.fail(exc)

    def _cancel_tasks(self, task_ids: list[int]) -> None:
        """Cancel these tasks in the scheduler; their pending futures (a graph's other nodes too) end cancelled."""
        with self._lock:
            popped = (self._futures.pop(task_id, None) for task_id in task_ids)
            pending = [future for future in popped if future is not None]
        if not self._closed and self._connection.is_open:
            self._connection.send_message(encode(MessageType.TASK_CANCEL, task_ids))
        for future in pending:  # no answer will reach them now: they are no longer listed
            future._mark_cancelled()

    def _on_results(self, fields: list[Any], frames: list[Any]) -> None:
        """Called on the I/O thread with each TASK_RESULTS message; a malformed item spoils only itself."""
        futures = self._futures
        for item in fields:
            try:
                task_id, status, reference, profile = item
                future = futures.pop(task_id, None)
            except Exception:  # not a 4-item list, or an unhashable task id: no future can be named
                logger.warning("client dropped a malformed result item from the scheduler: %.200r", item)
                continue
            if future is None:
                if self._fetches:
                    with contextlib.suppress(Exception):
                        self._on_fetched(task_id, status, None if reference is None else resolve(reference, frames))
                continue
            if status == _DEPENDENCY_GONE:
                record = self._retry_records.pop(task_id, None)
                if record is not None:
                    self._retry_when_inputs_done(future, record)
                    continue
            try:
                payload = None if reference is None else resolve(reference, frames)
            except Exception as exc:
                future.fail(TaskFailedError(f"the scheduler sent a malformed result for task {task_id!r}: {exc}"))
                continue
            future.deliver(status, payload, profile)

    def _on_lost(self, error: BaseException) -> None:
        """Called on the I/O thread when the scheduler is gone: every pending future fails (or is cancelled,
        when this client asked for the shutdown)."""
        with self._lock:
            pending = list(self._futures.values())
            self._futures.clear()
        for future in pending:
            if self._shutting_down:
                future._mark_cancelled()
            else:
                future.fail(error)


_PLAIN_TYPES = frozenset({int, float, str, bytes, bool, type(None)})
_DEPENDENCY_GONE = int(TaskStatus.DEPENDENCY_GONE)


@dataclasses.dataclass(frozen=True)
class _RetryRecord:
    """What it takes to submit a task with future arguments again."""

    fn: Callable[..., Any]
    arguments: tuple[Any, ...]
    kwargs: dict[str, Any]
    profiling: bool | None


@dataclasses.dataclass(frozen=True)
class _CallShape:
    """What calls a function accepts, worked out once per function from its signature."""

    signature: inspect.Signature
    min_positional: int  # a purely positional call needs at least this many arguments...
    max_positional: float  # ...and at most this many (inf with *args); -1 when it can never succeed

    @staticmethod
    def of(fn: Callable[..., Any]) -> _CallShape | None:
        """The shape of ``fn``, or None when it has no signature to check against (some built-ins)."""
        try:
            # Not through __wrapped__: a decorator may take other arguments than the function it wraps.
            signature = inspect.signature(fn, follow_wrapped=False)
        except (TypeError, ValueError):
            return None
        positional_kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        parameters = list(signature.parameters.values())
        positional = [p for p in parameters if p.kind in positional_kinds]
        required = sum(1 for p in positional if p.default is inspect.Parameter.empty)
        if any(p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty for p in parameters):
            return _CallShape(signature, 0, -1)
        has_var_positional = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
        return _CallShape(signature, required, math.inf if has_var_positional else len(positional))

    def bind(self, fn: Callable[..., Any], arguments: Any, kwargs: dict[str, Any]) -> None:
        """Raise TypeError, naming the function, unless ``fn(*arguments, **kwargs)`` fits the signature."""
        try:
            self.signature.bind(*arguments, **kwargs)
        except TypeError as exc:
            name = getattr(fn, "__qualname__", None) or repr(fn)
            raise TypeError(f"{name}{self.signature}: {exc}") from None


class _GraphBuilder:
    """Turns graph nodes into task items whose arguments refer to other tasks by id."""

    def __init__(self, client: Client, graph: dict[Any, Any], wanted: set[Any], profiling: bool | None) -> None:
        self._client = client
        self._graph = graph
        self._wanted = wanted
        self._flags = client._base_flags(profiling)
        self.items: list[list[Any]] = []
        self.task_ids: dict[Any, int] = {}
        self.literals: dict[Any, Any] = {}

    def add_node(self, key: Any) -> None:
        value = self._graph[key]
        if is_task(value):
            self.task_ids[key] = self._add_task(value[0], value[1:], key in self._wanted)
        elif type(value) in (list, tuple) and dependencies_of(self._graph, value):
            self.task_ids[key] = self._add_task(build_container, (type(value), *value), key in self._wanted)
        else:
            self.literals[key] = value

    def futures_for(self, keys: list[Any]) -> dict[Any, ScalerFuture]:
        every_id = list(self.task_ids.values())
        futures: dict[Any, ScalerFuture] = {}
        for key in keys:
            if key in self.task_ids:
                future: ScalerFuture[Any] = ScalerFuture(
                    self.task_ids[key], self._client._serializer, self._client._cancel_tasks
                )
                future.cancel_together = every_id
            else:
                future = ScalerFuture(0, self._client._serializer, self._client._cancel_tasks)
                future.set_result(self.literals[key])
            futures[key] = future
        return futures

    def _add_task(self, function: Any, arguments: tuple[Any, ...], wanted: bool) -> int:
        client = self._client
        if function is not build_container:
            client._check_arguments(function, [arguments], {})
        function_id = client._function_id(function)
        encoded = [self._encode(argument, position) for position, argument in enumerate(arguments)]
        task_id = next(client._task_ids)
        flags = self._flags | (int(TaskFlag.RESULT_TO_CLIENT) if wanted else 0)
        self.items.append([task_id, function_id, client._base_priority, flags, encoded, []])
        return task_id

    def _encode(self, argument: Any, position: int) -> list[Any]:
        graph = self._graph
        try:
            is_key = argument in graph
        except TypeError:
            is_key = False
        if is_key:
            if argument in self.task_ids:
                return [ArgumentKind.TASK, self.task_ids[argument]]
            return self._client._encode_argument(self.literals[argument], position)
        if is_task(argument):
            return [ArgumentKind.TASK, self._add_task(argument[0], argument[1:], False)]
        if type(argument) in (list, tuple) and dependencies_of(graph, argument):
            return [ArgumentKind.TASK, self._add_task(build_container, (type(argument), *argument), False)]
        return self._client._encode_argument(argument, position)


def gather(futures: list[ScalerFuture]) -> list[Any]:
    """Wait for every future; return the values in order, or raise the first failure (cancelling the rest)."""
    with waiting_on_nested_tasks():
        done, not_done = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
    if not_done:
        for future in not_done:
            future.cancel()
        for future in futures:
            if future in done and not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
    return [future.result() for future in futures]


_clients_in_task: dict[tuple[str, int], Client] = {}
_created_clients: list[weakref.ref[Client]] = []  # every Client of this process, oldest first
_created_lock = threading.Lock()


def latest_client() -> Client | None:
    """The most recently created Client of this process that is still connected, or None."""
    with _created_lock:
        references = list(reversed(_created_clients))
    for reference in references:
        client = reference()
        if client is not None and client.connected:
            return client
    return None


def _client_in_task(address: str, serializer: Serializer | None, profiling: bool, timeout_seconds: float) -> Client:
    """Rebuild a pickled Client. Inside a worker, one connection per scheduler is kept and reused."""
    if current_processor() is None:
        return Client(address, timeout_seconds=timeout_seconds, serializer=serializer, profiling=profiling)
    key = (address, id(serializer) if serializer is not None else 0)
    client = _clients_in_task.get(key)
    if client is None or client._closed or client._connection.lost_error is not None:
        client = Client(address, timeout_seconds=timeout_seconds, serializer=serializer, profiling=profiling)
        _clients_in_task[key] = client
    client._base_priority = current_processor().task_priority + 1  # type: ignore[union-attr]
    return client


def function_name(fn: Callable[..., Any]) -> str:
    """The name monitors show for ``fn``: its qualified name, the wrapped function's for a partial."""
    if isinstance(fn, functools.partial):
        return f"partial({function_name(fn.func)})"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__qualname__
