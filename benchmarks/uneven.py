"""Cases (k)-(o): how well each engine finishes long and uneven tasks.

Unless a case says otherwise, its main figure is the makespan (wall time from handing the tasks to the engine
to the last result) divided by the ideal makespan, ``max(longest task, total work / number of workers)``:
1.0 is perfect, lower is better. Every task sleeps instead of computing, so the figures do not depend on how
many cores the machine has, only on how the engine places the tasks on its workers.

The functions here are registered in :data:`benchmarks.cases.CASES` (which imports this module lazily).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, TypeAlias

import psutil

from benchmarks import tasks
from benchmarks.cases import CaseOutput, _check, running
from benchmarks.engines.base import Engine, NotSupportedError
from benchmarks.engines.dask_engine import DaskEngine
from benchmarks.engines.scaler_engine import ScalerEngine
from benchmarks.sizes import Sizes

#: (k) worker count, whatever ``--workers`` says, and its rows: figure key, durations (before scaling), warm.
UNEVEN_WORKERS = 3
UNEVEN_ROWS: tuple[tuple[str, tuple[float, ...], bool], ...] = (
    ("k_warm_4_1", (4.0, 4.0, 4.0, 1.0, 1.0, 1.0), True),
    ("k_warm_2_half", (2.0,) * 3 + (0.5,) * 9, True),
    ("k_cold_4_1", (4.0, 4.0, 4.0, 1.0, 1.0, 1.0), False),
)

#: (l) log-normal task durations: median, sigma of the underlying normal, cap, and the fixed seed.
LOGNORMAL_MEDIAN_S = 0.005
LOGNORMAL_SIGMA = 1.5
LOGNORMAL_CAP_S = 5.0
LOGNORMAL_SEED = 20_240_917

#: (m) workers before the join and after it.
JOINER_START_WORKERS = 2
JOINER_END_WORKERS = 3

#: (n) when the worker is stopped (seconds after the map starts) and for how long.
SLOWED_DELAY_S = 0.5
SLOWED_PAUSE_S = 2.0

#: (o) how long the first client's tasks run before the second client submits, and its task count.
TWO_CLIENTS_DELAY_S = 0.3
SECOND_CLIENT_TASKS = 10

#: Engines that can add a worker to a running cluster and connect a second client to it.
ClusterEngine: TypeAlias = ScalerEngine | DaskEngine


# ----------------------------------------------------------------------------------------------- helpers


def ideal_makespan(durations: Sequence[float], workers: int) -> float:
    """``max(longest task, total work / workers)``: no schedule of these tasks can finish sooner."""
    return max(max(durations), sum(durations) / workers)


def lognormal_durations(count: int, seed: int = LOGNORMAL_SEED) -> list[float]:
    """``count`` durations drawn log-normally (median 5 ms, sigma 1.5), each capped at 5 s; same list every run."""
    rng = random.Random(seed)
    mu = math.log(LOGNORMAL_MEDIAN_S)
    return [min(LOGNORMAL_CAP_S, rng.lognormvariate(mu, LOGNORMAL_SIGMA)) for _ in range(count)]


def timed_map(engine: Engine, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> tuple[list[Any], float]:
    """``engine.map(fn, args)`` and the seconds it took."""
    start = time.perf_counter()
    results = engine.map(fn, args)
    return results, time.perf_counter() - start


def _map_ending_at(engine: Engine, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]]) -> tuple[list[Any], float]:
    """``engine.map(fn, args)`` and the ``perf_counter`` time it returned (for maps run in a thread)."""
    results = engine.map(fn, args)
    return results, time.perf_counter()


def worker_pids(engine: Engine, expected: int, attempts: int = 5) -> set[int]:
    """The pids the engine's tasks run in, found by short warm-up maps until ``expected`` distinct pids appeared."""
    seen: set[int] = set()
    for attempt in range(attempts):
        count = 4 * expected * (attempt + 1)
        results = engine.map(tasks.sleep_report_pid, [(0.02, i) for i in range(count)])
        _check([tag for tag, _ in results] == list(range(count)), "warm-up map returned wrong results")
        seen.update(pid for _, pid in results)
        if len(seen) >= expected:
            break
    _check(len(seen) >= expected, f"warm-up tasks ran in {len(seen)} processes, expected {expected}")
    return seen


def _as_cluster(engine: Engine) -> ClusterEngine:
    if isinstance(engine, ScalerEngine | DaskEngine):
        return engine
    raise NotSupportedError(f"{engine.name} cannot add a worker to a running cluster")


@dataclass
class ExtraWorker:
    """A worker process started by a case, with its output kept in a temporary file."""

    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def output_tail(self, chars: int = 2000) -> str:
        """The last ``chars`` characters the worker printed (stdout and stderr together)."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-chars:]


@contextlib.contextmanager
def extra_worker(command: list[str]) -> Iterator[ExtraWorker]:
    """Start ``command`` as a worker process and always stop it, and whatever it started, on the way out."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield ExtraWorker(process, log)
        finally:
            stop_process_tree(process)


