"""Several "hosts" on one Linux machine: network namespaces joined by a bridge, for multi-host tests.

``Network(["sched", "a", "b"], tmp_path)`` creates, under a per-run prefix (``scl-<pid>-<token>-<n>``):

- a dedicated "switch" namespace holding a bridge, so the root namespace is left untouched;
- one namespace per host, each joined to the bridge by a veth pair created directly inside the two
  namespaces (nothing ever appears in the root namespace), with loopback up and its own address in a
  private /24 chosen at random (``10.X.Y.0/24``, avoiding every route of the root namespace).

``spawn(host, argv)`` runs a process inside a host (``ip netns exec``, its own session, stdout and stderr
in files under ``tmp_path``); ``cut(host)`` sets the host's link down (on the switch side by default:
the host keeps its address and routes, its packets go nowhere, like a pulled cable) and ``heal(host)``
sets it up again. ``close()`` (also on leaving the ``with`` block) kills every process started and
deletes every link, the bridge and every namespace; it never raises before it has tried everything.

``require_netns()`` skips a test where namespaces cannot be made (not root, no ``ip``, ``ip netns add``
fails), or fails it when the environment says CI=true. ``leftovers()`` lists what a run left behind.

Run as a script, ``python tests/netns.py proxy LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY``
is a small TCP proxy that delays every chunk by DELAY seconds in each direction, in order (latency,
not a bandwidth cap); it prints one JSON line per connection closed and one when it listens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

# One token per test session: every namespace and link of this run carries it.
RUN_TOKEN = secrets.token_hex(3)
RUN_PREFIX = f"scl-{os.getpid()}-{RUN_TOKEN}"
# Link names are limited to 15 characters: "s" + 6 hex + a short suffix.
LINK_PREFIX = f"s{RUN_TOKEN}"

_counter = 0


def _ip(*args: str, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


@functools.cache
def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or None when they can (checked once per session)."""
    reason: str | None = None
    if not sys.platform.startswith("linux"):
        reason = "network namespaces need Linux"
    elif os.geteuid() != 0:
        reason = "network namespaces need root (ip netns add)"
    elif shutil.which("ip") is None:
        reason = "the ip command (iproute2) is not installed"
    else:
        probe = f"{RUN_PREFIX}-probe"
        try:
            added = _ip("netns", "add", probe, check=False)
            if added.returncode != 0:
                reason = f"ip netns add failed: {added.stderr.strip()}"
            else:
                bridge = _ip("-n", probe, "link", "add", "br0", "type", "bridge", check=False)
                veth = _ip("-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1", check=False)
                if bridge.returncode != 0:
                    reason = f"cannot create a bridge in a namespace: {bridge.stderr.strip()}"
                elif veth.returncode != 0:
                    reason = f"cannot create a veth pair in a namespace: {veth.stderr.strip()}"
        except (OSError, subprocess.SubprocessError) as exc:
            reason = f"ip netns add failed: {exc!r}"
        finally:
            _ip("netns", "del", probe, check=False)
    return reason


def skip_or_fail(reason: str) -> None:
    """Skip the test with ``reason``; with CI=true in the environment, fail it instead."""
    import pytest

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and multi-host tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def require_netns() -> None:
    reason = unavailable_reason()
    if reason is not None:
        skip_or_fail(reason)


def run_namespaces() -> list[str]:
    """Every namespace of this run that still exists."""
    listed = _ip("netns", "list", check=False).stdout.splitlines()
    names = [line.split()[0] for line in listed if line.strip()]
    return [name for name in names if name.startswith(RUN_PREFIX)]


def run_root_links() -> list[str]:
    """Links of this run in the root namespace (there should never be any)."""
    listed = _ip("-o", "link", "show", check=False).stdout.splitlines()
    names = []
    for line in listed:
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return [name for name in names if name.startswith(LINK_PREFIX)]


def leftovers() -> list[str]:
    return [f"namespace {n}" for n in run_namespaces()] + [f"link {n}" for n in run_root_links()]


def _pick_subnet() -> ipaddress.IPv4Network:
    """A random 10.X.Y.0/24 that overlaps no route of the root namespace."""
    routes = []
    for line in _ip("-4", "route", "show", "table", "all", check=False).stdout.splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("broadcast", "local", "unreachable", "blackhole", "prohibit", "throw", "multicast"):
            word = line.split()[1] if len(line.split()) > 1 else ""
        with contextlib.suppress(ValueError):
            if word != "default":
                routes.append(ipaddress.ip_network(word, strict=False))
    for _ in range(1000):
        candidate = ipaddress.IPv4Network(f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.0/24")
        if not any(candidate.overlaps(route) for route in routes):
            return candidate
    raise RuntimeError("no free 10.X.Y.0/24 subnet")


@dataclasses.dataclass
class HostProcess:
    """A process started inside a host; its output is in files."""

    host: str
    name: str
    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    stdin: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, characters: int = 3000) -> str:
        return (
            f"--- {self.name} on {self.host} (pid {self.pid}, exit {self.returncode}) stdout:\n"
            f"{self.stdout()[-characters:]}\n--- stderr:\n{self.stderr()[-characters:]}"
        )


