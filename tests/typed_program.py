"""A program written against scaler's public API: tests/test_packaging.py checks it with mypy --strict against
the installed wheel (py.typed), and it fails if a public name loses its types."""

from __future__ import annotations

import asyncio
import concurrent.futures

from scaler import Client, ScalerExecutor, SchedulerClusterCombo
from scaler.errors import SchedulerLostError


def square(value: int) -> int:
    return value * value


def main() -> None:
    with SchedulerClusterCombo(n_workers=2) as combo:
        with Client(combo.get_address(), timeout_seconds=30) as client:
            future: concurrent.futures.Future[int] = client.submit(square, 3)
            total: int = future.result() + sum(client.map(square, [(i,) for i in range(10)]))
            graph = {"a": 1, "b": (square, "a")}
            results = client.get(graph, keys=["b"])
            executor = client.executor()
            doubled = list(executor.map(square, range(5)))
            print(total, results, doubled, client.scheduler_info()["workers"])
        with ScalerExecutor(combo.get_address()) as pool:
            print(pool.submit(square, 4).result())


async def gather(client: Client) -> list[int]:
    return list(await asyncio.gather(*(client.submit(square, i) for i in range(5))))


def must_be_typed(client: Client) -> None:
    # Each line is an error only if scaler's types are seen: mypy --strict --warn-unused-ignores then passes.
    print(client.submit(square, 1).result().no_such_attribute)  # type: ignore[attr-defined]
    client.no_such_method()  # type: ignore[attr-defined]
    SchedulerClusterCombo(n_workers="two")  # type: ignore[arg-type]


if __name__ == "__main__":
    try:
        main()
    except SchedulerLostError as exc:
        print(exc)
