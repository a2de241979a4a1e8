"""Logging set-up through logging.config dictionaries."""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Sequence
from typing import Any

from scaler import defaults

LOG_FORMAT = "[%(levelname)s]%(asctime)s: %(name)s: %(message)s"


def logging_config(
    paths: Sequence[str] = defaults.LOGGING_PATHS, level: str = defaults.LOGGING_LEVEL
) -> dict[str, Any]:
    """A logging.config dictionary writing to each of ``paths`` (/dev/stdout, /dev/stderr or files)."""
    handlers: dict[str, Any] = {}
    for index, path in enumerate(paths):
        if path in ("/dev/stdout", "-"):
            handler: dict[str, Any] = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
        elif path == "/dev/stderr":
            handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
        else:
            handler = {"class": "logging.FileHandler", "filename": path}
        handler["formatter"] = "plain"
        handlers[f"handler{index}"] = handler
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT, "datefmt": "%Y-%m-%d %H:%M:%S%z"}},
        "handlers": handlers,
        "root": {"level": level.upper(), "handlers": list(handlers)},
    }


def setup_logging(
    paths: Sequence[str] = defaults.LOGGING_PATHS,
    level: str = defaults.LOGGING_LEVEL,
    config_file: str | None = None,
) -> None:
    """Configure logging from a config file (ini format for logging.config.fileConfig) or from paths."""
    if config_file:
        logging.config.fileConfig(config_file, disable_existing_loggers=False)
        return
    logging.config.dictConfig(logging_config(paths, level))
