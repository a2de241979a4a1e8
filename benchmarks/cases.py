"""Benchmark cases (a)-(o): what each one runs and which figures it reports.

Every case function takes a prepared but not started :class:`~benchmarks.engines.base.Engine` and the
:class:`~benchmarks.sizes.Sizes` in force, starts and stops the engine itself, and returns a
:class:`CaseOutput`. They run inside the fresh subprocess started by :mod:`benchmarks.run`. Cases (k)-(o), on long
and uneven tasks, live in :mod:`benchmarks.uneven`, imported when one of them runs (it imports this module).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from benchmarks import memory, simulated, tasks
from benchmarks.engines.base import Engine
from benchmarks.sizes import Sizes


@dataclass(frozen=True)
class Metric:
    """One figure reported by a case (one row of the table)."""

    key: str
    label: str
    unit: str
    higher_is_better: bool


@dataclass
class CaseOutput:
    """What a case returns: its figures, extra raw data for the JSON file, and an optional note."""

    metrics: dict[str, float | None]
    extra: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


@dataclass(frozen=True)
class Case:
    """A benchmark case: a key (``a``..``j``), a title, its figures and the function that measures them."""

    key: str
    title: str
    metrics: tuple[Metric, ...]
    run: Callable[[Engine, Sizes], CaseOutput]
    #: Engines able to run the case; ``None`` means all.
    engines: frozenset[str] | None = None


# ----------------------------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def running(engine: Engine, warm_up: bool = True) -> Iterator[Engine]:
    """Start ``engine`` (optionally warming every worker up with a few no-op tasks) and always stop it."""
    engine.start()
    try:
        if warm_up:
            engine.map(tasks.noop, [(i,) for i in range(4 * engine.workers)])
            engine.result(engine.submit(tasks.noop, 0))
        yield engine
    finally:
        engine.shutdown()


def _check(condition: bool, message: str) -> None:
    """Raise ``AssertionError(message)`` unless ``condition`` (results are checked, not just timed)."""
    if not condition:
        raise AssertionError(message)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of ``values`` (``pct`` in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil without floats
    return ordered[int(rank) - 1]


def calibrate_cpu_loops(target_s: float) -> tuple[int, float]:
    """Find a loop count for :func:`tasks.cpu_work` taking about ``target_s`` here, single threaded.

    Returns the loop count and the measured duration of one such task (best of five runs, i.e. the
    undisturbed single-threaded time), which the efficiency figure uses as the ideal task time.
    """
    loops = 10_000
    while True:
        start = time.perf_counter()
        tasks.cpu_work(loops)
        elapsed = time.perf_counter() - start
        if elapsed >= 0.02:
            break
        loops *= 2
    loops = max(1, int(loops * target_s / elapsed))
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        tasks.cpu_work(loops)
        timings.append(time.perf_counter() - start)
    return loops, min(timings)


def layered_graph(layers: int, width: int) -> tuple[dict[str, Any], list[str], dict[str, int]]:
    """Build a dask-style graph of ``layers`` x ``width`` task nodes.

    Layer 0 nodes are ``(value, i)``; node ``i`` of every later layer adds nodes ``i`` and ``i + 1``
    (wrapping) of the previous layer. Returns the graph, the keys of the last layer and their expected values.
    """

    def key(layer: int, i: int) -> str:
        return f"n{layer}-{i}"

    graph: dict[str, Any] = {key(0, i): (tasks.value, i) for i in range(width)}
    current = list(range(width))
    for layer in range(1, layers):
        for i in range(width):
            j = (i + 1) % width
            graph[key(layer, i)] = (tasks.add, key(layer - 1, i), key(layer - 1, j))
        current = [current[i] + current[(i + 1) % width] for i in range(width)]
    keys = [key(layers - 1, i) for i in range(width)]
    return graph, keys, dict(zip(keys, current, strict=True))


def _no_op_args(count: int, offset: int = 0) -> list[tuple[int]]:
    return [(offset + i,) for i in range(count)]


# ----------------------------------------------------------------------------------------------- cases


def case_map(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(a) ``map`` of a no-op over ``map_tasks`` tasks."""
    args = _no_op_args(sizes.map_tasks)
    with running(engine):
        start = time.perf_counter()
        results = engine.map(tasks.noop, args)
        elapsed = time.perf_counter() - start
    _check(results == [a[0] for a in args], "map returned wrong results")
    return CaseOutput({"tasks_per_s": len(args) / elapsed}, {"tasks": len(args), "seconds": elapsed})


