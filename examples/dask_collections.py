"""Dask collections computed on scaler: pass ``client.get`` as Dask's scheduler (needs ``pip install scaler[dask]``)."""

import operator
import sys

from scaler import Client, SchedulerClusterCombo


def main() -> None:
    try:
        import dask
        import dask.array as da
        import dask.bag as db
    except ImportError:
        print("dask is not installed: pip install 'scaler[dask]'")
        sys.exit(0)

    with SchedulerClusterCombo(n_workers=2) as cluster, Client(address=cluster.get_address()) as client:
        # dask.array: 100 chunks of 10x10
        x = da.random.RandomState(0).random_sample((100, 100), chunks=(10, 10))
        total = (x + x.T).sum()
        print("array:", total.compute(scheduler=client.get), "(dask sync:", total.compute(scheduler="sync"), ")")

        # dask.bag: 1,000 partitions folded together
        bag = db.from_sequence(range(10_000), npartitions=1000).map(lambda v: v * v).fold(operator.add)
        print("bag:", bag.compute(scheduler=client.get))

        # dask.delayed, several collections at once: values come back in the same nesting
        a = dask.delayed(operator.add)(1, 2)
        b = dask.delayed(sorted)([a, 10, 5], reverse=True)
        print("delayed:", dask.compute({"a": a, "b": b}, [a, 7], scheduler=client.get))

        # or make scaler the default for every compute() in the block
        with dask.config.set(scheduler=client.get):
            print("mean:", x.mean().compute())


if __name__ == "__main__":
    main()