def stop_process_tree(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM ``process``, wait for it (SIGKILL after ``timeout``), then kill any of its children still alive."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        children = []
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    _, alive = psutil.wait_procs(children, timeout=timeout)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=timeout)


class Pauser:
    """Stops ``pids`` with SIGSTOP ``delay`` seconds after :meth:`start`, and resumes them ``pause`` seconds later.

    :meth:`finish` cancels a pause that has not begun, waits for one under way to end, and sends SIGCONT to
    every pid whatever happened, so no process is left stopped.
    """

    def __init__(self, pids: Sequence[int], delay: float, pause: float) -> None:
        self.pids = list(pids)
        self.pause = pause
        self.stopped_at: float | None = None
        self.resumed_at: float | None = None
        self._timer = threading.Timer(delay, self._pause)
        self._timer.daemon = True

    def start(self) -> None:
        """Arm the timer."""
        self._timer.start()

    def _pause(self) -> None:
        self.stopped_at = time.perf_counter()
        try:
            self._signal(signal.SIGSTOP)
            time.sleep(self.pause)
        finally:
            self._signal(signal.SIGCONT)
            self.resumed_at = time.perf_counter()

    def _signal(self, signum: signal.Signals) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def finish(self) -> None:
        """Cancel or wait for the pause, then make sure every pid runs again."""
        self._timer.cancel()
        try:
            self._timer.join()
        finally:
            self._signal(signal.SIGCONT)


def processes_to_stop(engine: Engine, task_pid: int) -> list[int]:
    """The processes to stop to freeze the worker whose tasks run in ``task_pid``.

    A scaler worker is an agent process plus the processor child that runs the tasks: both are stopped.
    For the other engines the task runs in the worker process itself.
    """
    _check(task_pid != os.getpid(), "tasks ran in the benchmark process itself")
    if isinstance(engine, ScalerEngine):
        parent = psutil.Process(task_pid).parent()
        _check(parent is not None and parent.pid != os.getpid(), "no agent process above the scaler processor")
        assert parent is not None
        return [task_pid, parent.pid]
    return [task_pid]


# ----------------------------------------------------------------------------------------------- cases


