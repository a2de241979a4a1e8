"""What does CURVE security cost?

Times the same work on a ``SchedulerClusterCombo`` with security off and with CURVE on (every connection
encrypted and authenticated), in ``--pairs`` pairs of runs whose order alternates, each run the median of
``--repeats``. Two shapes: a no-op map of ``--tasks`` tiny tasks (default 10,000: message rate) and a map of
``--large-tasks`` tasks each taking and returning ``--large-bytes`` (default 1,000 x 100 KB: bytes to
encrypt). A ``ProcessPoolExecutor`` doing the tiny map is measured in the same run for scale::

    python -m benchmarks.curve_overhead [--tasks 10000] [--large-tasks 1000] [--large-bytes 100000] [--pairs 5]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import zmq.auth

from benchmarks.tasks import noop
from scaler import Client, SchedulerClusterCombo, Security


def echo(payload: bytes) -> bytes:
    return payload


@contextlib.contextmanager
def cluster(workers: int, keys: Path | None) -> Iterator[Client]:
    """A combo and a connected client; with ``keys``, CURVE on with a scheduler key and an allowed client key."""
    if keys is None:
        with SchedulerClusterCombo(n_workers=workers) as combo, Client(combo.get_address()) as client:
            yield client
        return
    scheduler = Security(secret_key_file=str(keys / "scheduler.key_secret"), allowed_clients=str(keys / "allowed"))
    client_keys = Security(secret_key_file=str(keys / "client.key_secret"), server_key_file=str(keys / "scheduler.key"))
    with SchedulerClusterCombo(n_workers=workers, security=scheduler) as combo:
        with Client(combo.get_address(), security=client_keys) as client:
            yield client


def make_keys(directory: Path) -> Path:
    zmq.auth.create_certificates(str(directory), "scheduler")
    zmq.auth.create_certificates(str(directory), "client")
    allowed = directory / "allowed"
    allowed.mkdir()
    (allowed / "client.key").write_bytes((directory / "client.key").read_bytes())
    return directory


def timed(run: Callable[[], object], repeats: int) -> float:
    """The median wall time of ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--large-tasks", type=int, default=1_000)
    parser.add_argument("--large-bytes", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    tiny = [(i,) for i in range(options.tasks)]
    large = [(bytes(options.large_bytes),) for _ in range(options.large_tasks)]
    rates: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as directory:
        keys = make_keys(Path(directory))
        for pair in range(options.pairs):
            order = [None, keys] if pair % 2 == 0 else [keys, None]
            for setting in order:
                mode = "curve" if setting is not None else "off"
                with cluster(options.workers, setting) as client:
                    client.map(noop, tiny[:100])  # warm: functions sent, processors started
                    seconds = timed(lambda client=client: client.map(noop, tiny), options.repeats)
                    rates.setdefault((mode, "tiny"), []).append(options.tasks / seconds)
                    seconds = timed(lambda client=client: client.map(echo, large), options.repeats)
                    rates.setdefault((mode, "large"), []).append(options.large_tasks / seconds)
                print(
                    f"pair {pair + 1} {mode:5}: tiny {rates[(mode, 'tiny')][-1]:9.0f} tasks/s, "
                    f"{options.large_bytes // 1000} KB {rates[(mode, 'large')][-1]:7.0f} tasks/s",
                    flush=True,
                )
    with concurrent.futures.ProcessPoolExecutor(options.workers) as pool:
        list(pool.map(noop, range(100)))
        seconds = timed(lambda: list(pool.map(noop, range(options.tasks), chunksize=64)), options.repeats)
    pool_rate = options.tasks / seconds
    for shape in ("tiny", "large"):
        off, on = statistics.median(rates[("off", shape)]), statistics.median(rates[("curve", shape)])
        print(f"{shape:5}: off {off:9.0f} tasks/s, curve {on:9.0f} tasks/s, curve/off {on / off:.3f}")
    print(f"ProcessPoolExecutor tiny map (chunksize 64): {pool_rate:.0f} tasks/s")


if __name__ == "__main__":
    main()
