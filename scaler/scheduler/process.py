"""Running a scheduler as the main work of a process."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

import zmq

from scaler import defaults
from scaler.io.event_loop import run_on_loop
from scaler.scheduler.config import SchedulerConfig
from scaler.scheduler.scheduler import Scheduler

logger = logging.getLogger(__name__)


async def serve(config: SchedulerConfig, context: zmq.Context, on_listening: Callable[[], None] | None = None) -> None:
    """Serve as a scheduler until SIGINT or SIGTERM, or until a client shuts the cluster down.

    ``on_listening`` is called once the scheduler's sockets are bound.
    """
    scheduler = Scheduler(config, context)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # before anyone hears it listens: a stop request is never lost
        loop.add_signal_handler(signum, scheduler.stop, f"received {signal.Signals(signum).name}")
    reloads = scheduler.authenticator is not None  # with CURVE security on, SIGHUP reads the allow-lists again
    if reloads:
        loop.add_signal_handler(signal.SIGHUP, scheduler.reload_security)
    if on_listening is not None:
        on_listening()
    try:
        await scheduler.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if reloads:
            loop.remove_signal_handler(signal.SIGHUP)


def raise_file_limit() -> None:
    """Raise this process's open-file limit to its hard limit: every peer holds a descriptor."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return
        logger.info("open-file limit raised from %d to %s", soft, "unlimited" if hard < 0 else hard)


def run_scheduler(config: SchedulerConfig, on_listening: Callable[[], None] | None = None) -> None:
    """Run a scheduler in this process until it stops."""
    if config.object_retention_seconds != defaults.SCHEDULER_OBJECT_RETENTION_SECONDS:
        logger.warning(
            "object_retention_seconds=%g has no effect: an object lives until its client deletes it, clears "
            "or leaves, and is then deleted at once (the option is accepted for compatibility with Scaler 1.x)",
            config.object_retention_seconds,
        )
    raise_file_limit()
    context = zmq.Context(io_threads=config.io_threads)
    try:
        run_on_loop(serve(config, context, on_listening), config.event_loop)
    finally:
        context.destroy(linger=0)