def case_uneven_sleeps(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(k) Maps of few, uneven sleeps on 3 workers (a fresh engine each), warm and cold: makespan / ideal."""
    metrics: dict[str, float | None] = {}
    extra: dict[str, Any] = {"workers": UNEVEN_WORKERS, "scale": sizes.uneven_scale}
    for key, base, warm in UNEVEN_ROWS:
        durations = [d * sizes.uneven_scale for d in base]
        args = [(d, i) for i, d in enumerate(durations)]
        fresh = type(engine)(UNEVEN_WORKERS)
        with running(fresh, warm_up=warm):
            results, makespan = timed_map(fresh, tasks.sleep_for, args)
        _check(results == list(range(len(args))), f"{key}: map returned wrong results")
        ideal = ideal_makespan(durations, UNEVEN_WORKERS)
        metrics[key] = makespan / ideal
        extra[key] = {"durations_s": durations, "warm": warm, "makespan_s": makespan, "ideal_s": ideal}
    return CaseOutput(metrics, extra)


def case_lognormal(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(l) One map of log-normally distributed sleeps (median 5 ms, sigma 1.5): makespan / ideal, efficiency."""
    durations = lognormal_durations(sizes.lognormal_tasks)
    args = [(d, i) for i, d in enumerate(durations)]
    with running(engine):
        results, makespan = timed_map(engine, tasks.sleep_for, args)
    _check(results == list(range(len(args))), "map returned wrong results")
    ideal = ideal_makespan(durations, engine.workers)
    return CaseOutput(
        {"makespan_ratio": makespan / ideal, "efficiency": ideal / makespan},
        {
            "tasks": len(durations),
            "seed": LOGNORMAL_SEED,
            "total_work_s": sum(durations),
            "longest_s": max(durations),
            "makespan_s": makespan,
            "ideal_s": ideal,
        },
    )


def case_late_joiner(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(m) A third worker joins a 2-worker cluster a third of the way into a map: makespan / ideal, its share."""
    n, d = sizes.joiner_tasks, sizes.joiner_task_s
    total = n * d
    join_after = total / JOINER_START_WORKERS / 3
    args = [(d, i) for i in range(n)]
    cluster = _as_cluster(type(engine)(JOINER_START_WORKERS))
    with running(cluster), ThreadPoolExecutor(1) as pool:
        original = worker_pids(cluster, JOINER_START_WORKERS)
        start = time.perf_counter()
        mapped = pool.submit(_map_ending_at, cluster, tasks.sleep_report_pid, args)
        time.sleep(max(0.0, join_after - (time.perf_counter() - start)))
        join_time = time.perf_counter() - start
        with extra_worker(cluster.worker_command()) as joiner:
            results, end = mapped.result()
            joiner_output = joiner.output_tail()
    makespan = end - start
    _check([tag for tag, _ in results] == list(range(n)), "map returned wrong results")
    by_pid = Counter(pid for _, pid in results)
    joiner_pids = sorted(set(by_pid) - original)
    joiner_tasks = sum(by_pid[pid] for pid in joiner_pids)

    remaining = total - JOINER_START_WORKERS * join_time
    if remaining > 0:
        ideal = join_time + max(remaining / JOINER_END_WORKERS, d)
    else:
        ideal = ideal_makespan([d] * n, JOINER_START_WORKERS)
    # Tasks not yet started at the join, had the two first workers run without a gap since the map began.
    started = min(n, JOINER_START_WORKERS * (math.floor(join_time / d) + 1))
    fair_share = (n - started) / JOINER_END_WORKERS
    note = None
    if not joiner_pids:
        note = "the joining worker ran no task"
    return CaseOutput(
        {
            "makespan_ratio": makespan / ideal,
            "joiner_share": joiner_tasks / fair_share if fair_share > 0 else None,
        },
        {
            "tasks": n,
            "task_s": d,
            "join_s": join_time,
            "makespan_s": makespan,
            "ideal_s": ideal,
            "unstarted_at_join": n - started,
            "joiner_tasks": joiner_tasks,
            "tasks_by_pid": {str(pid): count for pid, count in by_pid.items()},
            "joiner_pids": joiner_pids,
            "joiner_output_tail": joiner_output if not joiner_pids else "",
        },
        note=note,
    )


def case_slowed_worker(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(n) One worker is stopped (SIGSTOP) for 2 s in the middle of a map: makespan / ideal, its share of tasks."""
    n, d = sizes.slowed_tasks, sizes.slowed_task_s
    args = [(d, i) for i in range(n)]
    with running(engine):
        target = min(worker_pids(engine, engine.workers))
        stopped = processes_to_stop(engine, target)
        pauser = Pauser(stopped, SLOWED_DELAY_S, SLOWED_PAUSE_S)
        start = time.perf_counter()
        pauser.start()
        try:
            results = engine.map(tasks.sleep_report_pid, args)
            makespan = time.perf_counter() - start
        finally:
            pauser.finish()
    _check([tag for tag, _ in results] == list(range(n)), "map returned wrong results")
    by_pid = Counter(pid for _, pid in results)
    ideal = ideal_makespan([d] * n, engine.workers)
    # With perfect rebalancing the other workers absorb the stopped one's share: total + pause over W.
    best = max(ideal, (n * d + SLOWED_PAUSE_S) / engine.workers, SLOWED_DELAY_S + SLOWED_PAUSE_S)
    paused = pauser.stopped_at is not None
    return CaseOutput(
        {"makespan_ratio": makespan / ideal, "stopped_share": by_pid[target] / n},
        {
            "tasks": n,
            "task_s": d,
            "makespan_s": makespan,
            "ideal_s": ideal,
            "best_possible_ratio": best / ideal,
            "stopped_pids": stopped,
            "stopped_tasks": by_pid[target],
            "paused": paused,
            "tasks_by_pid": {str(pid): count for pid, count in by_pid.items()},
        },
        note=None if paused else "the map ended before the worker was stopped",
    )


def case_two_clients(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(o) While client A runs a long map, client B submits 10 no-op tasks: B's wait, A's makespan / ideal."""
    n, d = sizes.two_client_tasks, sizes.two_client_task_s
    args = [(d, i) for i in range(n)]
    with running(engine):
        if isinstance(engine, ScalerEngine | DaskEngine):
            second: contextlib.AbstractContextManager[Callable[..., Any]] = engine.second_client()
        else:  # a process pool has one user: B submits to the same pool from the same process
            second = contextlib.nullcontext(engine.submit)
        with second as submit_b, ThreadPoolExecutor(1) as pool:
            a_start = time.perf_counter()
            mapped = pool.submit(_map_ending_at, engine, tasks.sleep_for, args)
            time.sleep(TWO_CLIENTS_DELAY_S)
            b_start = time.perf_counter()
            handles = [submit_b(tasks.noop, -1 - i) for i in range(SECOND_CLIENT_TASKS)]
            b_results = [h.result() for h in handles]
            b_end = time.perf_counter()
            a_results, a_end = mapped.result()
    _check(b_results == [-1 - i for i in range(SECOND_CLIENT_TASKS)], "second client got wrong results")
    _check(a_results == list(range(n)), "first client's map returned wrong results")
    ideal = ideal_makespan([d] * n, engine.workers)
    a_makespan = a_end - a_start
    return CaseOutput(
        {"second_client_s": b_end - b_start, "first_makespan_ratio": a_makespan / ideal},
        {
            "first_tasks": n,
            "task_s": d,
            "second_tasks": SECOND_CLIENT_TASKS,
            "first_makespan_s": a_makespan,
            "ideal_s": ideal,
            "second_submitted_after_s": b_start - a_start,
            "second_done_before_first": b_end < a_end,
        },
    )