def case_submit(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(b) ``submit_tasks`` separate submits, then every result gathered."""
    n = sizes.submit_tasks
    with running(engine):
        start = time.perf_counter()
        handles = [engine.submit(tasks.noop, i) for i in range(n)]
        submitted = time.perf_counter()
        results = engine.gather(handles)
        elapsed = time.perf_counter() - start
    _check(results == list(range(n)), "gathered results are wrong")
    return CaseOutput(
        {"tasks_per_s": n / elapsed},
        {"tasks": n, "seconds": elapsed, "submit_seconds": submitted - start},
    )


def case_round_trip(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(c) Sequential ``submit(...).result()`` round trips: median and p99 latency."""
    latencies: list[float] = []
    with running(engine):
        for i in range(sizes.round_trips):
            start = time.perf_counter()
            result = engine.result(engine.submit(tasks.noop, i))
            latencies.append((time.perf_counter() - start) * 1000.0)
            _check(result == i, "round trip returned a wrong result")
    return CaseOutput(
        {"median_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 99)},
        {"round_trips": len(latencies), "mean_ms": statistics.fmean(latencies), "max_ms": max(latencies)},
    )


def case_sleep(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(d) ``sleep_tasks`` tasks sleeping ``sleep_s``: efficiency = (n * sleep / W) / wall time."""
    args = [(sizes.sleep_s,)] * sizes.sleep_tasks
    with running(engine):
        start = time.perf_counter()
        engine.map(tasks.sleep_task, args)
        elapsed = time.perf_counter() - start
    ideal = sizes.sleep_tasks * sizes.sleep_s / engine.workers
    return CaseOutput({"efficiency": ideal / elapsed}, {"seconds": elapsed, "ideal_seconds": ideal})


def case_cpu(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(e) ``cpu_tasks`` pure-Python CPU tasks of about ``cpu_task_s`` each: efficiency against ideal."""
    loops, task_s = calibrate_cpu_loops(sizes.cpu_task_s)
    expected = tasks.cpu_work(loops)
    with running(engine):
        start = time.perf_counter()
        results = engine.map(tasks.cpu_work, [(loops,)] * sizes.cpu_tasks)
        elapsed = time.perf_counter() - start
    _check(all(r == expected for r in results), "cpu tasks returned wrong results")
    ideal = sizes.cpu_tasks * task_s / engine.workers
    return CaseOutput(
        {"efficiency": ideal / elapsed},
        {"seconds": elapsed, "ideal_seconds": ideal, "loops": loops, "calibrated_task_s": task_s},
    )


def case_big_object(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(f) One large bytes object sent once and read by several tasks (each returns ``len``)."""
    size = sizes.object_mb * 1024 * 1024
    with running(engine):
        # Made after the workers exist, so no forked child inherits (and counts in its RSS) its pages;
        # random bytes are incompressible, so no engine gains from compression.
        data = os.urandom(size)
        scheduler, scheduler_note = (None, None)
        if engine.reports_scheduler_rss:
            scheduler, scheduler_note = memory.find_scheduler_process(engine.scheduler_pid())
        with memory.RssSampler(scheduler) as sampler:
            start = time.perf_counter()
            ref = engine.put(data)
            sent = time.perf_counter()
            handles = [engine.submit(tasks.length, ref) for _ in range(sizes.object_readers)]
            results = engine.gather(handles)
            elapsed = time.perf_counter() - start
    _check(results == [size] * sizes.object_readers, f"tasks saw wrong lengths: {results[:3]}")
    metrics: dict[str, float | None] = {"seconds": elapsed, "peak_rss_all_mb": sampler.peak_all_mb}
    if engine.reports_scheduler_rss:
        metrics["peak_rss_scheduler_mb"] = sampler.peak_scheduler_mb or None
    return CaseOutput(
        metrics,
        {
            "object_mb": sizes.object_mb,
            "readers": sizes.object_readers,
            "put_seconds": sent - start,
            "rss_samples": sampler.samples,
            "peak_rss_by_process_mb": sampler.peak_by_process(),
        },
        note=scheduler_note,
    )


def case_graph(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(g) A layered dask-style graph computed through ``get``."""
    graph, keys, expected = layered_graph(sizes.graph_layers, sizes.graph_width)
    with running(engine):
        start = time.perf_counter()
        results = engine.get(graph, keys)
        elapsed = time.perf_counter() - start
    _check(results == expected, "graph returned wrong values")
    return CaseOutput({"tasks_per_s": len(graph) / elapsed}, {"nodes": len(graph), "seconds": elapsed})


def case_lifecycle(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(h) Time from creating the cluster to the first result, and time to shut it down."""
    start = time.perf_counter()
    engine.start()
    try:
        result = engine.result(engine.submit(tasks.noop, 42))
        first = time.perf_counter() - start
    finally:
        stop = time.perf_counter()
        engine.shutdown()
        shutdown = time.perf_counter() - stop
    _check(result == 42, "first task returned a wrong result")
    return CaseOutput({"startup_s": first, "shutdown_s": shutdown})


def case_million(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(i) A very long ``map`` sent in chunks; for scaler also the scheduler's RSS along the way."""
    total, chunk = sizes.big_map_tasks, sizes.big_map_chunk
    checkpoint = min(sizes.rss_checkpoint_tasks, total)
    rss_checkpoint: float | None = None
    note = None
    with running(engine):
        scheduler = None
        if engine.reports_scheduler_rss:
            scheduler, note = memory.find_scheduler_process(engine.scheduler_pid())
        rss_start = memory.rss_mb(scheduler)
        with memory.RssSampler(scheduler, interval=0.25) as sampler:
            done = 0
            start = time.perf_counter()
            while done < total:
                count = min(chunk, total - done)
                results = engine.map(tasks.noop, _no_op_args(count, done))
                _check(len(results) == count and results[-1] == done + count - 1, "map chunk is wrong")
                done += count
                if rss_checkpoint is None and done >= checkpoint:
                    rss_checkpoint = memory.rss_mb(scheduler)
            elapsed = time.perf_counter() - start
            rss_end = memory.rss_mb(scheduler)
    metrics: dict[str, float | None] = {"tasks_per_s": total / elapsed}
    if engine.reports_scheduler_rss:
        metrics["scheduler_rss_checkpoint_mb"] = rss_checkpoint
        metrics["scheduler_rss_end_mb"] = rss_end
    return CaseOutput(
        metrics,
        {
            "tasks": total,
            "chunk": chunk,
            "checkpoint_tasks": checkpoint,
            "seconds": elapsed,
            "scheduler_rss_start_mb": rss_start,
            "peak_rss_scheduler_mb": sampler.peak_scheduler_mb or None,
            "peak_rss_all_mb": sampler.peak_all_mb,
        },
        note=note,
    )


def case_simulated(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(j) Scheduler dispatch rate with 1, 10, 100 and 1000 simulated workers (scaler only)."""
    metrics: dict[str, float | None] = {}
    for n in sizes.sim_workers:
        metrics[f"rate_{n}"] = simulated.run_simulated_workers(n, sizes.sim_tasks)
    return CaseOutput(metrics, {"tasks": sizes.sim_tasks})


def case_uneven_sleeps(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(k) Few uneven sleeps on 3 workers, warm and cold: makespan / ideal (see :mod:`benchmarks.uneven`)."""
    from benchmarks import uneven

    return uneven.case_uneven_sleeps(engine, sizes)


def case_lognormal(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(l) One map of log-normal sleeps: makespan / ideal and efficiency (see :mod:`benchmarks.uneven`)."""
    from benchmarks import uneven

    return uneven.case_lognormal(engine, sizes)


def case_late_joiner(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(m) A worker joins during a map: makespan / ideal and the joiner's share (see :mod:`benchmarks.uneven`)."""
    from benchmarks import uneven

    return uneven.case_late_joiner(engine, sizes)


def case_slowed_worker(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(n) A worker is stopped for 2 s during a map: makespan / ideal (see :mod:`benchmarks.uneven`)."""
    from benchmarks import uneven

    return uneven.case_slowed_worker(engine, sizes)


def case_two_clients(engine: Engine, sizes: Sizes) -> CaseOutput:
    """(o) A second client's small job behind a first client's long map (see :mod:`benchmarks.uneven`)."""
    from benchmarks import uneven

    return uneven.case_two_clients(engine, sizes)


TASKS_PER_S = "tasks/s"
MAKESPAN = "makespan / ideal"

CASES: dict[str, Case] = {
    c.key: c
    for c in (
        Case("a", "map of a no-op", (Metric("tasks_per_s", "throughput", TASKS_PER_S, True),), case_map),
        Case(
            "b",
            "submit each, then gather",
            (Metric("tasks_per_s", "throughput", TASKS_PER_S, True),),
            case_submit,
        ),
        Case(
            "c",
            "sequential submit().result()",
            (
                Metric("median_ms", "median latency", "ms", False),
                Metric("p99_ms", "p99 latency", "ms", False),
            ),
            case_round_trip,
        ),
        Case("d", "10 ms sleep tasks", (Metric("efficiency", "efficiency", "ratio", True),), case_sleep),
        Case("e", "50 ms CPU tasks", (Metric("efficiency", "efficiency", "ratio", True),), case_cpu),
        Case(
            "f",
            "large object read by many tasks",
            (
                Metric("seconds", "time", "s", False),
                Metric("peak_rss_all_mb", "peak RSS, all processes", "MB", False),
                Metric("peak_rss_scheduler_mb", "peak RSS, scheduler", "MB", False),
            ),
            case_big_object,
        ),
        Case(
            "g",
            "layered graph via get",
            (Metric("tasks_per_s", "throughput", TASKS_PER_S, True),),
            case_graph,
        ),
        Case(
            "h",
            "cluster lifecycle",
            (
                Metric("startup_s", "start to first result", "s", False),
                Metric("shutdown_s", "shutdown", "s", False),
            ),
            case_lifecycle,
        ),
        Case(
            "i",
            "very long map in chunks",
            (
                Metric("tasks_per_s", "throughput", TASKS_PER_S, True),
                Metric("scheduler_rss_checkpoint_mb", "scheduler RSS at checkpoint", "MB", False),
                Metric("scheduler_rss_end_mb", "scheduler RSS at end", "MB", False),
            ),
            case_million,
        ),
        Case(
            "j",
            "simulated workers dispatch rate",
            tuple(Metric(f"rate_{n}", f"{n} simulated workers", TASKS_PER_S, True) for n in (1, 10, 100, 1000)),
            case_simulated,
            engines=frozenset({"scaler"}),
        ),
        Case(
            "k",
            "uneven sleeps on 3 workers",
            (
                Metric("k_warm_4_1", f"warm, 3×4 + 3×1 units: {MAKESPAN}", "ratio", False),
                Metric("k_warm_2_half", f"warm, 3×2 + 9×0.5 units: {MAKESPAN}", "ratio", False),
                Metric("k_cold_4_1", f"cold start, 3×4 + 3×1 units: {MAKESPAN}", "ratio", False),
            ),
            case_uneven_sleeps,
        ),
        Case(
            "l",
            "log-normal task durations",
            (
                Metric("makespan_ratio", MAKESPAN, "ratio", False),
                Metric("efficiency", "efficiency (ideal / makespan)", "ratio", True),
            ),
            case_lognormal,
        ),
        Case(
            "m",
            "a worker joins during a map",
            (
                Metric("makespan_ratio", f"{MAKESPAN} given the join", "ratio", False),
                Metric("joiner_share", "joiner's tasks / its fair share", "ratio", True),
            ),
            case_late_joiner,
            engines=frozenset({"scaler", "dask"}),
        ),
        Case(
            "n",
            "a worker stopped for 2 s during a map",
            (
                Metric("makespan_ratio", MAKESPAN, "ratio", False),
                Metric("stopped_share", "share of tasks run by the stopped worker", "ratio", False),
            ),
            case_slowed_worker,
        ),
        Case(
            "o",
            "two clients, one small job",
            (
                Metric("second_client_s", "second client: submit to last result", "s", False),
                Metric("first_makespan_ratio", f"first client: {MAKESPAN}", "ratio", False),
            ),
            case_two_clients,
        ),
    )
}


def describe(case: Case, sizes: Sizes) -> str:
    """One-line description of ``case`` with the sizes in force, for the report."""
    s = sizes
    text = {
        "a": f"map of a no-op over {s.map_tasks:,} tasks",
        "b": f"{s.submit_tasks:,} submits, then gather all",
        "c": f"{s.round_trips:,} sequential submit().result()",
        "d": f"{s.sleep_tasks:,} tasks sleeping {s.sleep_s * 1000:g} ms",
        "e": f"{s.cpu_tasks:,} pure-Python CPU tasks of ~{s.cpu_task_s * 1000:g} ms",
        "f": f"{s.object_mb} MB bytes sent once, read by {s.object_readers} tasks",
        "g": f"{s.graph_layers} x {s.graph_width} layered graph via get",
        "h": "cluster creation to first result; shutdown",
        "i": f"{s.big_map_tasks:,}-task map in chunks of {s.big_map_chunk:,}"
        f" (checkpoint at {s.rss_checkpoint_tasks:,})",
        "j": f"dispatch with {', '.join(map(str, s.sim_workers))} simulated workers",
        "k": f"sleeps on 3 workers, 1 unit = {s.uneven_scale:g} s",
        "l": f"{s.lognormal_tasks:,} log-normal sleeps (median 5 ms, sigma 1.5)",
        "m": f"{s.joiner_tasks} sleeps of {s.joiner_task_s:g} s; a 3rd worker joins at 1/3",
        "n": f"{s.slowed_tasks} sleeps of {s.slowed_task_s * 1000:g} ms; one worker stopped 2 s",
        "o": f"client A maps {s.two_client_tasks:,} sleeps of {s.two_client_task_s * 1000:g} ms;"
        " client B then runs 10 no-ops",
    }
    return text.get(case.key, case.title)
