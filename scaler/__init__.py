"""scaler: a distributed computation engine for Python.

from scaler import Client, SchedulerClusterCombo

with SchedulerClusterCombo(n_workers=4) as cluster, Client(cluster.get_address()) as client:
    print(client.map(pow, [(2, 10), (3, 3)]))
"""

from scaler.client.client import Client
from scaler.client.future import ProfilingInfo, ScalerFuture
from scaler.client.object_reference import ObjectReference
from scaler.cluster.combo import SchedulerClusterCombo
from scaler.errors import (
    ClientClosedError,
    GraphError,
    MissingProfilingInfoError,
    ProcessorDiedError,
    ScalerError,
    SchedulerLostError,
    SerializationError,
    ShutdownRefusedError,
    TaskFailedError,
    WorkerDiedError,
)
from scaler.serializer import DefaultSerializer, Serializer
from scaler.version import __version__

__all__ = [
    "Client",
    "ClientClosedError",
    "DefaultSerializer",
    "GraphError",
    "MissingProfilingInfoError",
    "ObjectReference",
    "ProcessorDiedError",
    "ProfilingInfo",
    "ScalerError",
    "ScalerFuture",
    "SchedulerClusterCombo",
    "SchedulerLostError",
    "SerializationError",
    "Serializer",
    "ShutdownRefusedError",
    "TaskFailedError",
    "WorkerDiedError",
    "__version__",
]
