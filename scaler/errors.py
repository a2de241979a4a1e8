"""Exceptions raised by scaler to its users."""

from __future__ import annotations


class ScalerError(Exception):
    """Base class of every error scaler raises itself."""


class SchedulerLostError(ScalerError, ConnectionError):
    """The scheduler did not answer within the client's timeout, or could not be reached."""


class ClientClosedError(ScalerError, RuntimeError):
    """The client was disconnected or shut down and cannot take more work."""


class ShutdownRefusedError(ScalerError, PermissionError):
    """The scheduler runs protected and refused to shut the cluster down."""


class SerializationError(ScalerError, TypeError):
    """A function, argument or object could not be serialized or deserialized."""


class WorkerDiedError(ScalerError):
    """The task's workers died too many times while running it."""


class ProcessorDiedError(ScalerError):
    """The process running the task died (for example it called os._exit or was killed)."""


class TaskFailedError(ScalerError):
    """The task could not be run (for example an object it needs was deleted)."""


class GraphError(ScalerError, ValueError):
    """A task graph is invalid: it has a cycle or names a key it does not define."""


class MissingProfilingInfoError(ScalerError, RuntimeError):
    """Profiling information was asked for before the task finished, or was not recorded."""
