"""Parallel processing in the style of pyrallel and RLTK, on a scaler cluster.

``ParallelProcessor`` maps a function over many inputs on the workers and hands every result to a collector
in this process; ``MapReduce`` maps and reduces to one value, the reducing done on the workers. Programs
written for pyrallel run with ``import scaler.parallel as pyrallel``. See docs/parallel.md.
"""

from scaler.parallel.map_reduce import MapReduce
from scaler.parallel.processor import ParallelProcessor

__all__ = ["MapReduce", "ParallelProcessor"]
