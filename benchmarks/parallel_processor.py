"""How fast do tiny items go through ParallelProcessor(batch_size=100), next to a no-op client.map?

Starts a ``SchedulerClusterCombo`` of ``--workers`` workers (default 2) and measures, in alternating runs:

- the no-op map rate: ``client.map(noop, ...)`` over ``--map-tasks`` tasks (default 10,000), in tasks/s;
- the ParallelProcessor rate: ``--items`` tiny items (default 100,000) through
  ``ParallelProcessor(noop, collector=..., batch_size=--batch-size)`` on the same client, in items/s, from the
  first ``add_task`` to the end of ``join()`` (every result collected in this process).

Prints each run, the medians over ``--repeats`` runs (default 5) and their ratio; exits with 0 when the ratio
is at least ``--target`` (default 0.5), else 1::

    python -m benchmarks.parallel_processor [--items 100000] [--batch-size 100] [--workers 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence

from benchmarks.tasks import noop
from scaler import Client, SchedulerClusterCombo
from scaler.parallel import ParallelProcessor


def map_rate(client: Client, tasks: int) -> float:
    """Tasks per second of one no-op ``client.map``."""
    arguments = [(i,) for i in range(tasks)]
    start = time.perf_counter()
    results = client.map(noop, arguments)
    seconds = time.perf_counter() - start
    assert len(results) == tasks
    return tasks / seconds


def processor_rate(client: Client, items: int, batch_size: int, workers: int) -> float:
    """Items per second through a ParallelProcessor, every result collected."""
    collected = 0

    def collect(_: object) -> None:
        nonlocal collected
        collected += 1

    start = time.perf_counter()
    pp = ParallelProcessor(workers, noop, collect, client=client, batch_size=batch_size)
    pp.start()
    for i in range(items):
        pp.add_task(i)
    pp.task_done()
    pp.join()
    seconds = time.perf_counter() - start
    assert collected == items, f"collected {collected} of {items}"
    return items / seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--map-tasks", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.5, help="lowest acceptable ratio of the two rates")
    options = parser.parse_args(argv)

    map_rates: list[float] = []
    processor_rates: list[float] = []
    with SchedulerClusterCombo(n_workers=options.workers) as combo, Client(combo.get_address()) as client:
        map_rate(client, 1_000)  # warm-up: workers started, functions known
        processor_rate(client, 1_000, options.batch_size, options.workers)
        for run in range(options.repeats):
            order = ("map", "processor") if run % 2 == 0 else ("processor", "map")
            for kind in order:
                if kind == "map":
                    map_rates.append(map_rate(client, options.map_tasks))
                    print(f"run {run + 1}: no-op map            {map_rates[-1]:>11,.0f} tasks/s", flush=True)
                else:
                    processor_rates.append(
                        processor_rate(client, options.items, options.batch_size, options.workers)
                    )
                    print(f"run {run + 1}: ParallelProcessor    {processor_rates[-1]:>11,.0f} items/s", flush=True)
    map_median = statistics.median(map_rates)
    processor_median = statistics.median(processor_rates)
    ratio = processor_median / map_median
    print(f"{options.workers} workers, {options.repeats} runs each")
    print(f"no-op client.map of {options.map_tasks:,} tasks:          median {map_median:>11,.0f} tasks/s")
    print(
        f"ParallelProcessor(batch_size={options.batch_size}), {options.items:,} items: "
        f"median {processor_median:>11,.0f} items/s"
    )
    verdict = "meets" if ratio >= options.target else "misses"
    print(f"ratio: {ratio:.2f}x the no-op map rate ({verdict} the target of {options.target:g}x)")
    return 0 if ratio >= options.target else 1


if __name__ == "__main__":
    sys.exit(main())
