"""The errors under the module path scripts written for Scaler 1.x import them from; see scaler.errors."""

from scaler.errors import MissingObjects, ProcessorDiedError, TaskFailedError, WorkerDiedError

__all__ = ["MissingObjects", "ProcessorDiedError", "TaskFailedError", "WorkerDiedError"]
