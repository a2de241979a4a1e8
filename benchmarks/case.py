"""Run one (engine, case) pair in this process and print its result as one JSON line.

Usage: ``python -m benchmarks.case ENGINE CASE [--workers W] [--profile full|short|quick]``.
:mod:`benchmarks.run` starts this module in a fresh subprocess for every pair, so that no engine inherits
state (imports, threads, sockets, memory) from another.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import traceback
from typing import Any

from benchmarks import memory, simulated
from benchmarks.cases import CASES
from benchmarks.engines import ENGINES, NotSupportedError, make_engine
from benchmarks.sizes import PROFILES

#: Marks the result line among anything a library may print on stdout.
RESULT_KEY = "benchmark_result"


def _short_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


def run_pair(engine_name: str, case_key: str, workers: int, profile: str) -> dict[str, Any]:
    """Run ``case_key`` on ``engine_name`` and return the result record (never raises)."""
    case = CASES[case_key]
    sizes = PROFILES[profile]
    record: dict[str, Any] = {
        RESULT_KEY: 1,
        "engine": engine_name,
        "case": case_key,
        "workers": workers,
        "profile": profile,
        "status": "ok",
        "metrics": {},
        "extra": {},
        "note": None,
        "error": None,
    }
    if case.engines is not None and engine_name not in case.engines:
        record.update(status="n/a", note=f"only for {', '.join(sorted(case.engines))}")
        return record

    engine = make_engine(engine_name, workers)
    try:
        engine.prepare()
    except ImportError as exc:
        record.update(status="n/a", error=f"cannot import {engine_name}: {_short_error(exc)}")
        return record

    start = time.perf_counter()
    try:
        output = case.run(engine, sizes)
        record.update(metrics=output.metrics, extra=output.extra, note=output.note)
    except NotSupportedError as exc:
        record.update(status="n/a", note=str(exc))
    except NotImplementedError as exc:
        record.update(status="pending", note=str(exc) or simulated.PENDING_MESSAGE)
    except Exception as exc:  # noqa: BLE001  (any failure is reported, not raised)
        record.update(status="error", error=_short_error(exc), traceback=traceback.format_exc())
        try:
            engine.shutdown()
        except Exception as shutdown_exc:  # noqa: BLE001
            record["shutdown_error"] = _short_error(shutdown_exc)
    record["wall_s"] = time.perf_counter() - start

    engine_note = engine.notes.get(case_key)
    if engine_note:
        record["note"] = "; ".join(n for n in (engine_note, record["note"]) if n)
    record["leftover_processes"] = _kill_leftovers()
    return record


#: Command-line fragments of multiprocessing's own helper processes, which outlive pools by design.
_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def _kill_leftovers() -> int:
    """Kill every child still alive after shutdown; return how many were not multiprocessing helpers."""
    try:
        leftovers = memory.descendants()
    except ImportError:
        return 0
    count = 0
    for proc in leftovers:
        with contextlib.suppress(Exception):  # the process may be gone already
            if not any(h in " ".join(proc.cmdline()) for h in _HELPERS):
                count += 1
        with contextlib.suppress(Exception):
            proc.kill()
    return count


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the pair and print the JSON result line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.case", description=__doc__)
    parser.add_argument("engine", choices=sorted(ENGINES))
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    args = parser.parse_args(argv)

    record = run_pair(args.engine, args.case, args.workers, args.profile)
    sys.stdout.flush()
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()
    # Skip interpreter teardown: some libraries hang in atexit handlers after their cluster is gone.
    os._exit(0 if record["status"] in ("ok", "n/a", "pending") else 1)


if __name__ == "__main__":
    sys.exit(main())
