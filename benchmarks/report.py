"""Render collected results as a markdown table (plus notes and errors)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.cases import CASES, Metric, describe
from benchmarks.engines import BASELINE
from benchmarks.sizes import Sizes

#: Engines that get a "vs baseline" ratio column when present in the run.
RATIO_ENGINES = ("scaler", "dask")

_MAX_CELL_ERROR = 50


def format_value(value: float | None, unit: str) -> str:
    """Format one figure for the table according to its unit."""
    if value is None:
        return "—"
    if unit in ("tasks/s", "MB"):
        return f"{value:,.0f}"
    if unit == "ratio":
        return f"{value:.2f}"
    if unit in ("ms", "s"):
        return f"{value:.3f}" if value < 1 else f"{value:.2f}"
    return f"{value:g}"


def ratio(value: float | None, baseline: float | None, metric: Metric) -> float | None:
    """How much better ``value`` is than ``baseline``: > 1 always means better, whatever the direction."""
    if value is None or baseline is None or value <= 0 or baseline <= 0:
        return None
    return value / baseline if metric.higher_is_better else baseline / value


def _escape(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _cell(record: dict[str, Any] | None, metric: Metric) -> str:
    """Table cell for one engine's figure, or its status when it produced none."""
    if record is None:
        return "not run"
    status = record.get("status")
    if status == "ok":
        text = format_value(record.get("metrics", {}).get(metric.key), metric.unit)
        return text + ("\\*" if record.get("note") and text != "—" else "")
    if status == "error":
        error = record.get("error") or "unknown error"
        if len(error) > _MAX_CELL_ERROR:
            error = error[: _MAX_CELL_ERROR - 1] + "…"
        return _escape(f"error: {error}")
    if status == "timeout":
        return f"timeout ({record.get('timeout_s', '?'):g} s)"
    if status == "pending":
        return "pending"
    return "n/a"


def render_table(
    results: Sequence[dict[str, Any]], engines: Sequence[str], cases: Sequence[str], sizes: Sizes
) -> str:
    """Markdown table: one row per figure, one column per engine, then ratios against the baseline."""
    by_pair = {(r["case"], r["engine"]): r for r in results}
    ratio_engines = [e for e in RATIO_ENGINES if e in engines] if BASELINE in engines else []
    header = ["case", "figure", *engines, *[f"{e} vs {BASELINE}" for e in ratio_engines]]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|",
    ]
    for key in cases:
        case = CASES[key]
        for index, metric in enumerate(case.metrics):
            title = f"({key}) {describe(case, sizes)}" if index == 0 else ""
            better = "higher" if metric.higher_is_better else "lower"
            row = [_escape(title), f"{metric.label} ({metric.unit}, {better} is better)"]
            row += [_cell(by_pair.get((key, e)), metric) for e in engines]
            base = _figure(by_pair.get((key, BASELINE)), metric)
            for engine in ratio_engines:
                r = ratio(_figure(by_pair.get((key, engine)), metric), base, metric)
                row.append("—" if r is None else f"{r:.2f}×")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _figure(record: dict[str, Any] | None, metric: Metric) -> float | None:
    if record is None or record.get("status") != "ok":
        return None
    return record.get("metrics", {}).get(metric.key)


def render_notes(results: Sequence[dict[str, Any]]) -> str:
    """Footnotes: notes (marked ``*`` in the table), pending cases and errors; repeats are merged."""
    grouped: dict[tuple[bool, str, str], list[str]] = {}  # (marked, engine, text) -> cases
    for record in results:
        engine, status = record["engine"], record.get("status")
        texts: list[tuple[bool, str]] = []
        if status == "ok" and record.get("note"):
            texts.append((True, record["note"]))
        elif status == "pending":
            texts.append((False, record.get("note") or "pending"))
        elif status in ("error", "timeout") or (status == "n/a" and record.get("error")):
            texts.append((False, f"{status}: {record.get('error') or ''}"))
        if record.get("leftover_processes"):
            texts.append((False, f"{record['leftover_processes']} process(es) still running after shutdown"))
        for marked, text in texts:
            grouped.setdefault((marked, engine, _escape(text)), []).append(record["case"])
    lines = []
    for (marked, engine, text), cases in grouped.items():
        star = "\\* " if marked else ""
        lines.append(f"- {star}({', '.join(cases)}) {engine}: {text}")
    return "\n".join(lines)


def render(
    results: Sequence[dict[str, Any]],
    engines: Sequence[str],
    cases: Sequence[str],
    sizes: Sizes,
    machine: dict[str, Any],
    workers: int,
    profile: str,
) -> str:
    """The complete markdown report printed by ``python -m benchmarks``."""
    parts = [
        f"## Benchmark results ({profile} profile, {workers} workers per engine)",
        "",
        f"Machine: {machine['nproc']} CPUs, {machine['cpu_model']}, Python {machine['python']}.",
        f"Ratios are against `{BASELINE}` from the same run; above 1 means better than it.",
        "",
        render_table(results, engines, cases, sizes),
    ]
    notes = render_notes(results)
    if notes:
        parts += ["", "Notes:", "", notes]
    return "\n".join(parts) + "\n"
