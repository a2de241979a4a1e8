"""Pure functions turning a status message (docs/monitoring.md, layout version 2) into labelled figures and rows.

Both views of ``scaler_top`` (the plain text of ``--once`` and the full-screen textual app) draw from these,
so they use the same labels. Every field is read with a default: a field the scheduler does not send (an
older scheduler, or a newer layout) shows as ``-`` instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Status = Mapping[str, Any]

LAYOUT_VERSION = 2
"""The version of the status layout this module reads."""

MISSING = "-"
"""How a figure the status does not carry is shown."""

STALE_AFTER_INTERVALS = 3
"""A status older than this many publishing intervals is stale."""

DEFAULT_PUBLISH_INTERVAL_SECONDS = 1.0

CPU_NOTE = (
    "cpu % is of one core (a process spinning on one core shows 100); "
    "a worker's cpu and rss are its agent's plus its processors'"
)


# -- reading fields -------------------------------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _records(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, (list, tuple)):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _number(mapping: Mapping[str, Any], key: str) -> float | None:
    """A numeric field, or None when it is missing or not a number (bools are not numbers here)."""
    value = mapping.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return value


def _text(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return None if value is None else str(value)


# -- formatting -----------------------------------------------------------------------------------------------------


def format_count(value: float | None) -> str:
    """A count with thousands separators, or ``-`` when missing."""
    return MISSING if value is None else f"{round(value):,}"


def format_bytes(value: float | None) -> str:
    """A size in B, kB, MB, GB or TB (powers of 1000), or ``-`` when missing."""
    if value is None:
        return MISSING
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def format_percent(value: float | None) -> str:
    """A CPU percentage, rounded to a whole number, without the % sign; ``-`` when missing."""
    return MISSING if value is None else f"{value:.0f}"


def format_rate(value: float | None) -> str:
    """A rate per second, like ``210/s`` or ``2.5/s``; ``-`` when missing."""
    if value is None:
        return MISSING
    return f"{value:,.1f}/s" if abs(value) < 10 else f"{value:,.0f}/s"


def format_seconds(value: float | None) -> str:
    """A duration: ``0.4 ms`` or ``12 ms`` under a second, ``3.4 s`` under a minute, then ``5m 07s`` and ``2h 03m``."""
    if value is None:
        return MISSING
    if value == 0:
        return "0 s"
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        minutes, seconds = divmod(int(value), 60)
        return f"{minutes}m {seconds:02d}s"
    hours, rest = divmod(int(value), 3600)
    return f"{hours}h {rest // 60:02d}m"


# -- the header -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One labelled value of the header."""

    label: str
    value: str


@dataclass(frozen=True)
class Section:
    """A line of the header: a title and its figures."""

    title: str
    figures: tuple[Figure, ...]

    def as_text(self) -> str:
        """The section as one plain line: ``title: label value   label value``."""
        return f"{self.title}: " + "   ".join(f"{figure.label} {figure.value}" for figure in self.figures)


def identity(status: Status) -> str:
    """Who published the status: ``scheduler pid 4711 at tcp://...:5000, scaler 0.1.0, up 3m 02s``."""
    scheduler = _mapping(status.get("scheduler"))
    pid = _text(scheduler, "pid") or MISSING
    line = f"scheduler pid {pid}"
    address = _text(scheduler, "address")
    if address:
        line += f" at {address}"
    version = _text(scheduler, "version")
    if version:
        line += f", scaler {version}"
    started, now = _number(scheduler, "started"), _number(status, "time")
    if started is not None and now is not None:
        line += f", up {format_seconds(max(0.0, now - started))}"
    layout = status.get("version")
    if layout != LAYOUT_VERSION:
        line += f" (status layout {layout if layout is not None else 1}, this scaler_top reads {LAYOUT_VERSION}: "
        line += f"figures it lacks show as {MISSING})"
    return line


