"""Click commands built from scaler.settings: options, environment variables, -c/--config and --show-config."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from scaler import settings as settings_module
from scaler.cli.common import version_option
from scaler.settings import CONFIG_FILE_ENVIRONMENT_VARIABLE, Setting, toml_value

_CONFIG_FILE_KEY = "scaler_config_file"


def _parameter(section: str, item: Setting) -> click.Parameter:
    envvar = item.environment_variable(section)
    if item.argument:
        return click.Argument([item.name], type=item.type, required=False, envvar=envvar, metavar=item.metavar)
    if item.off_flags:
        long_off, *short_off = item.off_flags
        declarations = [f"{item.long_option}/{long_off}"]
        declarations += [f"{on}/{off}" for on, off in zip(item.short_flags, short_off, strict=True)]
        return click.Option(
            declarations, default=item.default, envvar=envvar, show_envvar=True, help=item.help, show_default=True
        )
    return click.Option(
        [item.long_option, *item.short_flags, item.name],
        type=None if item.is_flag else item.type,
        default=item.default,
        is_flag=item.is_flag,
        multiple=item.multiple,
        envvar=envvar,
        show_envvar=True,
        help=item.help,
        show_default=item.default is not None and item.default != "",
    )


def _load_config_file(section: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    def load(ctx: click.Context, param: click.Parameter, path: str | None) -> str | None:
        if path is None:
            return None
        try:
            sections = settings_module.read_config_file(path)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
        ctx.default_map = {**(ctx.default_map or {}), **sections.get(section, {})}
        ctx.meta[_CONFIG_FILE_KEY] = path
        return path

    return load


def _source_text(ctx: click.Context, section: str, item: Setting) -> str:
    source = ctx.get_parameter_source(item.name)
    if source is ParameterSource.COMMANDLINE:
        return "command line"
    if source is ParameterSource.ENVIRONMENT:
        return f"environment {item.environment_variable(section)}"
    if source is ParameterSource.DEFAULT_MAP:
        return f"config file {ctx.meta.get(_CONFIG_FILE_KEY)}"
    return "default"


def show_config_text(ctx: click.Context, section: str, values: dict[str, Any]) -> str:
    """The settings in force as a TOML section, each line saying where its value came from."""
    lines = [f"[{section}]"]
    for item in settings_module.SECTIONS[section]:
        value = values.get(item.name)
        source = _source_text(ctx, section, item)
        if value is None:
            lines.append(f"# {item.name} is not set  ({source})")
        else:
            lines.append(f"{item.name} = {toml_value(value)}  # {source}")
    return "\n".join(lines)


def settings_command(section: str) -> Callable[[Callable[..., Any]], click.Command]:
    """Make ``function(**settings)`` a click command taking every setting of ``section`` as an option or
    argument, plus ``-c/--config``, ``--show-config``, ``--version`` and ``-h/--help``. The function's
    docstring is the command's help. A missing address argument is an error unless ``--show-config`` is given.
    """

    def decorate(function: Callable[..., Any]) -> click.Command:
        items = settings_module.SECTIONS[section]

        @functools.wraps(function)
        def callback(config: str | None, show_config: bool, **values: Any) -> Any:
            ctx = click.get_current_context()
            if show_config:
                click.echo(show_config_text(ctx, section, values))
                ctx.exit(0)
            for item in items:
                if item.argument and values.get(item.name) is None:
                    raise click.UsageError(f"Missing argument '{item.metavar or item.name.upper()}'.")
            return function(**values)

        params: list[click.Parameter] = [_parameter(section, item) for item in items]
        params.append(
            click.Option(
                ["--config", "-c"],
                type=click.Path(dir_okay=False),
                is_eager=True,
                envvar=CONFIG_FILE_ENVIRONMENT_VARIABLE,
                show_envvar=True,
                callback=_load_config_file(section),
                help=f"a TOML file whose [{section}] section gives settings (keys named as the long options, "
                "with _); the command line and the environment take precedence",
            )
        )
        params.append(
            click.Option(
                ["--show-config"],
                is_flag=True,
                help="print the settings in force and where each came from, then exit",
            )
        )
        command = click.Command(
            name=function.__name__,
            callback=callback,
            params=params,
            help=function.__doc__,
            context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
        )
        version_option(command)
        return command

    return decorate
