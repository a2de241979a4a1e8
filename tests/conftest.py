"""Fixtures: a shared local cluster, and a check after every test that no process was left behind."""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from scaler import Client, SchedulerClusterCombo
from scaler.scheduler.invariants import BREACHES_FILE_VARIABLE, ENVIRONMENT_SWITCH
from tests.helpers import describe, live_children, wait_until

SOAK = os.environ.get("SCALER_SOAK") == "1"

# Every scheduler the tests start checks its whole state after every message and writes any breach here.
os.environ.setdefault(ENVIRONMENT_SWITCH, "1")
_BREACHES_FILE = Path(tempfile.gettempdir()) / f"scaler-invariant-breaches-{os.getpid()}.txt"
os.environ[BREACHES_FILE_VARIABLE] = str(_BREACHES_FILE)

_shared_roots: set[int] = set()


def shared_cluster_pids() -> set[int]:
    """Processes of the module-wide clusters (their schedulers, workers and processors)."""
    pids = set()
    for root in list(_shared_roots):
        try:
            process = psutil.Process(root)
            pids.add(root)
            pids.update(child.pid for child in process.children(recursive=True))
        except psutil.NoSuchProcess:
            _shared_roots.discard(root)
    return pids


@pytest.fixture(autouse=True)
def no_invariant_breached() -> Iterator[None]:
    """Fail a test during which any scheduler found its state inconsistent."""
    _BREACHES_FILE.unlink(missing_ok=True)
    yield
    if _BREACHES_FILE.exists():
        breaches = _BREACHES_FILE.read_text(encoding="utf-8")
        _BREACHES_FILE.unlink()
        pytest.fail(f"a scheduler breached its invariants:\n{breaches[:4000]}")


@pytest.fixture(autouse=True)
def no_process_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a process behind, beyond the module's shared cluster."""
    yield

    def leaked() -> list[psutil.Process]:
        allowed = shared_cluster_pids()
        return [p for p in live_children() if p.pid not in allowed]

    if not wait_until(lambda: not leaked(), timeout_seconds=10):
        leaked_now = leaked()
        for process in leaked_now:
            try:
                process.kill()
            except psutil.Error:
                pass
        pytest.fail(f"processes left behind: {describe(leaked_now)}")


def _become_subreaper() -> None:
    """Orphaned descendants are re-parented to this process instead of init, so leaks stay visible."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


@pytest.fixture(scope="session", autouse=True)
def empty_process_tree_at_end() -> Iterator[None]:
    """After the whole session, this process has no live descendant."""
    _become_subreaper()
    yield
    assert wait_until(lambda: not live_children(), timeout_seconds=10), describe(live_children())


@pytest.fixture(scope="module")
def cluster() -> Iterator[SchedulerClusterCombo]:
    """A scheduler and two workers shared by the tests of one module."""
    combo = SchedulerClusterCombo(n_workers=2, protected=True)
    roots = {combo.scheduler_pid, *combo.worker_pids}
    _shared_roots.update(pid for pid in roots if pid is not None)
    try:
        yield combo
    finally:
        combo.shutdown()
        _shared_roots.difference_update(roots)


@pytest.fixture
def client(cluster: SchedulerClusterCombo) -> Iterator[Client]:
    with Client(cluster.get_address(), timeout_seconds=30) as connected:
        yield connected