def scheduler_section(status: Status) -> Section:
    """The scheduler process: its cpu, memory and message rates."""
    scheduler = _mapping(status.get("scheduler"))
    return Section(
        "scheduler",
        (
            Figure("cpu", f"{format_percent(_number(scheduler, 'cpu_percent'))} % of one core"),
            Figure("rss", format_bytes(_number(scheduler, "rss_bytes"))),
            Figure("messages in", format_rate(_number(scheduler, "messages_received_per_second"))),
            Figure("out", format_rate(_number(scheduler, "messages_sent_per_second"))),
            Figure("malformed", format_count(_number(scheduler, "malformed_messages"))),
        ),
    )


def tasks_now_section(status: Status) -> Section:
    """The unfinished tasks by state; each is in exactly one of the five states (running includes suspended)."""
    tasks = _mapping(status.get("tasks"))
    return Section(
        "tasks now",
        (
            Figure("queued in scheduler", format_count(_number(tasks, "queued"))),
            Figure("queued on workers", format_count(_number(tasks, "assigned"))),
            Figure("running", format_count(_number(tasks, "running"))),
            Figure("suspended", format_count(_number(tasks, "suspended"))),
            Figure("waiting on dependencies", format_count(_number(tasks, "waiting"))),
            Figure("unfinished", format_count(_number(tasks, "unfinished"))),
        ),
    )


def tasks_total_section(status: Status) -> Section:
    """Tasks submitted and ended each way since the scheduler started, and the throughput."""
    tasks = _mapping(status.get("tasks"))
    return Section(
        "tasks since start",
        (
            Figure("submitted", format_count(_number(tasks, "submitted"))),
            Figure("succeeded", format_count(_number(tasks, "succeeded"))),
            Figure("failed", format_count(_number(tasks, "failed"))),
            Figure("cancelled", format_count(_number(tasks, "cancelled"))),
            Figure("throughput now", format_rate(_number(tasks, "ended_per_second"))),
            Figure("last minute", format_rate(_number(tasks, "ended_per_second_last_minute"))),
        ),
    )


def objects_section(status: Status) -> Section:
    """The object store, with data objects and function objects counted apart, and who is connected."""
    objects = _mapping(status.get("objects"))
    return Section(
        "object store",
        (
            Figure("objects", f"{format_count(_number(objects, 'count'))} ({format_bytes(_number(objects, 'bytes'))})"),
            Figure(
                "functions",
                f"{format_count(_number(objects, 'functions'))} ({format_bytes(_number(objects, 'function_bytes'))})",
            ),
            Figure("clients", format_count(len(_records(status.get("clients"))))),
            Figure("workers", format_count(len(_records(status.get("workers"))))),
        ),
    )


def header_sections(status: Status) -> list[Section]:
    """Every line of the header, in order."""
    return [scheduler_section(status), tasks_now_section(status), tasks_total_section(status), objects_section(status)]


def throughput_history(status: Status) -> list[float]:
    """Tasks ended per second, one point per interval over the last minute, oldest first."""
    points = _mapping(status.get("tasks")).get("throughput_history")
    values: list[float] = []
    if isinstance(points, (list, tuple)):
        for point in points:
            if isinstance(point, (list, tuple)) and len(point) == 2 and isinstance(point[1], (int, float)):
                values.append(float(point[1]))
    return values


# -- staleness and waiting ------------------------------------------------------------------------------------------


def publish_interval_seconds(status: Status | None) -> float:
    """How often the scheduler publishes, from its status (1 s when it does not say)."""
    interval = _number(status, "interval_seconds") if status is not None else None
    return interval if interval is not None and interval > 0 else DEFAULT_PUBLISH_INTERVAL_SECONDS


def stale_mark(status: Status | None, seconds_since_received: float | None) -> str | None:
    """``STALE: no status for N s`` once no status came for more than 3 publishing intervals, else None."""
    if status is None or seconds_since_received is None:
        return None
    if seconds_since_received <= STALE_AFTER_INTERVALS * publish_interval_seconds(status):
        return None
    return f"STALE: no status for {seconds_since_received:.0f} s; the figures below are from then (still waiting)"


