"""Running a scheduler as the main work of a process."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

import zmq

from scaler.io.event_loop import run_on_loop
from scaler.scheduler.config import SchedulerConfig
from scaler.scheduler.scheduler import Scheduler

logger = logging.getLogger(__name__)


async def serve(
    config: SchedulerConfig, context: zmq.Context, on_listening: Callable[[], None] | None = None
) -> None:
    """Serve as a scheduler until SIGINT or SIGTERM, or until a client shuts the cluster down.

    ``on_listening`` is called once the scheduler's sockets are bound.
    """
    scheduler = Scheduler(config, context)
    if on_listening is not None:
        on_listening()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, scheduler.stop)
    try:
        await scheduler.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def run_scheduler(config: SchedulerConfig, on_listening: Callable[[], None] | None = None) -> None:
    """Run a scheduler in this process until it stops."""
    context = zmq.Context(io_threads=config.io_threads)
    try:
        run_on_loop(serve(config, context, on_listening), config.event_loop)
    finally:
        context.destroy(linger=0)
