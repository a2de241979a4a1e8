"""Options shared by the command lines."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click

from scaler.security import Security
from scaler.utility.logging_setup import LoggingSettings, check_logging, setup_logging
from scaler.version import __version__


def version_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """--version: print ``PROGRAM, version X`` (X from scaler.version, the single version source) and exit."""
    return click.version_option(__version__, "--version", message="%(prog)s, version %(version)s")(function)


def apply_logging(settings: Mapping[str, Any]) -> LoggingSettings:
    """Check the logging settings and configure logging from them (one clear line on a mistake); return them
    for child processes to do the same."""
    logging_settings: LoggingSettings = (
        tuple(settings["logging_paths"]),
        settings["logging_level"],
        settings["logging_config_file"],
    )
    try:
        check_logging(*logging_settings)
        setup_logging(*logging_settings)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    return logging_settings


def client_security(settings: Mapping[str, Any]) -> Security | None:
    """The CURVE keys of a command connecting to a scheduler (its ``curve_*`` settings), checked: one clear line
    if a key file is missing or bad; None when security is off."""
    try:
        security = Security.from_settings(settings)
        if security is not None:
            security.check_client()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    return security
