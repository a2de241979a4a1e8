"""Problem sizes of the benchmark cases, for full, short (CI) and quick (smoke) runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sizes:
    """All tunable sizes used by the cases in :mod:`benchmarks.cases`."""

    map_tasks: int = 10_000  # (a)
    submit_tasks: int = 10_000  # (b)
    round_trips: int = 500  # (c)
    sleep_tasks: int = 200  # (d)
    sleep_s: float = 0.010  # (d)
    cpu_tasks: int = 40  # (e)
    cpu_task_s: float = 0.050  # (e)
    object_mb: int = 100  # (f)
    object_readers: int = 20  # (f)
    graph_layers: int = 50  # (g)
    graph_width: int = 100  # (g)
    big_map_tasks: int = 1_000_000  # (i)
    big_map_chunk: int = 10_000  # (i)
    rss_checkpoint_tasks: int = 10_000  # (i) scheduler RSS is sampled once this many tasks are done
    sim_tasks: int = 100_000  # (j)
    sim_workers: tuple[int, ...] = (1, 10, 100, 1000)  # (j)
    uneven_scale: float = 1.0  # (k) every sleep duration is multiplied by this
    lognormal_tasks: int = 2_000  # (l)
    joiner_tasks: int = 60  # (m)
    joiner_task_s: float = 0.25  # (m)
    slowed_tasks: int = 300  # (n)
    slowed_task_s: float = 0.020  # (n)
    two_client_tasks: int = 2_000  # (o) tasks of the first client
    two_client_task_s: float = 0.010  # (o)

    def to_dict(self) -> dict[str, Any]:
        """Return the sizes as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


FULL = Sizes()

#: CI / short mode: only the million-task map shrinks.
SHORT = dataclasses.replace(FULL, big_map_tasks=100_000)

#: Smoke run: every case small enough for the whole run to take about a minute.
QUICK = Sizes(
    map_tasks=1_000,
    submit_tasks=1_000,
    round_trips=50,
    sleep_tasks=40,
    cpu_tasks=8,
    object_mb=10,
    object_readers=4,
    graph_layers=10,
    graph_width=20,
    big_map_tasks=4_000,
    big_map_chunk=1_000,
    rss_checkpoint_tasks=2_000,
    sim_tasks=2_000,
    uneven_scale=0.1,
    lognormal_tasks=200,
    joiner_tasks=30,
    joiner_task_s=0.1,
    slowed_tasks=100,
    two_client_tasks=400,
)

PROFILES: dict[str, Sizes] = {"full": FULL, "short": SHORT, "quick": QUICK}
