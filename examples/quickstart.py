"""Start a scheduler and two workers on this machine, then run work on them."""

import math

from scaler import Client, SchedulerClusterCombo


def calculate(value: int) -> float:
    return math.sqrt(value) * 2


def main() -> None:
    with SchedulerClusterCombo(n_workers=2) as cluster:
        with Client(address=cluster.get_address()) as client:
            future = client.submit(calculate, 16)
            print("submit:", future.result())

            results = client.map(calculate, [(i,) for i in range(1000)])
            print("map of 1000 tasks, last five:", [round(r, 3) for r in results[-5:]])
            assert results == [calculate(i) for i in range(1000)]
    print("quickstart finished")


if __name__ == "__main__":
    main()
