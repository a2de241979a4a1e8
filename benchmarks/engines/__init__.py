"""Engine registry: maps the names accepted by ``--engines`` to :class:`.base.Engine` subclasses.

Engine modules are imported lazily so that a missing optional library (``distributed``, ``scaler``) only
affects its own engine.
"""

from __future__ import annotations

import importlib

from benchmarks.engines.base import Engine, NotSupportedError

#: name -> "module:ClassName"
ENGINES: dict[str, str] = {
    "scaler": "benchmarks.engines.scaler_engine:ScalerEngine",
    "dask": "benchmarks.engines.dask_engine:DaskEngine",
    "processpool": "benchmarks.engines.pool_engines:ProcessPoolEngine",
    "mppool": "benchmarks.engines.pool_engines:MultiprocessingPoolEngine",
}

#: The engine every ratio in the report is computed against.
BASELINE = "processpool"


def make_engine(name: str, workers: int) -> Engine:
    """Instantiate the engine called ``name`` with ``workers`` worker processes."""
    module_name, class_name = ENGINES[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(workers)


__all__ = ["BASELINE", "ENGINES", "Engine", "NotSupportedError", "make_engine"]
