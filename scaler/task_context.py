"""What a task running in a processor knows about where it runs (used by nested clients)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator


@dataclasses.dataclass
class ProcessorContext:
    """Set once per processor; the hooks tell the agent when the running task waits on nested tasks."""

    scheduler_address: str
    on_wait_start: Callable[[], None]
    on_wait_end: Callable[[], None]
    task_id: int = 0
    task_priority: int = 0


_current: ProcessorContext | None = None


def current_processor() -> ProcessorContext | None:
    """The context of this processor, or None outside a worker."""
    return _current


def set_current_processor(context: ProcessorContext | None) -> None:
    """Install the processor context (done by the processor at start-up)."""
    global _current
    _current = context


@contextlib.contextmanager
def waiting_on_nested_tasks() -> Iterator[None]:
    """Around a blocking wait inside a task: the agent lends the waiting processor's core to another one."""
    context = _current
    if context is None:
        yield
        return
    context.on_wait_start()
    try:
        yield
    finally:
        context.on_wait_end()
