"""CURVE security with real processes: keys from scaler_keygen, a secured scheduler, allowed and refused peers."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq.auth

from scaler import Client, SchedulerClusterCombo
from scaler.errors import SchedulerLostError
from scaler.io.address import default_monitor_address, local_address
from scaler.security import Security
from tests.helpers import environment_without_settings, stop_processes, wait_until

BIN = Path(sys.executable).parent


def _keygen(directory: Path, name: str) -> None:
    result = subprocess.run(
        [str(BIN / "scaler_keygen"), str(directory), name], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def add(a: int, b: int) -> int:
    return a + b


def nested_sum(n: int) -> int:
    """Submits from inside a task: the nested client uses its worker's keys."""
    with Client() as client:
        return sum(client.map(add, [(i, 1) for i in range(n)]))


class Keys:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.keys = root / "keys"
        for name in ("scheduler", "alice", "bob", "worker", "mallory"):
            _keygen(self.keys, name)
        self.clients = root / "allowed_clients"
        self.workers = root / "allowed_workers"
        self.clients.mkdir()
        self.workers.mkdir()
        for name in ("alice", "bob"):
            shutil.copy(self.keys / f"{name}.key", self.clients)
        shutil.copy(self.keys / "worker.key", self.workers)

    def secret(self, name: str) -> str:
        return str(self.keys / f"{name}.key_secret")

    @property
    def server(self) -> str:
        return str(self.keys / "scheduler.key")

    def security(self, name: str | None) -> Security:
        return Security(secret_key_file=self.secret(name) if name else None, server_key_file=self.server)


class SecuredScheduler:
    def __init__(self, keys: Keys) -> None:
        self.address = local_address()
        self.monitor = default_monitor_address(self.address)
        self.log = keys.root / "scheduler.log"
        self.log.touch()
        self.process = subprocess.Popen(
            [
                str(BIN / "scaler_scheduler"),
                self.address,
                "--curve-secret-key",
                keys.secret("scheduler"),
                "--curve-allowed-clients",
                str(keys.clients),
                "--curve-allowed-workers",
                str(keys.workers),
                "--status-interval-seconds",
                "0.2",
                "--logging-paths",
                str(self.log),
            ],
            env=environment_without_settings(),
        )
        assert wait_until(lambda: "listening" in self.text(), 30), self.text()

    def text(self) -> str:
        return self.log.read_text()


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


@pytest.fixture
def scheduler(keys: Keys) -> Iterator[SecuredScheduler]:
    secured = SecuredScheduler(keys)
    try:
        yield secured
    finally:
        stop_processes(secured.process)


def _worker(scheduler: SecuredScheduler, keys: Keys, name: str, log: Path, n: int = 2) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(BIN / "scaler_worker"),
            scheduler.address,
            "-n",
            str(n),
            "--curve-secret-key",
            keys.secret(name),
            "--curve-server-key",
            keys.server,
            "--logging-paths",
            str(log),
        ],
        env=environment_without_settings(),
    )


