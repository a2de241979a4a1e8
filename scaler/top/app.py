"""The full-screen monitor: a textual App over a StatusFeed. Import it only when textual is installed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Sparkline, Static

from scaler.top.address_hint import no_status_message, something_listens
from scaler.top.feed import FeedState, StatusFeed
from scaler.top.figures import (
    CLIENT_COLUMNS,
    CPU_NOTE,
    DEFAULT_SORT,
    FUNCTION_COLUMNS,
    SORT_KEYS,
    WORKER_COLUMNS,
    Column,
    Section,
    client_rows,
    function_rows,
    header_sections,
    identity,
    sort_descending_by_default,
    sort_label,
    stale_mark,
    throughput_history,
    waiting_line,
    worker_rows,
)

SORT_BINDINGS_HELP = "sort: c cpu, m memory, u queued, r running, n name (again to reverse; or click a column)"


def _cell(text: str, column: Column) -> Text:
    return Text(text, justify="right" if column.numeric else "left")


def _section_text(section: Section) -> Text:
    line = Text()
    line.append(f"{section.title:<19}", style="bold cyan")
    for index, figure in enumerate(section.figures):
        if index:
            line.append("   ")
        line.append(f"{figure.label} ", style="dim")
        line.append(figure.value, style="bold")
    return line


class TopApp(App[None]):
    """Header with the scheduler's figures, then tables of workers, functions and clients, redrawn every interval."""

    TITLE = "scaler_top"
    CSS = """
    #title { height: 1; background: $primary-background; color: $text; }
    #alert { height: auto; background: $error; color: $text; text-style: bold; display: none; }
    #alert.shown { display: block; }
    #header { height: auto; }
    #throughput-line { height: 1; }
    #throughput-label { width: auto; color: $text-muted; }
    #throughput { width: 1fr; }
    #workers { height: 2fr; border: round $primary; }
    #tables { height: 1fr; }
    #functions { width: 1fr; height: 100%; border: round $secondary; }
    #clients { width: 1fr; height: 100%; border: round $secondary; }
    #legend { height: auto; color: $text-muted; }
    """
    BINDINGS = [
        Binding("c", "sort('cpu')", "cpu"),
        Binding("m", "sort('rss')", "memory"),
        Binding("u", "sort('queued')", "queued"),
        Binding("r", "sort('running')", "running"),
        Binding("n", "sort('name')", "name"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, address: str, interval_seconds: float, timeout_seconds: float, sort: str = DEFAULT_SORT) -> None:
        super().__init__()
        if sort not in SORT_KEYS:
            raise ValueError(f"no worker column {sort!r}; choose one of {', '.join(SORT_KEYS)}")
        self._address = address
        self._interval_seconds = interval_seconds
        self._timeout_seconds = timeout_seconds
        self._sort = sort
        self._reverse = False
        self._feed = StatusFeed(address)
        self._listening: bool | None = None
        self._probing = False
        self._drawn: tuple[int, str, bool] | None = None  # (statuses received, sort, reverse) last drawn

    def compose(self) -> ComposeResult:
        """The widgets, top to bottom."""
        yield Static(id="title")
        yield Static(id="alert")
        yield Static(id="header")
        with Horizontal(id="throughput-line"):
            yield Static("tasks ended per second, last minute: ", id="throughput-label")
            yield Sparkline([], summary_function=max, id="throughput")
        yield DataTable(id="workers", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="tables"):
            yield DataTable(id="functions", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="clients", cursor_type="row", zebra_stripes=True)
        yield Static(CPU_NOTE, id="legend")
        yield Footer()

    def on_mount(self) -> None:
        """Start listening, lay out the tables, and redraw every interval."""
        self._feed.start()
        self._set_columns(self.query_one("#workers", DataTable), self._worker_columns())
        self._set_columns(self.query_one("#functions", DataTable), FUNCTION_COLUMNS)
        self._set_columns(self.query_one("#clients", DataTable), CLIENT_COLUMNS)
        self.query_one("#functions", DataTable).border_title = "functions (the most total run time first)"
        self.query_one("#clients", DataTable).border_title = "clients"
        self.query_one("#workers", DataTable).focus()
        self.set_interval(self._interval_seconds, self.redraw)
        self.redraw()

    def on_unmount(self) -> None:
        """Stop listening."""
        self._feed.stop()

    def action_sort(self, key: str) -> None:
        """Sort the worker table by ``key``; the same key again reverses the order."""
        if key not in SORT_KEYS:
            return
        if key == self._sort:
            self._reverse = not self._reverse
        else:
            self._sort, self._reverse = key, False
        self._set_columns(self.query_one("#workers", DataTable), self._worker_columns())
        self.redraw()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a worker column's header sorts by it."""
        if event.data_table.id == "workers" and event.column_key.value in SORT_KEYS:
            self.action_sort(event.column_key.value)

    def redraw(self) -> None:
        """Draw the newest status (or what is missing) without waiting on the socket."""
        now = time.monotonic()
        state = self._feed.state()
        self._draw_title(state)
        self._draw_alert(state, now)
        status = state.status
        drawn = (state.received, self._sort, self._reverse)
        if status is None or drawn == self._drawn:
            return  # nothing new: leave the tables (and the user's scrolling) alone
        self._drawn = drawn
        self.query_one("#header", Static).update(Text("\n").join(_section_text(s) for s in header_sections(status)))
        self.query_one("#throughput", Sparkline).data = throughput_history(status) or [0.0]
        workers = self.query_one("#workers", DataTable)
        workers.border_title = f"workers, sorted by {sort_label(self._sort, self._reverse)}  ({SORT_BINDINGS_HELP})"
        self._fill(workers, WORKER_COLUMNS, [row.cells() for row in worker_rows(status, self._sort, self._reverse)])
        self._fill(self.query_one("#functions", DataTable), FUNCTION_COLUMNS, function_rows(status))
        self._fill(self.query_one("#clients", DataTable), CLIENT_COLUMNS, client_rows(status))

    def _draw_title(self, state: FeedState) -> None:
        title = Text()
        title.append(" scaler_top ", style="bold reverse")
        title.append(f" monitor {self._address}  ")
        if state.status is not None:
            title.append(identity(state.status))
        title.append(f"   {time.strftime('%H:%M:%S')}", style="dim")
        self.query_one("#title", Static).update(title)

    def _draw_alert(self, state: FeedState, now: float) -> None:
        lines: list[str] = []
        if state.error:
            lines.append(state.error)
        if state.status is None:
            waited = state.seconds_waiting(now)
            if waited >= self._timeout_seconds:
                self._probe_once()
                lines.append(no_status_message(self._address, self._timeout_seconds, self._listening) + "; waiting")
            else:
                lines.append(waiting_line(self._address, waited))
        else:
            stale = stale_mark(state.status, state.seconds_since_received(now))
            if stale:
                lines.append(stale)
        alert = self.query_one("#alert", Static)
        alert.update(Text("\n".join(lines)))
        alert.set_class(bool(lines), "shown")

    def _probe_once(self) -> None:
        """Find out, off the event loop, whether anything listens on the address (for the hint)."""
        if self._probing:
            return
        self._probing = True

        async def probe() -> None:
            self._listening = await asyncio.to_thread(something_listens, self._address)
            self.redraw()

        self.run_worker(probe(), exclusive=True)

    def _worker_columns(self) -> list[Column]:
        columns = []
        for column in WORKER_COLUMNS:
            if column.key == self._sort:
                arrow = "▼" if sort_descending_by_default(self._sort) != self._reverse else "▲"
                column = Column(column.key, f"{column.label} {arrow}", column.numeric)
            columns.append(column)
        return columns

    @staticmethod
    def _set_columns(table: DataTable[Text], columns: Sequence[Column]) -> None:
        table.clear(columns=True)
        for column in columns:
            table.add_column(_cell(column.label, column), key=column.key)

    @staticmethod
    def _fill(table: DataTable[Text], columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
        """Replace the rows, keeping the cursor on the row of the same first cell (a worker's name)."""
        selected: str | None = None
        if table.row_count and 0 <= table.cursor_row < table.row_count:
            selected = str(table.get_row_at(table.cursor_row)[0])
        table.clear()
        for row in rows:
            table.add_row(*(_cell(text, column) for text, column in zip(row, columns, strict=True)))
        if selected is not None:
            index = next((i for i, row in enumerate(rows) if row[0] == selected), None)
            if index is not None:
                table.move_cursor(row=index, scroll=False)


def run_app(address: str, interval_seconds: float, timeout_seconds: float, sort: str = DEFAULT_SORT) -> None:
    """Run the full-screen monitor until the user quits."""
    TopApp(address, interval_seconds, timeout_seconds, sort).run()
