"""Rights and isolation with security off: what a peer on the same network can and cannot do to others.

Each test is one probe an attacker would try: put other bytes under another client's function id, hold
tasks hostage by heartbeating without answering, and exhaust the scheduler's file descriptors with
connections that never speak.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import psutil
import pytest
import zmq

from scaler import Client, Cluster, SchedulerClusterCombo, defaults
from scaler.io.address import local_address
from scaler.protocol.ids import content_object_id
from scaler.protocol.messages import MessageType
from scaler.scheduler.dispatch_policy import room_for
from scaler.serializer import DefaultSerializer
from tests import tasks
from tests.helpers import stop_processes, wait_until
from tests.protocol_peer import FakeWorker, ProtocolClient, teach_run_time

BIN = Path(sys.executable).parent
REPOSITORY = Path(__file__).resolve().parent.parent


_FAKE_RUN_SECONDS = 0.004


def poisoned(*args: object) -> str:
    return "poisoned"


@pytest.mark.timeout(60)
def test_a_peer_cannot_put_other_bytes_under_another_clients_function_id() -> None:
    with SchedulerClusterCombo(n_workers=1) as combo:
        genuine_id = content_object_id(DefaultSerializer().serialize(tasks.add))
        with ProtocolClient(combo.get_address()) as attacker:
            # The attacker gets there first with the id the real client will use and its own code.
            attacker.send(MessageType.OBJECT_PUT, [[genuine_id, cloudpickle.dumps(poisoned, protocol=5)]])
            attacker.send(MessageType.INFO_REQUEST)
            attacker.wait_for(MessageType.INFO_REPLY, 10)  # the put was handled (one socket, in order)
            with Client(combo.get_address(), timeout_seconds=30) as client:
                assert client.submit(tasks.add, 2, 3).result(timeout=30) == 5
                assert client.map(tasks.add, [(i, 1) for i in range(50)]) == [i + 1 for i in range(50)]


@contextlib.contextmanager
def _heartbeating(fake: FakeWorker) -> Iterator[None]:
    """Keep ``fake`` heartbeating (and answering nothing) from a thread while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            fake.receive_pending(0.1)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@pytest.mark.timeout(90)
def test_a_worker_that_heartbeats_but_answers_no_withdrawal_loses_its_tasks_to_a_real_one() -> None:
    """The fake fills its queue, heartbeats, and answers nothing: once a real worker joins and the scheduler asks
    for tasks back, the fake is treated as dead within the answer bound (2 s here; the worker time-out stays at
    60 s) and the real worker runs every task."""
    with SchedulerClusterCombo(n_workers=0, worker_answer_timeout_seconds=2, load_balance_seconds=0.2) as combo:
        address = combo.get_address()
        fake = FakeWorker(address)
        try:
            with Client(address, timeout_seconds=60) as client:
                teach_run_time(client, fake, tasks.sleep_and_return, _FAKE_RUN_SECONDS)
                count = room_for(0, 0.0, _FAKE_RUN_SECONDS, defaults.SCHEDULER_PER_WORKER_QUEUE_SIZE)
                futures = [client.submit(tasks.sleep_and_return, 0.0, i) for i in range(count)]
                fake.wait_for_tasks(1 + count, timeout_seconds=30)
                with _heartbeating(fake), Cluster(address, num_of_workers=1, heartbeat_interval_seconds=0.5):
                    assert [future.result(timeout=40) for future in futures] == list(range(count))
                    names = [worker["name"] for worker in client.scheduler_info()["workers"]]
                    assert "fake-worker" not in names
        finally:
            fake.close()


def _open_silent_connections(port: int, count: int) -> list[socket.socket]:
    """``count`` TCP connections that say nothing; each connect returns once the scheduler's backlog has room."""
    connections = []
    for _ in range(count):
        connection = socket.socket()
        connection.settimeout(30)
        connection.connect(("127.0.0.1", port))
        connections.append(connection)
    return connections


def _raise_own_file_limit(files: int) -> None:
    """Let this test process hold ``files`` descriptors (root may raise its hard limit too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= files:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, max(hard, files)))
    except (ValueError, OSError) as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"this test needs {files} open files and cannot raise its limit of {hard}: {exc}")


@contextlib.contextmanager
def _scheduler_under_1024_files() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A scheduler started under ``ulimit -n 1024`` (soft and hard), listening when the block starts."""
    bash = shutil.which("bash")
    assert bash is not None
    address = local_address()
    scheduler = subprocess.Popen(
        [bash, "-c", f'ulimit -n 1024 && exec "{BIN / "scaler_scheduler"}" -ll WARNING {address}'],
    )
    try:
        with Client(address, timeout_seconds=30):  # it listens
            pass
        yield address, scheduler
        assert scheduler.poll() is None
    finally:
        stop_processes(scheduler)


@pytest.mark.timeout(120)
def test_1100_silent_connections_under_a_1024_file_limit_do_not_stop_a_real_client() -> None:
    _raise_own_file_limit(4096)
    connections: list[socket.socket] = []
    try:
        with _scheduler_under_1024_files() as (address, _):
            connections = _open_silent_connections(int(address.rsplit(":", 1)[1]), 1100)
            # Every descriptor of the scheduler was taken; silent connections are closed after 5 s, well within
            # the client's 10 s (ZeroMQ's default of 30 s would leave this client unanswered).
            with Cluster(address, num_of_workers=1), Client(address, timeout_seconds=10) as client:
                assert client.map(tasks.add, [(i, 1) for i in range(100)]) == [i + 1 for i in range(100)]
    finally:
        for connection in connections:
            connection.close()


@pytest.mark.timeout(120)
def test_1100_idle_zeromq_peers_that_never_say_hello_do_not_stop_a_real_client() -> None:
    """ZeroMQ peers complete the greeting by themselves and then send nothing (and reconnect when closed): the
    scheduler closes connections silent for 10 s, so a real client gets in and works."""
    _raise_own_file_limit(8192)
    context = zmq.Context()
    context.setsockopt(zmq.LINGER, 0)
    context.set(zmq.MAX_SOCKETS, 4096)
    try:
        with _scheduler_under_1024_files() as (address, scheduler):
            idle = []
            for _ in range(1100):
                peer = context.socket(zmq.DEALER)
                peer.connect(address)
                idle.append(peer)
            # Every descriptor of the scheduler is taken before the real client comes.
            assert wait_until(lambda: psutil.Process(scheduler.pid).num_fds() >= 1000, timeout_seconds=30)
            with Cluster(address, num_of_workers=1), Client(address, timeout_seconds=60) as client:
                assert client.map(tasks.add, [(i, 1) for i in range(100)]) == [i + 1 for i in range(100)]
    finally:
        context.destroy(linger=0)
