"""Running a coroutine on the event loop the user chose."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

EVENT_LOOPS = ("builtin", "uvloop")


def run_on_loop(coroutine: Coroutine[Any, Any, T], event_loop: str) -> T:
    """Run ``coroutine`` to completion on the builtin asyncio loop or on uvloop."""
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            logger.warning("uvloop is not installed; using the builtin event loop (pip install scaler[uvloop])")
        else:
            return uvloop.run(coroutine)
    elif event_loop != "builtin":
        raise ValueError(f"unknown event loop {event_loop!r}; choose one of {EVENT_LOOPS}")
    return asyncio.run(coroutine)
