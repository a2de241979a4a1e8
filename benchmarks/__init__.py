"""Benchmark runner comparing scaler with dask.distributed and the standard-library process pools.

Run ``python -m benchmarks --help`` from the repository root. Each (engine, case) pair runs in a fresh
subprocess (``python -m benchmarks.case ENGINE CASE``) that prints a single JSON line; the parent
collects those lines, prints a markdown table and writes ``benchmarks/results/latest.json``.
"""

__all__: list[str] = []
