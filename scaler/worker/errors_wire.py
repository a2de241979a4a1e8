"""How a task's exception travels from a processor to the client, traceback included."""

from __future__ import annotations

import traceback

import cloudpickle
from tblib import pickling_support

from scaler.errors import ScalerError


class RemoteTaskError(ScalerError):
    """Stands for a task's exception that could not itself be pickled; carries its text."""


def dump_exception(exc: BaseException) -> bytes:
    """Pickle an exception together with its traceback."""
    try:
        pickling_support.install(exc)
        return cloudpickle.dumps(exc, protocol=5)
    except Exception:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cloudpickle.dumps(RemoteTaskError(f"{type(exc).__name__}: {exc}\n\nremote traceback:\n{text}"))


def load_exception(payload: bytes) -> BaseException:
    """Unpickle an exception made by dump_exception."""
    try:
        exc = cloudpickle.loads(payload)
    except Exception as load_error:
        return RemoteTaskError(f"the task raised an exception that could not be unpickled here: {load_error!r}")
    if not isinstance(exc, BaseException):
        return RemoteTaskError(f"the task's error payload is not an exception: {exc!r}")
    return exc
