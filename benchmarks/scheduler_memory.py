"""Does the scheduler's memory follow unfinished tasks rather than tasks ever run?

Starts a ``SchedulerClusterCombo``, maps a no-op over ``--tasks`` tasks (default 200,000) in chunks of
``--chunk`` (default 10,000) through one ``Client``, and prints the scheduler's RSS after the first chunk and
after the last, their difference and the throughput. Exits with 0 when the growth is within ``--limit-mb``
(default 30 MB), else 1::

    python -m benchmarks.scheduler_memory [--tasks 200000] [--workers 2] [--chunk 10000] [--limit-mb 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

from benchmarks.tasks import noop
from scaler import Client, SchedulerClusterCombo

MB = 1024 * 1024


@dataclass(frozen=True)
class MemoryRun:
    """What one run measured."""

    tasks: int
    seconds: float
    rss_first_chunk_mb: float
    rss_end_mb: float

    @property
    def growth_mb(self) -> float:
        """Scheduler RSS growth from the end of the first chunk to the end of the run."""
        return self.rss_end_mb - self.rss_first_chunk_mb

    @property
    def tasks_per_s(self) -> float:
        """Throughput over the whole run."""
        return self.tasks / self.seconds


def _rss_mb(process: psutil.Process) -> float:
    """Resident set size of ``process`` in MB."""
    return process.memory_info().rss / MB


def _map_chunk(client: Client, start: int, count: int) -> None:
    """Map the no-op over ``count`` tasks numbered from ``start`` and check the results."""
    results = client.map(noop, [(i,) for i in range(start, start + count)])
    if results != list(range(start, start + count)):
        raise AssertionError(f"wrong results for tasks {start}..{start + count - 1}")


def measure(total: int, workers: int, chunk: int) -> MemoryRun:
    """Run ``total`` no-op tasks in chunks on a fresh local cluster, sampling the scheduler's RSS."""
    with SchedulerClusterCombo(n_workers=workers) as combo, Client(combo.get_address()) as client:
        if combo.scheduler_pid is None:
            raise RuntimeError("the cluster did not report its scheduler's pid")
        scheduler = psutil.Process(combo.scheduler_pid)
        done = 0
        rss_first: float | None = None
        start = time.perf_counter()
        while done < total:
            count = min(chunk, total - done)
            _map_chunk(client, done, count)
            done += count
            if rss_first is None:
                rss_first = _rss_mb(scheduler)
        seconds = time.perf_counter() - start
        rss_end = _rss_mb(scheduler)
    assert rss_first is not None
    return MemoryRun(total, seconds, rss_first, rss_end)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run, print the figures; 0 if the growth is within the limit, else 1."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scheduler_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=200_000, help="tasks in all (default: 200,000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument("--chunk", type=int, default=10_000, help="tasks per map call (default: 10,000)")
    parser.add_argument("--limit-mb", type=float, default=30.0, help="allowed RSS growth in MB (default: 30)")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.chunk < 1 or args.workers < 1:
        parser.error("--tasks, --chunk and --workers must be positive")

    run = measure(args.tasks, args.workers, args.chunk)
    first = min(args.chunk, args.tasks)
    print(f"scheduler RSS after {first:,} tasks: {run.rss_first_chunk_mb:8.1f} MB")
    print(f"scheduler RSS after {run.tasks:,} tasks: {run.rss_end_mb:8.1f} MB")
    print(f"difference: {run.growth_mb:+.1f} MB (limit {args.limit_mb:g} MB)")
    print(f"throughput: {run.tasks_per_s:,.0f} tasks/s ({run.seconds:.1f} s)")
    ok = run.growth_mb <= args.limit_mb
    print("OK" if ok else "FAIL: the scheduler's memory grew with the number of tasks run")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