@pytest.mark.timeout(90)
def test_keygen_writes_a_zmq_certificate_pair(tmp_path: Path) -> None:
    _keygen(tmp_path / "new", "node")
    public, secret = zmq.auth.load_certificate(tmp_path / "new" / "node.key_secret")
    assert zmq.auth.load_certificate(tmp_path / "new" / "node.key") == (public, None)
    assert secret is not None and len(public) == 40
    assert (tmp_path / "new" / "node.key_secret").stat().st_mode & 0o077 == 0
    again = subprocess.run([str(BIN / "scaler_keygen"), str(tmp_path / "new"), "node"], capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr
    version = subprocess.run([str(BIN / "scaler_keygen"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "version" in version.stdout


@pytest.mark.timeout(120)
def test_allowed_client_and_worker_compute_a_map(scheduler: SecuredScheduler, keys: Keys) -> None:
    worker = _worker(scheduler, keys, "worker", keys.root / "worker.log")
    try:
        with Client(scheduler.address, timeout_seconds=20, security=keys.security("alice")) as client:
            assert client.map(add, [(i, i) for i in range(20)]) == [2 * i for i in range(20)]
            # a task's own client connects with its worker's key
            assert client.submit(nested_sum, 5).result(timeout=60) == 15
    finally:
        stop_processes(worker)


@pytest.mark.timeout(120)
def test_a_workers_key_cannot_connect_as_a_client_outside_a_task(scheduler: SecuredScheduler, keys: Keys) -> None:
    """A worker key is good for a task's own (nested) client only: a plain client holding it is refused at once."""
    for _ in range(3):
        with pytest.raises(SchedulerLostError, match="not allowed to connect as a client"):
            Client(scheduler.address, timeout_seconds=10, security=keys.security("worker"))
    assert scheduler.text().count("refused CLIENT_CONNECT from 127.0.0.1") >= 1
    with Client(scheduler.address, timeout_seconds=10, security=keys.security("bob")) as bob:
        assert len(bob.scheduler_info()["clients"]) == 1  # none of the refused ones is known


@pytest.mark.timeout(120)
@pytest.mark.parametrize("who", ["no key at all", "a key not allowed", "a key for the wrong scheduler"])
def test_a_refused_client_fails_within_its_timeout_and_is_logged_once(
    scheduler: SecuredScheduler, keys: Keys, who: str
) -> None:
    if who == "no key at all":
        security = None
    elif who == "a key not allowed":
        security = keys.security("mallory")
    else:  # alice's key, but she believes mallory's key is the scheduler's
        security = Security(secret_key_file=keys.secret("alice"), server_key_file=str(keys.keys / "mallory.key"))
    started = time.monotonic()
    with pytest.raises(SchedulerLostError) as caught:
        Client(scheduler.address, timeout_seconds=5, security=security)
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert "CURVE" in message or "key" in message, message
    log = scheduler.text()
    if who == "a key not allowed":
        mallory = zmq.auth.load_certificate(keys.keys / "mallory.key")[0].decode()
        # the client retried many times in 5 s; the refusal is logged once, with the peer's address
        assert log.count(f"public key {mallory} is in no allow-list") == 1, log
        assert "from 127.0.0.1" in log
    else:
        assert log.count("refused 1 connection that failed the security handshake") == 1, log
    # nothing of it got in: the scheduler knows no client
    with Client(scheduler.address, timeout_seconds=10, security=keys.security("bob")) as bob:
        assert len(bob.scheduler_info()["clients"]) == 1
    assert "connected" not in "".join(line for line in log.splitlines() if "client" in line and "mallory" in line)


@pytest.mark.timeout(120)
def test_a_client_key_cannot_register_as_a_worker(scheduler: SecuredScheduler, keys: Keys) -> None:
    impostor = _worker(scheduler, keys, "alice", keys.root / "impostor.log", n=1)
    try:
        assert wait_until(lambda: "refused WORKER_CONNECT" in scheduler.text(), 30), scheduler.text()
        with Client(scheduler.address, timeout_seconds=10, security=keys.security("bob")) as client:
            future = client.submit(add, 1, 2)
            time.sleep(2)
            assert not future.done()  # no worker got it
            assert client.scheduler_info()["workers"] == []
            future.cancel()
        assert impostor.wait(timeout=30) != 0  # the refused worker gives up
    finally:
        stop_processes(impostor)
    assert scheduler.text().count("refused WORKER_CONNECT") == 1, scheduler.text()  # once per peer
    assert "not allowed to register as a worker" in (keys.root / "impostor.log").read_text()


@pytest.mark.timeout(120)
def test_sighup_reloads_the_allow_lists(scheduler: SecuredScheduler, keys: Keys) -> None:
    with pytest.raises(SchedulerLostError):
        Client(scheduler.address, timeout_seconds=3, security=keys.security("mallory"))
    shutil.copy(keys.keys / "mallory.key", keys.clients)
    scheduler.process.send_signal(signal.SIGHUP)
    assert wait_until(lambda: scheduler.text().count("client keys") >= 2, 10), scheduler.text()
    with Client(scheduler.address, timeout_seconds=10, security=keys.security("mallory")) as client:
        assert client.scheduler_info()["clients"]
    (keys.clients / "alice.key").unlink()
    scheduler.process.send_signal(signal.SIGHUP)
    assert wait_until(lambda: scheduler.text().count("client keys") >= 3, 10), scheduler.text()
    with pytest.raises(SchedulerLostError):
        Client(scheduler.address, timeout_seconds=3, security=keys.security("alice"))


@pytest.mark.timeout(120)
def test_the_monitor_needs_an_allowed_key(scheduler: SecuredScheduler, keys: Keys) -> None:
    top = [str(BIN / "scaler_top"), scheduler.monitor, "--once", "-t"]
    with_keys = subprocess.run(
        [*top, "20", "--curve-secret-key", keys.secret("bob"), "--curve-server-key", keys.server],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment_without_settings(),
    )
    assert with_keys.returncode == 0, with_keys.stderr
    assert scheduler.address.split(":")[-1] in with_keys.stdout
    without = subprocess.run(
        [*top, "3"], capture_output=True, text=True, timeout=60, env=environment_without_settings()
    )
    assert without.returncode == 1 and without.stdout == ""
    not_allowed = subprocess.run(
        [*top, "3", "--curve-secret-key", keys.secret("mallory"), "--curve-server-key", keys.server],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment_without_settings(),
    )
    assert not_allowed.returncode == 1 and not_allowed.stdout == ""
    assert "to the monitor from 127.0.0.1" in scheduler.text()


@pytest.mark.timeout(120)
def test_a_secured_combo(keys: Keys) -> None:
    security = Security(secret_key_file=keys.secret("scheduler"), allowed_clients=str(keys.clients))
    with SchedulerClusterCombo(n_workers=2, security=security) as cluster:
        with Client(cluster.get_address(), timeout_seconds=20, security=keys.security("alice")) as client:
            assert client.map(add, [(1, 2), (3, 4)]) == [3, 7]
        with pytest.raises(SchedulerLostError):
            Client(cluster.get_address(), timeout_seconds=3)
