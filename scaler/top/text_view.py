"""The plain-text view: one status as labelled lines (``scaler_top --once``), or refreshed in a loop without textual."""

from __future__ import annotations

import time
from collections.abc import Callable

from scaler.top.address_hint import no_status_message, something_listens
from scaler.top.feed import StatusFeed
from scaler.top.figures import (
    CLIENT_COLUMNS,
    CPU_NOTE,
    DEFAULT_SORT,
    FUNCTION_COLUMNS,
    WORKER_COLUMNS,
    Status,
    client_rows,
    function_rows,
    header_sections,
    identity,
    sort_label,
    stale_mark,
    text_table,
    waiting_line,
    worker_rows,
)

TEXTUAL_MISSING_NOTE = 'pip install "scaler[monitor]" gives the full-screen monitor; this is the plain view'


def render(status: Status, sort: str = DEFAULT_SORT, reverse: bool = False) -> str:
    """A status message as labelled plain-text lines: the header, then the worker, function and client tables."""
    lines = [identity(status)]
    lines += [section.as_text() for section in header_sections(status)]
    lines += ["", f"workers (sorted by {sort_label(sort, reverse)})"]
    lines += text_table(WORKER_COLUMNS, [row.cells() for row in worker_rows(status, sort, reverse)], "(no worker)")
    lines += ["", "functions (the most total run time first; times are run times on a processor)"]
    lines += text_table(FUNCTION_COLUMNS, function_rows(status), "(no function ran yet)")
    lines += ["", "clients"]
    lines += text_table(CLIENT_COLUMNS, client_rows(status), "(no client)")
    lines += ["", CPU_NOTE]
    return "\n".join(lines)


def run_plain(
    address: str,
    interval_seconds: float,
    timeout_seconds: float,
    sort: str,
    echo: Callable[[str], None],
    clear: Callable[[], None],
    note: str | None = TEXTUAL_MISSING_NOTE,
) -> None:
    """Redraw the plain view every ``interval_seconds`` until interrupted (Ctrl-C).

    It marks the view stale when statuses stop, and says where the monitor probably is when none came within
    ``timeout_seconds``; it keeps waiting either way.
    """
    listening: bool | None = None
    with StatusFeed(address) as feed:
        while True:
            now = time.monotonic()
            state = feed.state()
            lines = [f"scaler_top {address}  {time.strftime('%H:%M:%S')}  (Ctrl-C quits)"]
            if note:
                lines.append(note)
            if state.error:
                lines.append(state.error)
            if state.status is None:
                waited = state.seconds_waiting(now)
                if waited >= timeout_seconds:
                    if listening is None:
                        listening = something_listens(address)
                    lines.append(no_status_message(address, timeout_seconds, listening) + " (still waiting)")
                else:
                    lines.append(waiting_line(address, waited))
            else:
                stale = stale_mark(state.status, state.seconds_since_received(now))
                if stale:
                    lines.append(stale)
                lines.append(render(state.status, sort))
            clear()
            echo("\n".join(lines))
            time.sleep(interval_seconds)
