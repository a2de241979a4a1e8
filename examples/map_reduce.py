"""MapReduce: the pyrallel example (docs/parallel.md), with only the import changed.

It starts its own local cluster of 8 workers for the run; the reducing happens on the workers.
"""

import scaler.parallel as pyrallel  # was: import pyrallel


def mapper(x):
    return x


def reducer(r1, r2):
    return r1 + r2


if __name__ == "__main__":
    mr = pyrallel.MapReduce(8, mapper, reducer)
    mr.start()

    for i in range(10000):
        mr.add_task(i)

    mr.task_done()
    result = mr.join()

    print(result)
