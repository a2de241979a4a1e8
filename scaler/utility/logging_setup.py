"""Logging set-up through logging.config dictionaries, and the checks that turn a mistake into one clear line."""

from __future__ import annotations

import configparser
import json
import logging
import logging.config
import os
import sys
from collections.abc import Sequence
from typing import Any

from scaler import defaults

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# (paths, level, config file): what a process needs to set its logging up as its parent's.
LoggingSettings = tuple[Sequence[str], str, "str | None"]

_STANDARD_STREAMS = ("/dev/stdout", "/dev/stderr", "-")
_DICTIONARY_SUFFIXES = (".json", ".toml")

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


def read_dictionary_config(config_file: str) -> dict[str, Any]:
    """The logging.config dictionary of a .json or .toml file; ValueError naming the file if it is not one."""
    try:
        with open(config_file, "rb") as file:
            if config_file.endswith(".json"):
                document = json.load(file)
            else:
                document = tomllib.load(file)
    except OSError as exc:
        raise ValueError(f"cannot read the logging configuration {config_file}: {exc.strerror}") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"the logging configuration {config_file} cannot be parsed: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != 1:
        raise ValueError(
            f"the logging configuration {config_file} is not a logging.config dictionary (it needs version = 1)"
        )
    # scaler's modules create their loggers at import, before the file is read: keep them unless it says otherwise
    document.setdefault("disable_existing_loggers", False)
    return document


def check_logging(paths: Sequence[str], level: str, config_file: str | None) -> None:
    """ValueError with one clear line if logging cannot be set up from these settings."""
    if config_file:
        if not os.path.isfile(config_file):
            raise ValueError(f"no logging configuration file {config_file}")
        if config_file.endswith(_DICTIONARY_SUFFIXES):
            read_dictionary_config(config_file)
            return
        parser = configparser.ConfigParser()
        try:
            parser.read(config_file)
        except configparser.Error as exc:
            raise ValueError(f"the logging configuration {config_file} cannot be parsed: {exc.message}") from None
        if not parser.has_section("loggers"):
            raise ValueError(
                f"the logging configuration {config_file} is neither a .json or .toml logging.config dictionary "
                "nor a fileConfig .ini file (it has no [loggers] section)"
            )
        return
    if not isinstance(logging.getLevelName(level.upper()), int):
        raise ValueError(f"no logging level {level!r}")
    for path in paths:
        if path in _STANDARD_STREAMS:
            continue
        directory = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise ValueError(f"cannot log to {path}: it is a directory")
        if not os.path.isdir(directory):
            raise ValueError(f"cannot log to {path}: no directory {directory}")
        if not os.access(path if os.path.exists(path) else directory, os.W_OK):
            raise ValueError(f"cannot log to {path}: permission denied")


def setup_logging(
    paths: Sequence[str] = defaults.LOGGING_PATHS,
    level: str = defaults.LOGGING_LEVEL,
    config_file: str | None = None,
) -> None:
    """Configure logging from a config file or from paths and level.

    A ``.json`` or ``.toml`` config file holds a logging.config dictionary; any other is in the ini format of
    logging.config.fileConfig. ValueError with one clear line if it cannot be done.
    """
    try:
        if config_file and config_file.endswith(_DICTIONARY_SUFFIXES):
            logging.config.dictConfig(read_dictionary_config(config_file))
        elif config_file:
            logging.config.fileConfig(config_file, disable_existing_loggers=False)
        else:
            logging.config.dictConfig(logging_config(paths, level))
    except (ValueError, TypeError, KeyError, AttributeError, ImportError, OSError, configparser.Error) as exc:
        source = f"the logging configuration {config_file}" if config_file else "the logging settings"
        cause = exc.__cause__ or exc
        raise ValueError(f"cannot set up logging from {source}: {cause}") from None
