"""Client.map: one function over a list of argument tuples, results in order."""

import random

from scaler import Client, SchedulerClusterCombo


def calculate(value: float) -> float:
    return value * 1


def main() -> None:
    with SchedulerClusterCombo(n_workers=2) as cluster:
        tasks = [random.randint(0, 100) for _ in range(10_000)]
        with Client(address=cluster.get_address()) as client:
            results = client.map(calculate, [(i,) for i in tasks])
            assert results == tasks
            print(f"{len(results)} results, all as expected")


if __name__ == "__main__":
    main()
