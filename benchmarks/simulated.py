"""Case (j): scheduler dispatch rate with many simulated workers.

Three processes take part: a real scaler scheduler, ONE process holding ``n`` fake workers, and this process
with a real :class:`scaler.Client`. Each fake worker is a ZeroMQ DEALER with its own identity that speaks the
worker protocol of :mod:`scaler.protocol` like :class:`scaler.worker.agent.WorkerAgent`: it says hello with
WORKER_CONNECT (advertising the per-worker queue size a real worker advertises by default), sends WORKER_HEARTBEAT
every ``WORKER_HEARTBEAT_INTERVAL_SECONDS``, and answers every task of every TASK_ASSIGN at once with a
canned successful result (the default serializer's ``serialize(None)``, sent inline as the real processor
does for small payloads). Replies are batched per socket and poll round: all tasks read from one socket in
one round go back in one TASK_RESULTS message. Nothing is ever unpickled, so the figure, tasks per second
from submitting the map to its last result, measures the scheduler (and client) alone.

Run it on its own (``python -m benchmarks.simulated --workers 1,10,100,1000 --tasks 100000``), optionally
with ``--profile-scheduler PREFIX`` to run the scheduler under cProfile and write ``PREFIX-<n>.prof``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import multiprocessing
import multiprocessing.connection
import os
import resource
import signal
import socket as socket_module
import sys
import time
import traceback
import uuid
from collections.abc import Sequence
from typing import Any

try:
    import psutil
    import zmq

    from scaler import Client, DefaultSerializer
    from scaler import defaults as scaler_defaults
    from scaler.io.address import local_address
    from scaler.protocol.codec import FrameWriter, MalformedMessage, decode, encode
    from scaler.protocol.messages import MessageType, TaskStatus, WorkerTaskField
    from scaler.scheduler.config import SchedulerConfig
    from scaler.scheduler.process import run_scheduler
    from scaler.utility.process_guard import die_with_parent
    from scaler.version import __version__
    from scaler.worker.config import WorkerConfig
except ImportError as exc:  # the runner imports this module and must work without scaler installed
    _IMPORT_ERROR: ImportError | None = exc
else:
    _IMPORT_ERROR = None

#: Kept for benchmarks.case, which reports it while an implementation raises NotImplementedError.
PENDING_MESSAGE = "pending: needs scaler.protocol"

#: Seconds allowed for the scheduler to accept every fake worker, and for each process to stop.
_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 5.0
#: File descriptors needed per simulated worker (its TCP connection in the scheduler and in the fake
#: worker process, plus ZeroMQ's per-socket mailbox descriptor), and a margin for everything else.
_FDS_PER_WORKER = 4
_FD_MARGIN = 256


def noop(_: Any = None) -> None:
    """The task submitted by the client; the fake workers never run it."""


# ----------------------------------------------------------------------------------------------- fake workers


class FakeWorkers:
    """``n`` DEALER sockets in one process, each acting as a worker agent with one processor."""

    def __init__(self, address: str, n: int) -> None:
        self._context = zmq.Context(io_threads=1)
        self._context.set(zmq.MAX_SOCKETS, n + 64)
        self._hostname = socket_module.gethostname()
        self._result = DefaultSerializer().serialize(None)
        self._per_worker_queue_size = WorkerConfig(scheduler_address=address).per_worker_queue_size
        self._heartbeat_s = float(scaler_defaults.WORKER_HEARTBEAT_INTERVAL_SECONDS)
        self._names: dict[zmq.Socket, str] = {}
        self._accepted: set[zmq.Socket] = set()
        self._stopped: set[zmq.Socket] = set()
        run_id = uuid.uuid4().hex[:8]
        for i in range(n):
            name = f"sim-{i}"
            dealer = self._context.socket(zmq.DEALER)
            dealer.setsockopt(zmq.IDENTITY, f"W|{name}|{run_id}".encode())
            dealer.setsockopt(zmq.SNDHWM, 0)
            dealer.setsockopt(zmq.RCVHWM, 0)
            dealer.setsockopt(zmq.LINGER, 500)
            dealer.connect(address)
            self._names[dealer] = name
        for dealer in self._names:
            self._connect(dealer)

    @property
    def all_accepted(self) -> bool:
        """Whether the scheduler accepted every fake worker."""
        return len(self._accepted) == len(self._names)

    def _connect(self, dealer: zmq.Socket) -> None:
        """Say hello as WorkerAgent._connect does."""
        # In the order of WorkerConnectField, spelled out so that the benchmark also runs against older versions.
        message = [self._names[dealer], os.getpid(), self._hostname, self._per_worker_queue_size, __version__]
        dealer.send_multipart(encode(MessageType.WORKER_CONNECT, message))

    def serve(self, control: multiprocessing.connection.Connection) -> None:
        """Answer the scheduler on every socket until ``control`` says stop (or closes)."""
        poller = zmq.Poller()
        for dealer in self._names:
            poller.register(dealer, zmq.POLLIN)
        control_fd = control.fileno()
        poller.register(control_fd, zmq.POLLIN)
        announced = False
        next_heartbeat = time.monotonic() + self._heartbeat_s
        while True:
            timeout_ms = max(0.0, (next_heartbeat - time.monotonic()) * 1000.0)
            for item, _ in poller.poll(timeout_ms):
                if item == control_fd:
                    return
                self._answer(item)
            if not announced and self.all_accepted:
                control.send("ready")
                announced = True
            if time.monotonic() >= next_heartbeat:
                self._heartbeat()
                next_heartbeat = time.monotonic() + self._heartbeat_s

    def _answer(self, dealer: zmq.Socket) -> None:
        """Read every waiting message of one socket; answer all tasks read in one TASK_RESULTS message."""
        task_ids: list[int] = []
        while dealer.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            try:
                msg_type, fields, _ = decode(dealer.recv_multipart(zmq.NOBLOCK))
            except MalformedMessage:
                continue
            if msg_type is MessageType.TASK_ASSIGN:
                task_ids.extend(task[WorkerTaskField.TASK_ID] for task in fields[1])
            elif msg_type is MessageType.WORKER_ACCEPT:
                self._accepted.add(dealer)
            elif msg_type is MessageType.TASK_WITHDRAW:
                # everything was answered already: keep every task asked for
                dealer.send_multipart(encode(MessageType.TASKS_RETURNED, [[], fields]))
            elif msg_type is MessageType.WORKER_RECONNECT:
                self._connect(dealer)
            elif msg_type is MessageType.WORKER_SHUTDOWN:
                self._stopped.add(dealer)
        if task_ids:
            writer = FrameWriter()
            ref = writer.add(self._result)  # small: inline bytes, as the processor's FrameWriter does
            items = [[task_id, TaskStatus.SUCCESS, ref, None, 0.0] for task_id in task_ids]
            dealer.send_multipart(encode(MessageType.TASK_RESULTS, items, writer.frames))

    def _heartbeat(self) -> None:
        """One WORKER_HEARTBEAT per socket, as WorkerAgent._heartbeat sends (one processor, empty queue)."""
        rss = psutil.Process().memory_info().rss // max(1, len(self._names))
        message = encode(MessageType.WORKER_HEARTBEAT, [0.0, rss, 0, 1])
        for dealer in self._names:
            if dealer not in self._stopped:
                dealer.send_multipart(message)

    def close(self) -> None:
        """Say goodbye on every socket and close them all."""
        goodbye = encode(MessageType.WORKER_DISCONNECT)
        for dealer in self._names:
            if dealer not in self._stopped:
                with contextlib.suppress(zmq.ZMQError):
                    dealer.send_multipart(goodbye, zmq.NOBLOCK)
        self._context.destroy(linger=500)


def _fake_workers_main(address: str, n: int, control: multiprocessing.connection.Connection) -> None:
    """Body of the fake-worker process: connect ``n`` workers, serve until told to stop."""
    die_with_parent(signal.SIGTERM)
    try:
        workers = FakeWorkers(address, n)
    except Exception:
        control.send(f"error: {traceback.format_exc()}")
        raise
    try:
        workers.serve(control)
    finally:
        workers.close()


# ----------------------------------------------------------------------------------------------- scheduler


def _scheduler_main(config: SchedulerConfig, profile_path: str | None) -> None:
    """Body of the scheduler process, optionally under cProfile (the profile is written on SIGTERM)."""
    die_with_parent(signal.SIGTERM)
    if profile_path is None:
        run_scheduler(config)
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        run_scheduler(config)
    finally:
        profiler.disable()
        profiler.dump_stats(profile_path)


# ----------------------------------------------------------------------------------------------- orchestration


def raise_fd_limit(n: int) -> int:
    """Raise this process's RLIMIT_NOFILE soft limit (inherited by its children) for ``n`` workers.

    Returns the soft limit in force afterwards.
    """
    needed = _FDS_PER_WORKER * n + _FD_MARGIN
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def _stop_process(process: multiprocessing.process.BaseProcess) -> None:
    """SIGTERM ``process``, then SIGKILL it if it has not exited within the stop timeout."""
    if process.exitcode is None:
        process.terminate()
    process.join(_STOP_TIMEOUT_S)
    if process.exitcode is None:
        process.kill()
        process.join(_STOP_TIMEOUT_S)


def _stop_fake_workers(process: multiprocessing.process.BaseProcess, control: Any) -> None:
    """Ask the fake-worker process to disconnect and exit; force it if it does not."""
    with contextlib.suppress(OSError):
        control.send("stop")
    process.join(_STOP_TIMEOUT_S)
    _stop_process(process)
    control.close()


def _wait_ready(control: multiprocessing.connection.Connection, n: int) -> None:
    """Wait until the fake-worker process says the scheduler accepted all ``n`` workers."""
    if not control.poll(_READY_TIMEOUT_S):
        raise TimeoutError(f"the scheduler did not accept {n} simulated workers within {_READY_TIMEOUT_S:g} s")
    try:
        message = control.recv()
    except EOFError:
        raise RuntimeError("the simulated-worker process exited before its workers were accepted") from None
    if message != "ready":
        raise RuntimeError(f"simulated workers failed to start: {message}")


def _timed_map(client: Client, n_tasks: int, warm_up: int) -> float:
    """Warm up with ``warm_up`` tasks, then time a map of ``n_tasks`` no-op tasks; returns seconds."""
    if warm_up:
        client.map(noop, [(i,) for i in range(warm_up)])
    args = [(i,) for i in range(n_tasks)]
    start = time.perf_counter()
    results = client.map(noop, args)
    elapsed = time.perf_counter() - start
    if len(results) != n_tasks or any(r is not None for r in results):
        raise AssertionError("simulated workers returned wrong results")
    return elapsed


def run_simulated_workers(n: int, n_tasks: int = 100_000, profile_path: str | None = None) -> float:
    """Return the scheduler's dispatch rate (tasks/s) with ``n`` simulated workers over ``n_tasks`` tasks.

    Starts a scheduler process and one process holding ``n`` fake workers, maps a no-op over ``n_tasks``
    tasks from a client in this process (after a short warm-up map), waits for every result, stops both
    processes and returns ``n_tasks / elapsed_seconds``. ``profile_path`` runs the scheduler under cProfile.
    """
    if _IMPORT_ERROR is not None:
        raise _IMPORT_ERROR
    if n < 1 or n_tasks < 1:
        raise ValueError("need at least one worker and one task")
    raise_fd_limit(n)
    address = local_address()
    context = multiprocessing.get_context("spawn")
    config = SchedulerConfig(address=address)
    with contextlib.ExitStack() as stack:
        scheduler = context.Process(target=_scheduler_main, args=(config, profile_path), name="sim-scheduler")
        scheduler.start()
        stack.callback(_stop_process, scheduler)
        ours, theirs = context.Pipe()
        workers = context.Process(target=_fake_workers_main, args=(address, n, theirs), name="sim-workers")
        workers.start()
        theirs.close()
        stack.callback(_stop_fake_workers, workers, ours)
        _wait_ready(ours, n)
        with Client(address) as client:
            elapsed = _timed_map(client, n_tasks, warm_up=min(n_tasks, max(1_000, 2 * n)))
    return n_tasks / elapsed


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the dispatch rate for each worker count."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simulated", description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,10,100,1000", help="comma-separated worker counts")
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks per run (default: 100,000)")
    parser.add_argument("--profile-scheduler", metavar="PREFIX", help="write the scheduler's cProfile stats")
    args = parser.parse_args(argv)
    for n in (int(w) for w in args.workers.split(",") if w.strip()):
        profile = f"{args.profile_scheduler}-{n}.prof" if args.profile_scheduler else None
        rate = run_simulated_workers(n, args.tasks, profile)
        print(f"{n:>5} simulated workers: {rate:>10,.0f} tasks/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
