"""The life cycle of a task in the scheduler: one table keyed by (state, event).

Every change of a task's state, ending included, is a row of ``TRANSITIONS``. The task manager fires
events through it and keeps each place's bookkeeping (the queue, a worker's assignments, the record
itself) in the code that runs when a task enters or leaves that place.
"""

from __future__ import annotations

import enum


class TaskState(enum.IntEnum):
    """Where a task is."""

    NEW = 0  # parsed and registered, not yet placed
    WAITING = 1  # waits for the results of the tasks it depends on
    QUEUED = 2  # ready, waits in the scheduler for a worker with a free slot
    ASSIGNED = 3  # sits in a worker's queue or runs there
    WITHDRAWING = 4  # assigned, and the scheduler asked the worker to give it back
    CANCELLING = 5  # assigned, and the scheduler asked the worker to stop it
    ENDED = 6  # its client got its one answer (or is gone); the record is removed


class TaskEvent(enum.IntEnum):
    """What can happen to a task (an IntEnum: the table is looked up on the scheduler's busiest path)."""

    READY = 0  # its dependencies are done (or it has none)
    BLOCKED = 1  # it was submitted with dependencies still running
    ASSIGN = 2  # a worker with a free slot takes it
    WITHDRAW = 3  # the scheduler asks its worker to give it back (balancing)
    RETURNED = 4  # its worker gave it back without starting it
    KEPT = 5  # its worker kept it (it had started) when asked to give it back
    CANCEL = 6  # its client cancelled it, cleared, or left
    RESULT = 7  # its worker sent how it ended
    WORKER_LOST = 8  # its worker died or went silent; it may run again
    WORKER_LOST_TOO_OFTEN = 9  # its worker died while running it, past the allowed failures
    REJECT = 10  # it cannot run: an object, function or dependency it needs does not exist
    DEPENDENCY_FAILED = 11  # a task it depends on ended without a result


_S = TaskState
_E = TaskEvent

TRANSITIONS: dict[tuple[TaskState, TaskEvent], TaskState] = {
    (_S.NEW, _E.READY): _S.QUEUED,
    (_S.NEW, _E.BLOCKED): _S.WAITING,
    (_S.NEW, _E.REJECT): _S.ENDED,
    (_S.WAITING, _E.READY): _S.QUEUED,
    (_S.WAITING, _E.CANCEL): _S.ENDED,
    (_S.WAITING, _E.DEPENDENCY_FAILED): _S.ENDED,
    (_S.QUEUED, _E.ASSIGN): _S.ASSIGNED,
    (_S.QUEUED, _E.CANCEL): _S.ENDED,
    (_S.QUEUED, _E.REJECT): _S.ENDED,
    (_S.ASSIGNED, _E.WITHDRAW): _S.WITHDRAWING,
    (_S.ASSIGNED, _E.CANCEL): _S.CANCELLING,
    (_S.ASSIGNED, _E.RESULT): _S.ENDED,
    (_S.ASSIGNED, _E.WORKER_LOST): _S.QUEUED,
    (_S.ASSIGNED, _E.WORKER_LOST_TOO_OFTEN): _S.ENDED,
    (_S.WITHDRAWING, _E.RETURNED): _S.QUEUED,
    (_S.WITHDRAWING, _E.KEPT): _S.ASSIGNED,
    (_S.WITHDRAWING, _E.CANCEL): _S.CANCELLING,
    (_S.WITHDRAWING, _E.RESULT): _S.ENDED,
    (_S.WITHDRAWING, _E.WORKER_LOST): _S.QUEUED,
    (_S.WITHDRAWING, _E.WORKER_LOST_TOO_OFTEN): _S.ENDED,
    # A cancelled task ends once its worker answers, gives it back, or dies; a second cancel changes nothing.
    (_S.CANCELLING, _E.CANCEL): _S.CANCELLING,
    (_S.CANCELLING, _E.KEPT): _S.CANCELLING,
    (_S.CANCELLING, _E.RETURNED): _S.ENDED,
    (_S.CANCELLING, _E.RESULT): _S.ENDED,
    (_S.CANCELLING, _E.WORKER_LOST): _S.ENDED,
    (_S.CANCELLING, _E.WORKER_LOST_TOO_OFTEN): _S.ENDED,
}
"""For each (state, event) that may happen, the state the task moves to. Anything else is a bug."""

ON_WORKER = frozenset({TaskState.ASSIGNED, TaskState.WITHDRAWING, TaskState.CANCELLING})
"""The states in which a task is held by exactly one worker."""


class InvalidTransition(RuntimeError):
    """An event happened to a task in a state the table does not list it for."""


def next_state(current: TaskState, event: TaskEvent) -> TaskState:
    """The state ``event`` moves a task in ``current`` to; InvalidTransition if the table has no such row."""
    target = TRANSITIONS.get((current, event))
    if target is None:
        raise InvalidTransition(f"a task in {current.name} cannot take {event.name}")
    return target
