"""100 submits of math.sqrt, each future read with result()."""

import math

from scaler import Client, SchedulerClusterCombo


def main() -> None:
    with SchedulerClusterCombo(n_workers=2) as cluster:
        with Client(address=cluster.get_address()) as client:
            futures = [client.submit(math.sqrt, i) for i in range(100)]
            results = [future.result() for future in futures]
            assert results == [math.sqrt(i) for i in range(100)]
            print("sum of square roots of 0..99:", sum(results))


if __name__ == "__main__":
    main()
