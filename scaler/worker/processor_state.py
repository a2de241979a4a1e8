"""The agent state machine's view of one processor: the tasks handed to it and the objects it holds."""

from __future__ import annotations

from scaler.worker.agent_events import WireTask


class ProcessorState:
    """One processor as the agent's state machine sees it (no process, no socket)."""

    __slots__ = ("number", "in_flight", "held", "ready", "suspended", "retiring", "suspect")

    def __init__(self, number: int) -> None:
        self.number = number
        self.in_flight: dict[int, WireTask] = {}  # handed over and not answered, in the order handed over
        self.held: set[bytes] = set()  # objects sent to it and not deleted
        self.ready = False  # it said PROCESSOR_READY
        self.suspended: int | None = None  # id of its running task while that task waits on nested tasks
        self.retiring = False  # asked to exit: takes no more tasks
        self.suspect = 0  # id of the suspect task handed to it alone, 0 if none

    @property
    def takes_tasks(self) -> bool:
        """Ready, not waiting on nested tasks, not retiring."""
        return self.ready and self.suspended is None and not self.retiring

    @property
    def starting(self) -> bool:
        """Started and not yet ready."""
        return not self.ready and not self.retiring

    @property
    def runs_suspect(self) -> bool:
        """A suspect task is in flight: nothing else joins it."""
        return self.suspect != 0 and self.suspect in self.in_flight

    def __repr__(self) -> str:
        flags = "".join(
            letter for letter, on in (("R", self.ready), ("S", self.suspended is not None), ("X", self.retiring)) if on
        )
        return f"<processor {self.number} {flags or '-'} in flight {list(self.in_flight)}>"
