"""Exceptions raised by scaler to its users.

Each class also derives from the built-in exception the original Scaler 1.x raised in the same
situation, so ``except TimeoutError`` or ``except ValueError`` written for it still catches ours.
"""

from __future__ import annotations

import graphlib


class ScalerError(Exception):
    """Base class of every error scaler raises itself."""


class SchedulerLostError(ScalerError, ConnectionError, TimeoutError):
    """The scheduler did not answer within the client's timeout, or could not be reached.

    Raised by ``Client(...)`` when no scheduler answers, and set on every pending future when the
    scheduler goes silent. It is a ``TimeoutError`` (what Scaler 1.x raised) and a ``ConnectionError``.
    """


class ClientClosedError(ScalerError, RuntimeError):
    """The client was disconnected or shut down and cannot take more work."""


class ShutdownRefusedError(ScalerError, PermissionError, ValueError):
    """The scheduler runs protected and refused to shut the cluster down (a ``ValueError`` as in Scaler 1.x)."""


class SerializationError(ScalerError, TypeError):
    """A function, argument or object could not be serialized or deserialized."""


class WorkerDiedError(ScalerError):
    """The task's workers died too many times while running it."""


class ProcessorDiedError(ScalerError):
    """The process running the task died (for example it called os._exit or was killed)."""


class TaskFailedError(ScalerError):
    """The task could not be run (for example an object it needs was deleted)."""


class MissingObjects(TaskFailedError):
    """The task needs an object (or function) that nobody holds any more: it was deleted, or its client cleared."""


class GraphError(ScalerError, ValueError):
    """A task graph is invalid: it has a cycle or names a key it does not define."""


class GraphCycleError(GraphError, graphlib.CycleError):
    """A task graph has a cycle (a ``graphlib.CycleError``, as in Scaler 1.x)."""


class GraphKeyError(GraphError, KeyError):
    """A task graph names a key it does not define, or ``keys`` repeats a key (a ``KeyError``, as in Scaler 1.x)."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class MissingProfilingInfoError(ScalerError, RuntimeError, ValueError):
    """Profiling information was asked for before the task finished, or was not recorded (a ``ValueError``)."""


class StartError(ScalerError, RuntimeError):
    """A scheduler, worker or dashboard could not start (its port is taken, its logging cannot be set up...)."""


class VersionMismatchError(ScalerError, ConnectionError):
    """A client, worker or scheduler of another scaler version was refused; the message names both versions."""
