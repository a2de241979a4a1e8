"""The life cycle of a task in the scheduler, as one table of allowed transitions."""

from __future__ import annotations

import enum


class TaskState(enum.IntEnum):
    """Where a task is. A task that ends is removed from the scheduler: ending is not a state."""

    WAITING = 0  # waits for the results of the tasks it depends on
    QUEUED = 1  # ready, waits in the scheduler for a worker with a free slot
    ASSIGNED = 2  # sits in a worker's queue or runs there
    WITHDRAWING = 3  # assigned, and the scheduler asked the worker to give it back
    CANCELLING = 4  # assigned, and the scheduler asked the worker to stop it


TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.WAITING: frozenset({TaskState.QUEUED}),
    TaskState.QUEUED: frozenset({TaskState.ASSIGNED}),
    TaskState.ASSIGNED: frozenset({TaskState.QUEUED, TaskState.WITHDRAWING, TaskState.CANCELLING}),
    TaskState.WITHDRAWING: frozenset({TaskState.QUEUED, TaskState.ASSIGNED, TaskState.CANCELLING}),
    TaskState.CANCELLING: frozenset(),
}
"""For each state, the states a task may move to. Any state may also end (the task is removed)."""


class InvalidTransition(RuntimeError):
    """A task was asked to move to a state its current state does not lead to."""


def check_transition(current: TaskState, target: TaskState) -> None:
    """Raise InvalidTransition unless ``current`` may move to ``target``."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(f"task cannot move from {current.name} to {target.name}")
