"""Case (j): scheduler dispatch rate with many simulated workers.

PENDING: this needs ``scaler.protocol`` (the scheduler's wire messages) so that a single process can pretend
to be N workers: connect N lightweight fake workers to a scheduler, have a client submit tasks, and let each
fake worker answer every task it receives immediately with a canned result. The figure is the number of
tasks per second the scheduler dispatches and completes, so it measures the scheduler alone, not task
execution. The core engineer fills in :func:`run_simulated_workers`; the runner already calls it for
1, 10, 100 and 1000 workers and reports ``pending`` while it raises ``NotImplementedError``.
"""

from __future__ import annotations

PENDING_MESSAGE = "pending: needs scaler.protocol"


def run_simulated_workers(n: int, n_tasks: int = 100_000) -> float:
    """Return the scheduler's dispatch rate (tasks/s) with ``n`` simulated workers over ``n_tasks`` tasks.

    Contract for the implementation: start a scaler scheduler (its own process or in-process), connect ``n``
    simulated workers speaking ``scaler.protocol`` that reply to each task at once, submit ``n_tasks`` no-op
    tasks from one client, wait for every result, stop everything it started, and return
    ``n_tasks / elapsed_seconds``.
    """
    raise NotImplementedError(PENDING_MESSAGE)