class Network:
    """A switch namespace with a bridge, and one namespace per host plugged into it."""

    def __init__(self, hosts: Sequence[str], tmp_path: Path) -> None:
        global _counter
        if len(set(hosts)) != len(hosts):
            raise ValueError(f"host names must be unique: {hosts}")
        _counter += 1
        self.prefix = f"{RUN_PREFIX}-{_counter}"
        self.hosts = list(hosts)
        self.tmp_path = tmp_path
        self.subnet = _pick_subnet()
        self.switch = f"{self.prefix}-switch"
        self.bridge = f"{LINK_PREFIX}br"
        addresses = list(self.subnet.hosts())
        self._index = {host: i for i, host in enumerate(self.hosts)}
        self._addresses = {host: str(addresses[i]) for i, host in enumerate(self.hosts)}
        self._created_namespaces: list[str] = []
        self._processes: list[HostProcess] = []
        self.events: list[tuple[float, str]] = []  # (time.time(), what): cuts and heals, for the assertions

    # ------------------------------------------------------------------ names

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def address(self, host: str) -> str:
        return self._addresses[host]

    def switch_port(self, host: str) -> str:
        return f"{LINK_PREFIX}p{self._index[host]}"

    def host_link(self, host: str) -> str:
        return f"{LINK_PREFIX}h{self._index[host]}"

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> Network:
        try:
            self.create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _add_namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self._created_namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def create(self) -> None:
        self._add_namespace(self.switch)
        _ip("-n", self.switch, "link", "add", self.bridge, "type", "bridge")
        _ip("-n", self.switch, "link", "set", self.bridge, "up")
        for host in self.hosts:
            namespace = self.namespace(host)
            self._add_namespace(namespace)
            port, link = self.switch_port(host), self.host_link(host)
            _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", link, "netns", namespace)
            _ip("-n", self.switch, "link", "set", port, "master", self.bridge)
            _ip("-n", self.switch, "link", "set", port, "up")
            _ip("-n", namespace, "addr", "add", f"{self.address(host)}/{self.subnet.prefixlen}", "dev", link)
            _ip("-n", namespace, "link", "set", link, "up")

    def close(self) -> list[str]:
        """Kill every process, delete every link and namespace; return what went wrong (never raises)."""
        problems: list[str] = []
        for process in self._processes:
            problems.extend(_stop_process(process))
        self._processes.clear()
        if self.switch in self._created_namespaces:
            for host in self.hosts:
                _ip("-n", self.switch, "link", "del", self.switch_port(host), check=False)
            _ip("-n", self.switch, "link", "del", self.bridge, check=False)
        for name in reversed(self._created_namespaces):
            result = _ip("netns", "del", name, check=False)
            if result.returncode != 0 and "No such file" not in result.stderr:
                problems.append(f"ip netns del {name}: {result.stderr.strip()}")
        self._created_namespaces.clear()
        return problems

    # ------------------------------------------------------------------ processes

    def spawn(
        self,
        host: str,
        argv: Sequence[str],
        name: str,
        env: dict[str, str] | None = None,
        stdin: bool = False,
    ) -> HostProcess:
        """Start ``argv`` inside ``host`` in its own session; output goes to tmp_path/NAME.out and .err."""
        stdout_path = self.tmp_path / f"{name}.out"
        stderr_path = self.tmp_path / f"{name}.err"
        full_env = dict(os.environ)
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        if env:
            full_env.update(env)
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            popen = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace(host), *argv],
                stdout=out,
                stderr=err,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                env=full_env,
                start_new_session=True,
            )
        process = HostProcess(host, name, popen, stdout_path, stderr_path, popen.stdin)
        self._processes.append(process)
        return process

    def run(self, host: str, argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a short command inside ``host`` and wait for it."""
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace(host), *argv], capture_output=True, text=True, timeout=timeout
        )

    def free_port(self, host: str, consecutive: int = 1) -> int:
        """A TCP port free on every address of ``host``, with the ``consecutive - 1`` following ones."""
        code = (
            "import socket\n"
            "for _ in range(200):\n"
            "    s = socket.socket(); s.bind(('0.0.0.0', 0)); port = s.getsockname()[1]\n"
            "    others = []\n"
            "    try:\n"
            f"        for k in range(1, {consecutive}):\n"
            "            o = socket.socket(); others.append(o); o.bind(('0.0.0.0', port + k))\n"
            "    except OSError:\n"
            "        continue\n"
            "    finally:\n"
            "        s.close(); [o.close() for o in others]\n"
            "    print(port); break\n"
        )
        result = self.run(host, [sys.executable, "-c", code])
        if result.returncode != 0 or not result.stdout.strip():
            raise RuntimeError(f"could not pick a port on {host}: {result.stderr}")
        return int(result.stdout.split()[0])

    def processes(self) -> list[HostProcess]:
        return list(self._processes)

    # ------------------------------------------------------------------ faults

    def cut(self, host: str, side: str = "switch") -> float:
        """Unplug ``host``: its link goes down on the switch side, the host side, or both. Returns when done."""
        if side in ("switch", "both"):
            _ip("-n", self.switch, "link", "set", self.switch_port(host), "down")
        if side in ("host", "both"):
            _ip("-n", self.namespace(host), "link", "set", self.host_link(host), "down")
        done = time.time()
        self.events.append((done, f"cut {host} ({side})"))
        return done

    def heal(self, host: str) -> float:
        """Plug ``host`` back in (both sides up; the host keeps its address). Returns when done."""
        started = time.time()
        _ip("-n", self.namespace(host), "link", "set", self.host_link(host), "up")
        _ip("-n", self.switch, "link", "set", self.switch_port(host), "up")
        self.events.append((started, f"heal {host}"))
        return started

    def describe(self) -> str:
        lines = [f"network {self.prefix} subnet {self.subnet}"]
        lines += [f"  {host}: {self.namespace(host)} {self.address(host)}" for host in self.hosts]
        lines += [f"  {when:.3f} {what}" for when, what in self.events]
        return "\n".join(lines)


def _stop_process(process: HostProcess, grace_seconds: float = 5.0) -> list[str]:
    """SIGTERM the process's session (its process group), then SIGKILL whatever remains of it."""
    problems: list[str] = []
    popen = process.popen
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    descendants = _descendants(popen.pid)
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGTERM)
        try:
            popen.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            problems.append(f"{process.name} ignored SIGTERM for {grace_seconds:g} s")
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)  # anything left of its session (its own children share it)
    if popen.poll() is None:
        popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=5)
    for child in descendants:  # children that left the session, by pid, only if they are still ours
        with contextlib.suppress(Exception):
            if child.is_running():
                child.kill()
    return problems


