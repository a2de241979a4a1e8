"""Run every selected case on every selected engine, each pair in a fresh subprocess, and report.

Usage (from the repository root)::

    python -m benchmarks [--cases a,b,c] [--engines scaler,dask,processpool,mppool] [--workers 2]
                         [--quick | --short] [--timeout 300] [--output benchmarks/results/latest.json]

The markdown table goes to stdout, progress to stderr, and the raw results to the JSON file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as ``python benchmarks/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import report
from benchmarks.case import RESULT_KEY
from benchmarks.cases import CASES
from benchmarks.engines import ENGINES
from benchmarks.machine import machine_info
from benchmarks.sizes import PROFILES

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "latest.json"
DEFAULT_ENGINES = ("scaler", "dask", "processpool", "mppool")


def _csv(value: str, allowed: dict[str, Any], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})"
        )
    return items


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Compare scaler, dask and process pools."
    )
    parser.add_argument(
        "--cases",
        type=lambda v: _csv(v, CASES, "case"),
        default=list(CASES),
        help="comma-separated case keys (default: all, a-o)",
    )
    parser.add_argument(
        "--engines",
        type=lambda v: _csv(v, ENGINES, "engine"),
        default=list(DEFAULT_ENGINES),
        help="comma-separated engines (default: scaler,dask,processpool,mppool)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes per engine (default: 2)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes: a smoke run of about a minute")
    size.add_argument(
        "--short",
        action="store_true",
        help="full sizes except a 100,000-task case (i); the default when CI is set",
    )
    size.add_argument("--full", action="store_true", help="full sizes even when CI is set")
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds allowed per subprocess (default: 300; case i: 300 per 100,000 tasks)",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the raw JSON results"
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def choose_profile(args: argparse.Namespace) -> str:
    """``quick`` / ``short`` / ``full`` from the flags; CI (``CI`` set and not ``false``) means ``short``."""
    if args.quick:
        return "quick"
    if args.short:
        return "short"
    if args.full:
        return "full"
    ci = os.environ.get("CI", "").strip().lower()
    return "short" if ci not in ("", "0", "false", "no") else "full"


def timeout_for(case: str, profile: str, base: float) -> float:
    """Subprocess timeout: ``base``, scaled for the long case (i) by how many tasks it runs.

    dask.distributed manages well under 1,000 tasks/s on a 2-core machine, so the million-task map
    needs ~10x the base timeout (3,000 s by default) to finish rather than time out.
    """
    if case == "i":
        return base * max(1.0, PROFILES[profile].big_map_tasks / 100_000)
    return base


def run_subprocess(engine: str, case: str, workers: int, profile: str, timeout: float) -> dict[str, Any]:
    """Run ``python -m benchmarks.case`` for one pair and return its result record (never raises)."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.case",
        engine,
        case,
        "--workers",
        str(workers),
        "--profile",
        profile,
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    base: dict[str, Any] = {
        "engine": engine,
        "case": case,
        "workers": workers,
        "profile": profile,
        "metrics": {},
        "note": None,
    }
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
        return {
            **base,
            "status": "timeout",
            "timeout_s": round(timeout, 1),
            "error": f"no result within {timeout:g} s",
            "stderr_tail": stderr[-2000:],
            "elapsed_s": time.perf_counter() - start,
        }
    finally:
        _kill_group(proc)  # workers a crashed case may have left behind (its own process group only)
    elapsed = time.perf_counter() - start
    record = _parse_result(stdout)
    if record is None:
        tail = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
        return {
            **base,
            "status": "error",
            "error": f"exit code {proc.returncode}, no result line: {tail[0]}",
            "stderr_tail": stderr[-4000:],
            "elapsed_s": elapsed,
        }
    record.pop(RESULT_KEY, None)
    record["elapsed_s"] = elapsed
    if record.get("status") == "error":
        record["stderr_tail"] = stderr[-4000:]
    return record


def _parse_result(stdout: str) -> dict[str, Any] | None:
    """The last JSON line carrying the result marker, if any."""
    for raw in reversed(stdout.splitlines()):
        line = raw.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get(RESULT_KEY):
            return data
    return None


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process group led by ``proc`` (the case subprocess and whatever it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _progress(record: dict[str, Any]) -> str:
    status = record.get("status")
    if status == "ok":
        figures = ", ".join(f"{k}={v:.4g}" for k, v in record.get("metrics", {}).items() if v is not None)
        detail = figures or "no figures"
    else:
        detail = record.get("error") or record.get("note") or ""
    return f"[{record['case']}/{record['engine']}] {status} in {record.get('elapsed_s', 0):.1f} s: {detail}"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON file. Returns the process exit code."""
    args = parse_args(argv)
    profile = choose_profile(args)
    sizes = PROFILES[profile]
    machine = machine_info()
    print(
        f"benchmarks: profile={profile} workers={args.workers} cases={','.join(args.cases)} "
        f"engines={','.join(args.engines)}",
        file=sys.stderr,
        flush=True,
    )

    started = time.perf_counter()
    results = []
    for case in args.cases:
        for engine in args.engines:
            record = run_subprocess(
                engine, case, args.workers, profile, timeout_for(case, profile, args.timeout)
            )
            results.append(record)
            print(_progress(record), file=sys.stderr, flush=True)
    total = time.perf_counter() - started

    table = report.render(results, args.engines, args.cases, sizes, machine, args.workers, profile)
    sys.stdout.write(table)
    payload = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "profile": profile,
        "workers": args.workers,
        "cases": args.cases,
        "engines": args.engines,
        "sizes": sizes.to_dict(),
        "machine": machine,
        "total_seconds": total,
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"benchmarks: {len(results)} runs in {total:.1f} s; raw results in {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
