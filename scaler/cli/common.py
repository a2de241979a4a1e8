"""Options shared by the command lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from scaler import defaults
from scaler.io.address import validate_address
from scaler.utility.logging_setup import setup_logging
from scaler.version import __version__


def version_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """--version: print ``PROGRAM, version X`` (X from scaler.version, the single version source) and exit."""
    return click.version_option(__version__, "--version", message="%(prog)s, version %(version)s")(function)


def address_argument(function: Callable[..., Any]) -> Callable[..., Any]:
    """The ADDRESS argument, checked as a ZeroMQ address."""

    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        try:
            return validate_address(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return click.argument("address", callback=check)(function)


def logging_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--logging-paths, --logging-level and --logging-config-file."""
    function = click.option(
        "--logging-config-file",
        "-lc",
        default=None,
        type=click.Path(exists=True, dir_okay=False),
        help="a logging configuration file (logging.config.fileConfig format); overrides the two options above",
    )(function)
    function = click.option(
        "--logging-level",
        "-ll",
        default=defaults.LOGGING_LEVEL,
        show_default=True,
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
        help="lowest level logged",
    )(function)
    function = click.option(
        "--logging-paths",
        "-lp",
        multiple=True,
        default=defaults.LOGGING_PATHS,
        show_default=True,
        help="where logs go: /dev/stdout, /dev/stderr or a file; repeat for several",
    )(function)
    return function


def apply_logging(
    paths: tuple[str, ...], level: str, config_file: str | None
) -> tuple[tuple[str, ...], str, str | None]:
    """Configure logging from the options and return them, for child processes to do the same."""
    setup_logging(paths, level, config_file)
    return paths, level, config_file