def _descendants(pid: int) -> list[Any]:
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:
        return []


def wait_for(condition: Callable[[], Any], timeout_seconds: float, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something true or the deadline passes; return its last value."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# ---------------------------------------------------------------------- the delaying TCP proxy


def _run_proxy(listen_host: str, listen_port: int, target_host: str, target_port: int, delay: float) -> None:
    import asyncio

    def emit(record: dict[str, Any]) -> None:
        print(json.dumps(record), flush=True)

    async def pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counts: dict[str, int], key: str
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            loop = asyncio.get_running_loop()
            while True:
                due, chunk = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not chunk:
                    break
                writer.write(chunk)
                await writer.drain()
                counts[key] += len(chunk)
                counts[key + "_chunks"] += 1
            with contextlib.suppress(Exception):
                writer.write_eof()

        forwarder = asyncio.create_task(forward())
        loop = asyncio.get_running_loop()
        try:
            while True:
                chunk = await reader.read(65536)
                queue.put_nowait((loop.time() + delay, chunk))
                if not chunk:
                    break
            await forwarder
        except (ConnectionError, OSError):
            forwarder.cancel()

    totals = {"up": 0, "down": 0, "up_chunks": 0, "down_chunks": 0, "connections": 0}

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        counts = totals
        totals["connections"] += 1
        emit({"event": "accepted", "connections": totals["connections"]})
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        except OSError as exc:
            emit({"event": "connect_failed", "error": repr(exc)})
            client_writer.close()
            return
        await asyncio.gather(
            pump(client_reader, server_writer, counts, "up"),
            pump(server_reader, client_writer, counts, "down"),
            return_exceptions=True,
        )
        for writer in (client_writer, server_writer):
            writer.close()
        emit({"event": "closed", **totals})

    async def report() -> None:
        last: dict[str, int] = {}
        while True:
            await asyncio.sleep(0.5)
            if totals != last:
                last = dict(totals)
                emit({"event": "totals", **totals})

    async def main() -> None:
        server = await asyncio.start_server(handle, listen_host, listen_port)
        emit({"event": "listening", "port": listen_port})
        reporter = asyncio.create_task(report())
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with server:
            await stop.wait()
        reporter.cancel()

    asyncio.run(main())


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "proxy":
        _run_proxy(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), float(sys.argv[6]))
    else:
        sys.exit("usage: python tests/netns.py proxy LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_SECONDS")
