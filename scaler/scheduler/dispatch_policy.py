"""How much work a worker holds ahead, and when waiting work moves to an idle worker: pure arithmetic.

A worker holds tasks ahead of the one it runs only to hide the round trip to the scheduler. Tiny
tasks go in deep queues (enough work to cover ``HORIZON_SECONDS``); a task that takes longer than a
few round trips gets at most one task waiting behind it; a long task (``LONG_TASK_SECONDS`` or more,
or a function not yet measured) runs with nothing waiting behind it, so no core sits idle while a
long task waits elsewhere. A task that waits on a worker but has not started may move to a worker
that goes idle, when the two workers' held work differs by more than the horizon.
"""

from __future__ import annotations

import math

# Seconds of work a worker holds ahead: covers the round trip to the scheduler many times over.
HORIZON_SECONDS = 0.01
# Tasks estimated at least this long run with nothing waiting behind them on their worker: the idle
# round trip between two of them costs under half a percent, a long task stuck behind another costs more.
LONG_TASK_SECONDS = 0.25
# Estimated work one client's tasks take per turn when clients share the queue: one task of 10 ms or more,
# a thousand no-ops (so tiny tasks still travel in large batches).
TURN_SECONDS = 0.01
# The estimate below which tasks count as free (no-ops): avoids dividing by zero.
_SMALLEST_SECONDS = 1e-6


def room_for(held: int, held_seconds: float, estimate: float, cap: int) -> int:
    """How many more tasks of ``estimate`` seconds a worker may take while it holds ``held`` tasks.

    The first task is always welcome; a second (one waiting) if the tasks are not long; more while the
    work held stays within the horizon; never more than ``cap`` in all.
    """
    free = cap - held
    if free <= 0:
        return 0
    if estimate >= LONG_TASK_SECONDS:
        return 1 if held == 0 else 0
    estimate = max(estimate, _SMALLEST_SECONDS)
    room = 0
    if held < 2:  # the running task and one waiting behind it
        room = 2 - held
        held_seconds += room * estimate
    if held_seconds <= HORIZON_SECONDS:
        room += math.floor((HORIZON_SECONDS - held_seconds) / estimate) + 1
    return min(room, free)


def worth_stealing(victim_seconds: float, thief_seconds: float) -> bool:
    """Whether the victim holds so much more work than the thief that moving some of it pays for the trip."""
    return victim_seconds - thief_seconds > HORIZON_SECONDS


def steal_count(victim_seconds: float, thief_seconds: float, estimates_newest_first: list[float]) -> int:
    """How many of the victim's waiting tasks (newest first, by estimate) to move so both hold about the same."""
    count = 0
    for estimate in estimates_newest_first:
        if thief_seconds + estimate > victim_seconds - estimate:
            break
        thief_seconds += estimate
        victim_seconds -= estimate
        count += 1
    return count


def level(loads: list[int], caps: list[int], n_tasks: int) -> list[int]:
    """How many of ``n_tasks`` each worker gets so the lowest loads rise together, none above its cap.

    ``loads`` must be sorted, lowest first. Returns the grant of each worker, in the same order.
    """
    grant = [0] * len(loads)
    remaining = n_tasks
    indices = range(len(loads))
    while remaining > 0:
        active = [i for i in indices if loads[i] + grant[i] < caps[i]]
        if not active:
            break
        height = min(loads[i] + grant[i] for i in active)
        lowest = [i for i in active if loads[i] + grant[i] == height]
        higher = [loads[i] + grant[i] for i in active if loads[i] + grant[i] > height]
        step = min([*higher, *(caps[i] for i in lowest)]) - height
        if step * len(lowest) > remaining:
            step, extra = divmod(remaining, len(lowest))
            for rank, i in enumerate(lowest):
                grant[i] += step + (1 if rank < extra else 0)
            break
        for i in lowest:
            grant[i] += step
        remaining -= step * len(lowest)
    return grant
