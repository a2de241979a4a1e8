"""Checks of the whole scheduler state, across its managers.

Each manager checks its own books (``check_invariants``); this module adds what only holds between
them. The scheduler runs the check after every message when SCALER_CHECK_INVARIANTS=1, and the
manager tests after every step.
"""

from __future__ import annotations

import os
from typing import Protocol

ENVIRONMENT_SWITCH = "SCALER_CHECK_INVARIANTS"
# Where breaches are also appended, one per line, when set: lets a test harness fail on any breach.
BREACHES_FILE_VARIABLE = "SCALER_INVARIANT_BREACHES_FILE"


def enabled_by_environment() -> bool:
    """Whether SCALER_CHECK_INVARIANTS asks for the checks."""
    return os.environ.get(ENVIRONMENT_SWITCH, "") not in ("", "0")


def record_breaches(breaches: list[str]) -> None:
    """Append ``breaches`` to the file SCALER_INVARIANT_BREACHES_FILE names, if it names one."""
    path = os.environ.get(BREACHES_FILE_VARIABLE)
    if path and breaches:
        with open(path, "a", encoding="utf-8") as file:
            file.writelines(f"pid {os.getpid()}: {breach}\n" for breach in breaches)


class _SelfChecking(Protocol):
    def check_invariants(self) -> list[str]: ...


class _Objects(_SelfChecking, Protocol):
    def owners(self) -> set[int]: ...

    def holding_workers(self) -> set[bytes]: ...


class _Clients(Protocol):
    def numbers(self) -> set[int]: ...


class _Workers(_SelfChecking, Protocol):
    def identities(self) -> set[bytes]: ...


def check_scheduler(tasks: _SelfChecking, objects: _Objects, clients: _Clients, workers: _Workers) -> list[str]:
    """Every breach of the scheduler's books, as sentences; empty when they are consistent."""
    breaches = tasks.check_invariants() + objects.check_invariants() + workers.check_invariants()
    gone_owners = objects.owners() - clients.numbers()
    if gone_owners:
        breaches.append(f"objects are owned by clients that are gone: {sorted(gone_owners)}")
    if not objects.holding_workers() <= workers.identities():
        breaches.append("objects are said to be held by workers that are gone")
    return breaches
