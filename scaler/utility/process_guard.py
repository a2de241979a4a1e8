"""Keeping child processes from outliving their parents."""

from __future__ import annotations

import ctypes
import signal
import sys


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``signum`` to this process when its parent ends (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signum))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def reset_inherited_signals() -> None:
    """A forked child must not write into its parent's asyncio signal pipe or keep its handlers."""
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


_M_MMAP_THRESHOLD = -3  # mallopt parameter numbers from glibc's malloc.h
_LARGE_ALLOCATION_BYTES = 1024 * 1024


def map_large_allocations() -> None:
    """Serve every allocation of 1 MiB or more from its own memory map (glibc only; no-op elsewhere).

    glibc otherwise raises its map threshold after large frees, and later payloads of a few MiB land in the
    heap, where freed pages stay with the process. Fixed, a freed payload goes straight back to the system.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, _LARGE_ALLOCATION_BYTES)
    except (OSError, AttributeError):
        pass


def trim_memory() -> None:
    """Ask the C library to return freed heap memory to the system (glibc only; no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
