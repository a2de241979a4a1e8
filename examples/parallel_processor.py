"""ParallelProcessor: the pyrallel and RLTK examples (docs/parallel.md), with only the import changed.

Each starts its own local cluster of 8 workers for the run and stops it at join(). The collector runs in
one thread of this process, in the order the tasks finish, so the order of ``result`` varies from run to run.
"""

import scaler.parallel as pyrallel  # was: import pyrallel
import scaler.parallel as rltk  # was: import rltk

result = []


def heavy_calculation(x, y):
    return x * x, y + 5


def output_handler(r1, r2):
    result.append(r1 if r1 > r2 else r2)


if __name__ == "__main__":
    # pyrallel's spelling
    pp = pyrallel.ParallelProcessor(8, mapper=heavy_calculation, collector=output_handler)
    pp.start()

    for i in range(8):
        pp.add_task(i, i + 1)

    pp.task_done()
    pp.join()

    print(result)

    result.clear()  # (not in the originals: the two examples share this list)

    # RLTK's spelling
    pp = rltk.ParallelProcessor(heavy_calculation, 8, output_handler=output_handler)
    pp.start()

    for i in range(8):
        pp.compute(i, i + 1)

    pp.task_done()
    pp.join()

    print(result)
