"""RLTK's remote Task (docs/remote.md), with only the import changed, against a cluster started here.

RLTK's example connects to a scheduler already running at '127.0.0.1:8786'; this one starts a scheduler and
two workers on a free port first and uses the same 'HOST:PORT' form of address.
"""

import scaler as rltk  # was: import rltk
import scaler.remote  # noqa: F401  (makes rltk.remote available)
from scaler import SchedulerClusterCombo

result = []


def heavy_calculation(x, y):
    return x * x, y + 5


def output_handler(r1, r2):
    result.append(r1 if r1 > r2 else r2)


if __name__ == "__main__":
    with SchedulerClusterCombo(n_workers=2) as cluster:
        address = cluster.get_address().removeprefix("tcp://")  # '127.0.0.1:PORT'

        remote = rltk.remote.Remote(address)
        task = rltk.remote.Task(remote, input_handler=heavy_calculation, output_handler=output_handler)
        task.start()

        for i in range(8):
            task.compute(i, i + 1)

        task.task_done()
        task.join()

        print(result)
        remote.close()
