"""ServiceProcess: a scaler service (a scheduler, a pool of workers) as a process a program starts and stops."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from scaler import defaults
from scaler.io.address import validate_address
from scaler.utility.logging_setup import LoggingSettings, check_logging, setup_logging
from scaler.utility.process_guard import die_with_parent, reset_inherited_signals
from scaler.worker.processor_handle import process_context

if TYPE_CHECKING:
    from multiprocessing import Process as _ProcessBase
else:  # fork where the platform has it, as every other scaler process
    _ProcessBase = process_context().Process

logger = logging.getLogger(__name__)

_Service = TypeVar("_Service", bound="ServiceProcess")


def address_text(address: Any) -> str:
    """A ZeroMQ address from a string, or from an object with ``to_address()`` (Scaler 1.x's ZMQConfig)."""
    if isinstance(address, str):
        return validate_address(address)
    to_address = getattr(address, "to_address", None)
    if callable(to_address):
        return validate_address(to_address())
    raise TypeError(f"an address must be a string such as 'tcp://127.0.0.1:8516', not {type(address).__name__}")


def logging_settings(paths: Sequence[str] | None, level: str | None, config_file: str | None) -> LoggingSettings | None:
    """The logging a service process sets up, or None to keep what it inherits when no option is given.

    ValueError with one clear line if logging cannot be set up from them (a missing directory, a bad file).
    """
    if paths is None and level is None and config_file is None:
        return None
    settings = (
        tuple(paths) if paths is not None else defaults.LOGGING_PATHS,
        level or defaults.LOGGING_LEVEL,
        config_file,
    )
    check_logging(*settings)
    return settings


def warn_ignored(owner: str, ignored: dict[str, Any]) -> None:
    """Log the keyword options another Scaler version takes and this one has no use for."""
    if ignored:
        logger.warning("%s: options not used by this version of scaler: %s", owner, ", ".join(sorted(ignored)))


class ServiceProcess(_ProcessBase):
    """A process running one scaler service until SIGINT or SIGTERM.

    It is a ``multiprocessing.Process``: ``start()``, ``terminate()``, ``join()``, ``is_alive()``,
    ``pid`` and ``exitcode`` work as usual, and ``run()`` serves in the calling process instead.
    ``shutdown()`` stops the process and waits for it; as a context manager it starts on entry
    (unless already started) and shuts down on exit. A started service ends with its parent.
    """

    def __init__(self, name: str, logging: LoggingSettings | None) -> None:
        super().__init__(name=name, daemon=False)  # not a daemon: a service starts processes of its own
        self._creator_pid = os.getpid()
        self._logging = logging

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM (in the started process, or in this one when called directly)."""
        if os.getpid() != self._creator_pid:  # the started process, forked from its creator
            reset_inherited_signals()
            die_with_parent(signal.SIGTERM)
        if self._logging is not None:
            setup_logging(*self._logging)
        self._serve()

    def _serve(self) -> None:
        raise NotImplementedError

    def shutdown(self, timeout_seconds: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``timeout_seconds``) and wait until it has exited."""
        if self.pid is None:  # never started
            return
        if self.exitcode is None:
            self.terminate()
        self.join(timeout_seconds)
        if self.exitcode is None:
            logger.warning("%s did not stop within %g s of SIGTERM; killing it", self.name, timeout_seconds)
            self.kill()
            self.join(5)

    def __enter__(self: _Service) -> _Service:
        if self.pid is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
