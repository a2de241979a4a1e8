"""scaler: a distributed computation engine for Python.

from scaler import Client, SchedulerClusterCombo

with SchedulerClusterCombo(n_workers=4) as cluster, Client(cluster.get_address()) as client:
    print(client.map(pow, [(2, 10), (3, 3)]))

``Scheduler`` and ``Cluster`` start a scheduler and a pool of workers as separate processes, with
the settings of ``scaler_scheduler`` and ``scaler_worker``.
"""

from scaler.client.client import Client
from scaler.client.executor import ScalerExecutor
from scaler.client.future import ProfilingInfo, ScalerFuture
from scaler.client.object_reference import ObjectReference
from scaler.client.progress import as_completed, progress
from scaler.cluster.cluster import Cluster
from scaler.cluster.combo import SchedulerClusterCombo
from scaler.cluster.scheduler import Scheduler
from scaler.errors import (
    ClientClosedError,
    GraphCycleError,
    GraphError,
    GraphKeyError,
    MissingObjects,
    MissingProfilingInfoError,
    ProcessorDiedError,
    ScalerError,
    SchedulerLostError,
    SerializationError,
    ShutdownRefusedError,
    TaskFailedError,
    WorkerDiedError,
)
from scaler.parallel import MapReduce, ParallelProcessor
from scaler.security import Security
from scaler.serializer import DefaultSerializer, Serializer
from scaler.version import __version__

__all__ = [
    "as_completed",
    "progress",
    "Client",
    "ClientClosedError",
    "Cluster",
    "DefaultSerializer",
    "GraphCycleError",
    "GraphError",
    "GraphKeyError",
    "MapReduce",
    "MissingObjects",
    "MissingProfilingInfoError",
    "ObjectReference",
    "ParallelProcessor",
    "ProcessorDiedError",
    "ProfilingInfo",
    "ScalerError",
    "ScalerExecutor",
    "ScalerFuture",
    "Scheduler",
    "SchedulerClusterCombo",
    "Security",
    "SchedulerLostError",
    "SerializationError",
    "Serializer",
    "ShutdownRefusedError",
    "TaskFailedError",
    "WorkerDiedError",
    "__version__",
]