def waiting_line(address: str, seconds_waited: float) -> str:
    """What to show before the first status has come."""
    return f"waiting for the first status from {address} ({seconds_waited:.0f} s)"


# -- the worker table -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column of a table: its key, its label, and whether its numbers align right."""

    key: str
    label: str
    numeric: bool = True


WORKER_COLUMNS: tuple[Column, ...] = (
    Column("name", "worker", numeric=False),
    Column("cpu", "cpu %"),
    Column("rss", "rss"),
    Column("processors", "processors busy/total"),
    Column("queued", "queued on worker"),
    Column("running", "running"),
    Column("succeeded", "succeeded"),
    Column("failed", "failed"),
    Column("heartbeat", "heartbeat age"),
)

SORT_KEYS: tuple[str, ...] = tuple(column.key for column in WORKER_COLUMNS)
"""Every key the worker table sorts by: one per column."""

DEFAULT_SORT = "cpu"


@dataclass(frozen=True)
class WorkerRow:
    """One worker's figures, as numbers (None when the status lacks them)."""

    name: str
    cpu_percent: float | None
    rss_bytes: float | None
    busy_processors: int | None
    processors: int | None
    queued: float | None
    running: float | None
    succeeded: float | None
    failed: float | None
    heartbeat_age_seconds: float | None

    def sort_value(self, key: str) -> float | str:
        """This row's value for a sort key; numbers for numeric columns, with missing ones as -inf."""
        if key == "name":
            return self.name
        values: dict[str, float | None] = {
            "cpu": self.cpu_percent,
            "rss": self.rss_bytes,
            "processors": self.busy_processors,
            "queued": self.queued,
            "running": self.running,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "heartbeat": self.heartbeat_age_seconds,
        }
        if key not in values:
            raise ValueError(f"no worker column {key!r}; choose one of {', '.join(SORT_KEYS)}")
        value = values[key]
        return -math.inf if value is None else value

    def cells(self) -> tuple[str, ...]:
        """The row's cells, in the order of WORKER_COLUMNS."""
        busy = MISSING if self.busy_processors is None else str(self.busy_processors)
        total = MISSING if self.processors is None else str(self.processors)
        return (
            self.name,
            format_percent(self.cpu_percent),
            format_bytes(self.rss_bytes),
            f"{busy}/{total}",
            format_count(self.queued),
            format_count(self.running),
            format_count(self.succeeded),
            format_count(self.failed),
            format_seconds(self.heartbeat_age_seconds),
        )


