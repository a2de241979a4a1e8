"""The streamz/rapidz Dask example on scaler: only the import changes (scaler.streams, not rapidz).

A stream of ten one-second tasks: sequential, it takes ten seconds; scattered to four workers with a
buffer of eight, about three.
"""

import time
from time import sleep

from scaler import Client, SchedulerClusterCombo
from scaler.streams import Stream, drain


def inc(x):
    sleep(1)  # simulate actual work
    return x + 1


def main() -> None:
    with SchedulerClusterCombo(n_workers=4) as cluster, Client(cluster.get_address()):
        start = time.monotonic()

        source = Stream()
        source.scatter().map(inc).buffer(8).gather().sink(print)

        for i in range(10):
            source.emit(i)

        drain(source)  # the last results are still on their way when the last emit returns
        print(f"10 one-second tasks in {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main()
