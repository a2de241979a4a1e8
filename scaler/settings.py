"""Every setting of scaler's commands, defined once.

A setting has one name, used everywhere: the long command-line option (``client_timeout_seconds`` is
``--client-timeout-seconds``), the key in a configuration file's section (``[scheduler]``, ``[worker]``,
``[top]``, ``[ui]``), the environment variable (``SCALER_SCHEDULER_CLIENT_TIMEOUT_SECONDS``), the keyword of
``SchedulerClusterCombo`` and the field of ``SchedulerConfig`` / ``WorkerConfig``. The command lines
(scaler.cli), the combo, the configuration file reader below and the settings reference of the documentation
are all built from the tables in this module.

Precedence: command line, then environment, then configuration file, then the default here.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
from collections.abc import Mapping
from typing import Any

import click

from scaler import defaults
from scaler.io.address import validate_address
from scaler.io.event_loop import EVENT_LOOPS
from scaler.top.figures import DEFAULT_SORT, SORT_KEYS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SECTION_NAMES = ("scheduler", "worker", "top", "ui")
ENVIRONMENT_PREFIX = "SCALER"
CONFIG_FILE_ENVIRONMENT_VARIABLE = "SCALER_CONFIG"

LOGGING_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class AddressType(click.ParamType):
    """A ZeroMQ address scaler can use (tcp://HOST:PORT, ipc://PATH)."""

    name = "address"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return validate_address(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


ADDRESS = AddressType()
_POSITIVE = click.FloatRange(min=0, min_open=True)
_NOT_NEGATIVE = click.FloatRange(min=0)


def default_number_of_workers() -> int:
    """One worker per core, leaving one core for the rest of the machine."""
    return max(1, multiprocessing.cpu_count() - 1)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting: its name, meaning, default and how the command line spells it."""

    name: str
    help: str
    default: Any = None
    type: Any = str  # a click type (or a Python type click understands) that checks and converts a value
    short_flags: tuple[str, ...] = ()  # other spellings on the command line, e.g. "-ct"
    off_flags: tuple[str, ...] = ()  # for an on/off pair: the long and short flags that turn it off
    is_flag: bool = False  # a flag without value that turns the setting on
    multiple: bool = False  # the option may be repeated; the value is a tuple (a list in a file)
    argument: bool = False  # given as a positional argument (an address) rather than an option
    metavar: str | None = None

    @property
    def long_option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def environment_variable(self, section: str) -> str:
        """The environment variable that sets this setting for the command of ``section``."""
        return f"{ENVIRONMENT_PREFIX}_{section.upper()}_{self.name.upper()}"

    def click_type(self) -> click.ParamType:
        return click.types.convert_type(self.type)

    def convert(self, value: Any) -> Any:
        """``value`` (from a file or a program) checked and converted as the command line would; ValueError if bad."""
        if value is None:
            return None
        kind = click.BOOL if self.is_flag or self.off_flags else self.click_type()
        try:
            if self.multiple:
                items = [value] if isinstance(value, str) else list(value)
                return tuple(kind.convert(item, None, None) for item in items)
            return kind.convert(value, None, None)
        except click.BadParameter as exc:
            raise ValueError(f"{self.name}: {exc.message}") from None

    def default_text(self) -> str:
        """The default as the reference shows it."""
        if self.name == "num_of_workers":
            return "the number of cores but one"
        if self.default is None:
            return "none"
        return toml_value(self.default)


def _logging_settings() -> tuple[Setting, ...]:
    return (
        Setting(
            "logging_paths",
            "where log lines go: /dev/stdout, /dev/stderr or a file; repeat the option for several",
            defaults.LOGGING_PATHS,
            short_flags=("-lp",),
            multiple=True,
        ),
        Setting(
            "logging_level",
            "lowest level logged",
            defaults.LOGGING_LEVEL,
            click.Choice(LOGGING_LEVELS, case_sensitive=False),
            short_flags=("-ll",),
        ),
        Setting(
            "logging_config_file",
            "a logging configuration file, used instead of the two settings above: a logging.config dictionary "
            "as .json or .toml, or the .ini format of logging.config.fileConfig",
            None,
            click.Path(dir_okay=False),
            short_flags=("-lc",),
        ),
    )


_EVENT_LOOP = Setting(
    "event_loop",
    "event loop: builtin (asyncio) or uvloop",
    defaults.EVENT_LOOP,
    click.Choice(EVENT_LOOPS),
    short_flags=("-e", "-el"),
)
_LOGGING = _logging_settings()


_KEY_FILE = click.Path(exists=True, dir_okay=False)


def _curve_secret_key(who: str) -> Setting:
    return Setting(
        "curve_secret_key",
        f"CURVE security (docs/security.md): {who} own key pair, NAME.key_secret as written by scaler_keygen",
        None,
        _KEY_FILE,
    )


def _curve_server_key() -> Setting:
    return Setting(
        "curve_server_key",
        "CURVE security (docs/security.md): the scheduler's public key, SCHEDULER.key as written by scaler_keygen; "
        "with it, the connection is encrypted and the scheduler checks this side's key (curve_secret_key)",
        None,
        _KEY_FILE,
    )


_CURVE_CLIENT_SIDE = (_curve_secret_key("this side's"), _curve_server_key())


def _io_threads(default: int) -> Setting:
    return Setting("io_threads", "ZeroMQ I/O threads", default, click.IntRange(min=1), short_flags=("-it",))


SCHEDULER_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "address", "the address to listen on, e.g. tcp://0.0.0.0:8516", None, ADDRESS, argument=True, metavar="ADDRESS"
    ),
    Setting(
        "client_timeout_seconds",
        "seconds of silence after which a client is dropped and its work cancelled",
        defaults.SCHEDULER_CLIENT_TIMEOUT_SECONDS,
        _POSITIVE,
        short_flags=("-ct",),
    ),
    Setting(
        "worker_timeout_seconds",
        "seconds of silence after which a worker is declared dead and its tasks run elsewhere",
        defaults.SCHEDULER_WORKER_TIMEOUT_SECONDS,
        _POSITIVE,
        short_flags=("-wt",),
    ),
    Setting(
        "worker_answer_timeout_seconds",
        "seconds a worker may leave a withdrawal or a cancel unanswered before it is treated as dead and its "
        "tasks run elsewhere, even if it heartbeats",
        defaults.SCHEDULER_WORKER_ANSWER_TIMEOUT_SECONDS,
        _POSITIVE,
        short_flags=("-wat",),
    ),
    Setting(
        "object_retention_seconds",
        "accepted for compatibility with Scaler 1.x, no effect: an object lives until its client deletes it, "
        "clears or leaves, and is deleted at once then (a warning is logged if this is set)",
        defaults.SCHEDULER_OBJECT_RETENTION_SECONDS,
        _NOT_NEGATIVE,
        short_flags=("-ot", "-ors"),
    ),
    Setting(
        "load_balance_seconds",
        "seconds between two load-balancing passes",
        defaults.SCHEDULER_LOAD_BALANCE_SECONDS,
        _POSITIVE,
        short_flags=("-ls",),
    ),
    Setting(
        "load_balance_trigger_times",
        "passes in a row that must see an idle worker before tasks move",
        defaults.SCHEDULER_LOAD_BALANCE_TRIGGER_TIMES,
        click.IntRange(min=1),
        short_flags=("-lbt",),
    ),
    Setting(
        "per_worker_queue_size",
        "largest number of tasks assigned to one worker at once",
        defaults.SCHEDULER_PER_WORKER_QUEUE_SIZE,
        click.IntRange(min=1),
        short_flags=("-qs",),
    ),
    Setting(
        "max_number_of_tasks_waiting",
        "largest number of tasks waiting in the scheduler (-1: no limit); more fail at once",
        defaults.SCHEDULER_MAX_NUMBER_OF_TASKS_WAITING,
        click.IntRange(min=-1),
        short_flags=("-mt",),
    ),
    Setting(
        "allowed_failures",
        "worker deaths a task survives before it fails with WorkerDiedError",
        defaults.SCHEDULER_ALLOWED_FAILURES,
        click.IntRange(min=0),
        short_flags=("-af",),
    ),
    _io_threads(defaults.SCHEDULER_IO_THREADS),
    _EVENT_LOOP,
    Setting(
        "protected",
        "whether clients are refused when they ask to shut the cluster down",
        defaults.SCHEDULER_PROTECTED,
        short_flags=("-p",),
        off_flags=("--unprotected", "-up"),
    ),
    Setting(
        "monitor_address",
        "address of the status socket (default: the scheduler's port + 1)",
        None,
        ADDRESS,
        short_flags=("-ma",),
    ),
    Setting(
        "status_interval_seconds",
        "seconds between two status messages on the monitor address",
        defaults.SCHEDULER_STATUS_INTERVAL_SECONDS,
        _POSITIVE,
        short_flags=("-si",),
    ),
    _curve_secret_key("the scheduler's"),
    Setting(
        "curve_allowed_clients",
        "CURVE security: a directory of public keys (every NAME.key in it) or one key file: who may connect as a "
        "client and read the monitor address (read again on SIGHUP)",
        None,
        click.Path(exists=True),
    ),
    Setting(
        "curve_allowed_workers",
        "CURVE security: a directory of public keys or one key file: who may connect as a worker (a worker's key "
        "may also act as a client, for nested tasks; read again on SIGHUP)",
        None,
        click.Path(exists=True),
    ),
    Setting(
        "dashboard_port",
        "also serve the web dashboard (scaler_ui) on this port of the scheduler's host "
        '(needs pip install "scaler[dashboard]")',
        None,
        click.IntRange(0, 65535),
        short_flags=("-dp",),
    ),
    *_LOGGING,
)

WORKER_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "scheduler_address",
        "the scheduler's address, e.g. tcp://HOST:8516",
        None,
        ADDRESS,
        argument=True,
        metavar="ADDRESS",
    ),
    Setting(
        "num_of_workers",
        "number of workers, each running one task at a time (default: one per core but one, "
        f"{default_number_of_workers()} on this machine)",
        None,
        click.IntRange(min=1),
        short_flags=("-n",),
    ),
    Setting("worker_names", "comma-separated names, one per worker", "", short_flags=("-wn",)),
    Setting(
        "heartbeat_interval_seconds",
        "seconds between two heartbeats",
        defaults.WORKER_HEARTBEAT_INTERVAL_SECONDS,
        _POSITIVE,
        short_flags=("-hi", "--heartbeat-interval"),
    ),
    Setting(
        "task_timeout_seconds",
        "seconds a task may run before it is stopped with TimeoutError (0: no limit)",
        defaults.WORKER_TASK_TIMEOUT_SECONDS,
        _NOT_NEGATIVE,
        short_flags=("-tt", "-tts"),
    ),
    Setting(
        "death_timeout_seconds",
        "seconds without the scheduler after which a worker exits (with status 1)",
        defaults.WORKER_DEATH_TIMEOUT_SECONDS,
        _POSITIVE,
        short_flags=("-ds",),
    ),
    Setting(
        "garbage_collect_interval_seconds",
        "seconds between two garbage collections in an idle processor",
        defaults.WORKER_GARBAGE_COLLECT_INTERVAL_SECONDS,
        _POSITIVE,
        short_flags=("-gc",),
    ),
    Setting(
        "trim_memory_threshold_bytes",
        "resident bytes above which an idle processor gives memory back",
        defaults.WORKER_TRIM_MEMORY_THRESHOLD_BYTES,
        click.IntRange(min=0),
        short_flags=("-tm",),
    ),
    Setting(
        "per_worker_queue_size",
        "largest number of tasks queued on each worker (0: the scheduler's setting)",
        0,
        click.IntRange(min=0),
        short_flags=("-qs",),
    ),
    Setting(
        "prefetch_milliseconds",
        "milliseconds of work handed to a processor at once (short tasks go in batches)",
        defaults.WORKER_PROCESSOR_PREFETCH_MILLISECONDS,
        _NOT_NEGATIVE,
        short_flags=("-pm",),
    ),
    Setting(
        "prefetch_max",
        "largest number of tasks handed to a processor at once",
        defaults.WORKER_PROCESSOR_PREFETCH_MAX,
        click.IntRange(min=1),
        short_flags=("-px",),
    ),
    Setting(
        "result_flush_seconds",
        "seconds a processor keeps finished results before sending them on",
        defaults.WORKER_RESULT_FLUSH_SECONDS,
        _NOT_NEGATIVE,
        short_flags=("-rf",),
    ),
    _EVENT_LOOP,
    _io_threads(defaults.WORKER_IO_THREADS),
    Setting(
        "hard_processor_suspend",
        "accepted for compatibility with Scaler 1.x, no effect: a processor waiting on nested tasks is already "
        "idle and lends its core to another processor; stopped with SIGSTOP, its client could neither heartbeat "
        "nor receive the results it waits for (a warning is logged if this is set)",
        defaults.WORKER_HARD_PROCESSOR_SUSPEND,
        short_flags=("-hps",),
        is_flag=True,
    ),
    Setting(
        "log_hub_address",
        "accepted for compatibility with Scaler 1.x and ignored: workers log where logging_paths says",
        None,
        short_flags=("-la",),
    ),
    *_CURVE_CLIENT_SIDE,
    *_LOGGING,
)

_MONITOR_ADDRESS_ARGUMENT = Setting(
    "monitor_address",
    "the scheduler's monitor address: its port + 1 unless set with --monitor-address",
    None,
    ADDRESS,
    argument=True,
    metavar="MONITOR_ADDRESS",
)

TOP_SETTINGS: tuple[Setting, ...] = (
    _MONITOR_ADDRESS_ARGUMENT,
    Setting("once", "print one status as plain text and exit (for pipes and scripts)", False, is_flag=True),
    Setting(
        "interval_seconds",
        "redraw the screen every this many seconds",
        1.0,
        click.FloatRange(min=0.05),
        short_flags=("-i", "--interval"),
    ),
    Setting(
        "timeout_seconds",
        "with --once, give up when no status arrives for this long; full screen, say so after this long "
        "(and where the monitor probably is) and keep waiting",
        10.0,
        _NOT_NEGATIVE,
        short_flags=("-t", "--timeout"),
    ),
    Setting(
        "sort",
        "the worker column to sort by (full screen: keys c cpu, m rss, u queued, r running, n name)",
        DEFAULT_SORT,
        click.Choice(SORT_KEYS),
        short_flags=("-s",),
    ),
    *_CURVE_CLIENT_SIDE,
)

UI_SETTINGS: tuple[Setting, ...] = (
    _MONITOR_ADDRESS_ARGUMENT,
    Setting("host", "interface the page is served on (0.0.0.0: every interface)", "127.0.0.1", short_flags=("-H",)),
    Setting("port", "TCP port of the page (0: any free port)", 8787, click.IntRange(0, 65535), short_flags=("-P",)),
    *_CURVE_CLIENT_SIDE,
    *_LOGGING,
)

SECTIONS: dict[str, tuple[Setting, ...]] = {
    "scheduler": SCHEDULER_SETTINGS,
    "worker": WORKER_SETTINGS,
    "top": TOP_SETTINGS,
    "ui": UI_SETTINGS,
}

COMMANDS = {"scheduler": "scaler_scheduler", "worker": "scaler_worker", "top": "scaler_top", "ui": "scaler_ui"}


def setting(section: str, name: str) -> Setting:
    """The setting ``name`` of ``section``; KeyError if there is none."""
    for candidate in SECTIONS[section]:
        if candidate.name == name:
            return candidate
    raise KeyError(f"[{section}] has no setting {name!r}")


def names(section: str) -> list[str]:
    return [s.name for s in SECTIONS[section]]


# ------------------------------------------------------------------ configuration files


def read_config_file(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The sections of a TOML configuration file, each checked: ValueError naming the file and what is wrong."""
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise ValueError(f"cannot read the configuration file {os.fspath(path)}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"the configuration file {os.fspath(path)} is not valid TOML: {exc}") from None
    sections: dict[str, dict[str, Any]] = {}
    for section, values in document.items():
        if section not in SECTIONS:
            raise ValueError(
                f"{os.fspath(path)}: no section [{section}] in scaler's settings; the sections are "
                + ", ".join(f"[{name}]" for name in SECTION_NAMES)
            )
        if not isinstance(values, dict):
            raise ValueError(f"{os.fspath(path)}: {section} must be a section ([{section}]), not a value")
        sections[section] = {key: _checked(path, section, key, value) for key, value in values.items()}
    return sections


def _checked(path: str | os.PathLike[str], section: str, key: str, value: Any) -> Any:
    known = names(section)
    if key not in known:
        hint = f"; write {key.replace('-', '_')}" if key.replace("-", "_") in known else ""
        raise ValueError(f"{os.fspath(path)}: [{section}] has no setting {key!r}{hint} (settings: {', '.join(known)})")
    try:
        return setting(section, key).convert(value)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)}: [{section}] {exc}") from None


def resolve(
    section: str, given: Mapping[str, Any], config_file: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Every setting of ``section``: ``given`` (None means not given), else the file's, else the default.

    Values are checked as the command line checks them; ValueError names the setting and what is wrong.
    """
    from_file = read_config_file(config_file).get(section, {}) if config_file is not None else {}
    known = names(section)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"no {section} setting named {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for item in SECTIONS[section]:
        value = given.get(item.name)
        if value is not None:
            values[item.name] = item.convert(value)
        elif item.name in from_file:
            values[item.name] = from_file[item.name]
        else:
            values[item.name] = item.default
    return values


# ------------------------------------------------------------------ text


def toml_value(value: Any) -> str:
    """``value`` written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def reference_markdown() -> str:
    """The settings reference of the documentation: one table per section, built from the tables above."""
    lines = [
        "Each setting can be given on the command line, in the environment or in a configuration file "
        "(`-c FILE.toml`, or the file named by `SCALER_CONFIG`), in this order of precedence; "
        "`--show-config` prints the settings in force and where each came from.",
        "",
    ]
    for section in SECTION_NAMES:
        lines += [
            f"## [{section}]",
            "",
            f"Read by `{COMMANDS[section]}` (and `python -m scaler {section}`).",
            "",
            "| setting | command line | environment variable | default | meaning |",
            "|---|---|---|---|---|",
        ]
        for item in SECTIONS[section]:
            if item.argument:
                spelling = item.metavar or item.name.upper()
            else:
                spelling = ", ".join(f"`{flag}`" for flag in (item.long_option, *item.short_flags, *item.off_flags))
            meaning = item.help.replace("|", "\\|")
            lines.append(
                f"| `{item.name}` | {spelling} | `{item.environment_variable(section)}` | "
                f"`{item.default_text()}` | {meaning} |"
            )
        lines.append("")
    return "\n".join(lines)