def _processor_counts(worker: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(busy, total) processors of a worker; a bare count (older layouts) gives no busy figure."""
    processors = worker.get("processors")
    if isinstance(processors, (list, tuple)):
        records = _records(processors)
        return sum(1 for record in records if record.get("busy")), len(processors)
    if isinstance(processors, int) and not isinstance(processors, bool):
        return None, processors
    return None, None


def worker_row(worker: Mapping[str, Any]) -> WorkerRow:
    """One worker's map of the status as a row."""
    busy, total = _processor_counts(worker)
    return WorkerRow(
        name=_text(worker, "name") or MISSING,
        cpu_percent=_number(worker, "cpu_percent"),
        rss_bytes=_number(worker, "rss_bytes"),
        busy_processors=busy,
        processors=total,
        queued=_number(worker, "queued"),
        running=_number(worker, "running"),
        succeeded=_number(worker, "succeeded"),
        failed=_number(worker, "failed"),
        heartbeat_age_seconds=_number(worker, "heartbeat_age_seconds"),
    )


def sort_descending_by_default(key: str) -> bool:
    """Numbers sort largest first, names alphabetically."""
    return key != "name"


def worker_rows(status: Status, sort: str = DEFAULT_SORT, reverse: bool = False) -> list[WorkerRow]:
    """The workers of a status as rows sorted by ``sort`` (largest first; names A to Z); ``reverse`` flips it.

    Rows of equal value keep the order of their names, so the table does not shuffle between refreshes.
    """
    if sort not in SORT_KEYS:
        raise ValueError(f"no worker column {sort!r}; choose one of {', '.join(SORT_KEYS)}")
    rows = sorted((worker_row(worker) for worker in _records(status.get("workers"))), key=lambda row: row.name)
    descending = sort_descending_by_default(sort) != reverse
    return sorted(rows, key=lambda row: row.sort_value(sort), reverse=descending)


def sort_label(sort: str, reverse: bool = False) -> str:
    """How the worker table is sorted, e.g. ``cpu %, largest first``."""
    label = next((column.label for column in WORKER_COLUMNS if column.key == sort), sort)
    descending = sort_descending_by_default(sort) != reverse
    if sort == "name":
        return f"{label}, {'Z to A' if descending else 'A to Z'}"
    return f"{label}, {'largest' if descending else 'smallest'} first"


# -- the function and client tables ---------------------------------------------------------------------------------


FUNCTION_COLUMNS: tuple[Column, ...] = (
    Column("name", "function", numeric=False),
    Column("count", "ended"),
    Column("mean", "mean time"),
    Column("max", "max time"),
    Column("failures", "failures"),
)


def function_rows(status: Status) -> list[tuple[str, ...]]:
    """One row per function, the most total run time first."""
    functions = _records(status.get("functions"))

    def total_time(function: Mapping[str, Any]) -> float:
        return (_number(function, "count") or 0) * (_number(function, "mean_seconds") or 0)

    ordered = sorted(functions, key=lambda function: (-total_time(function), _text(function, "name") or ""))
    return [
        (
            _text(function, "name") or MISSING,
            format_count(_number(function, "count")),
            format_seconds(_number(function, "mean_seconds")),
            format_seconds(_number(function, "max_seconds")),
            format_count(_number(function, "failures")),
        )
        for function in ordered
    ]


CLIENT_COLUMNS: tuple[Column, ...] = (
    Column("name", "client", numeric=False),
    Column("tasks", "unfinished tasks"),
    Column("objects", "objects (incl. functions)"),
    Column("submitted", "submitted"),
    Column("succeeded", "succeeded"),
    Column("failed", "failed"),
)


def client_rows(status: Status) -> list[tuple[str, ...]]:
    """One row per connected client, the most unfinished tasks first."""
    clients = _records(status.get("clients"))

    def name(client: Mapping[str, Any]) -> str:
        return _text(client, "name") or f"client {_text(client, 'number') or MISSING}"

    ordered = sorted(clients, key=lambda client: (-(_number(client, "tasks") or 0), name(client)))
    return [
        (
            name(client),
            format_count(_number(client, "tasks")),
            format_count(_number(client, "objects")),
            format_count(_number(client, "submitted")),
            format_count(_number(client, "succeeded")),
            format_count(_number(client, "failed")),
        )
        for client in ordered
    ]


# -- plain text tables ----------------------------------------------------------------------------------------------


def text_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], empty: str) -> list[str]:
    """Rows under labelled columns as aligned plain-text lines (``empty`` when there is no row)."""
    widths = [max([len(column.label), *(len(row[index]) for row in rows)]) for index, column in enumerate(columns)]
    align: list[Callable[[str, int], str]] = [
        (lambda text, width: text.rjust(width)) if column.numeric else (lambda text, width: text.ljust(width))
        for column in columns
    ]
    lines = ["  ".join(align[index](column.label, widths[index]) for index, column in enumerate(columns)).rstrip()]
    lines += ["  ".join(align[index](cell, widths[index]) for index, cell in enumerate(row)).rstrip() for row in rows]
    if not rows:
        lines.append(empty)
    return lines
