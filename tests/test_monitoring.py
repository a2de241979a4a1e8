"""The status stream (docs/monitoring.md), task output sent home, and the scheduler's event log.

The core-level tests drive a SchedulerCore with messages; the others read what a live cluster publishes.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from scaler import Client, SchedulerClusterCombo
from scaler.io.address import default_monitor_address
from scaler.protocol.codec import MalformedMessage
from scaler.protocol.ids import task_id_base
from scaler.protocol.messages import (
    ArgumentKind,
    HeartbeatField,
    MessageType,
    OutputStream,
    TaskFlag,
    TaskStatus,
)
from scaler.scheduler.status_reporter import STATUS_VERSION
from tests import tasks
from tests.cluster_parts import StatusReader
from tests.helpers import wait_until
from tests.scheduler_wiring import FUNCTION, Wiring

REPOSITORY = Path(__file__).resolve().parent.parent
STATES = ("waiting", "queued", "assigned", "running")


# A function the client names when it sends it (FUNCTION is sent without a name).
NAMED = b"N" * 16


def name_function(wiring: Wiring, name: str) -> None:
    """The client sends NAMED under ``name``; it is known to take a millisecond."""
    wiring.deliver(b"client", MessageType.OBJECT_PUT, [[NAMED, b"function payload", name]])
    wiring.tasks.durations.observe(NAMED, 0.001)


def submit(
    wiring: Wiring,
    client: Any,
    numbers: range,
    dependencies: dict[int, int] | None = None,
    function_id: bytes = FUNCTION,
) -> list[int]:
    """Submit tasks ``numbers``; ``dependencies`` maps a task number to the number it waits for."""
    base = task_id_base(client.number)
    items = []
    for number in numbers:
        args: list[Any] = [[ArgumentKind.INLINE, b"x"]]
        if dependencies and number in dependencies:
            args.append([ArgumentKind.TASK, base + dependencies[number]])
        items.append([base + number, function_id, 0, int(TaskFlag.RESULT_TO_CLIENT), args, []])
    wiring.deliver(client.identity, MessageType.TASK_SUBMIT, items)
    return [base + number for number in numbers]


def result(task_id: int, status: TaskStatus, seconds: float) -> list[Any]:
    payload = b"result" if status == TaskStatus.SUCCESS else b"error"
    return [task_id, int(status), payload, None, seconds]


# ---------------------------------------------------------------------------------------------- the core


def test_every_unfinished_task_is_counted_in_exactly_one_state() -> None:
    wiring = Wiring(queue_size=2, function_seconds=0.001)
    client = wiring.connect_client()
    wiring.connect_worker("w")
    ids = submit(wiring, client, range(1, 6), dependencies={5: 1})
    wiring.deliver(b"w", MessageType.TASKS_STARTED, ids[:1])
    counts = wiring.tasks.describe()
    assert {state: counts[state] for state in STATES} == {"waiting": 1, "queued": 2, "assigned": 1, "running": 1}
    assert counts["unfinished"] == 5 and counts["submitted"] == 5
    wiring.deliver(b"w", MessageType.TASK_SUSPENDED, [ids[0], True])  # its core is free: one more is sent
    counts = wiring.tasks.describe()
    assert {state: counts[state] for state in (*STATES, "suspended")} == {
        "waiting": 1,
        "queued": 1,
        "assigned": 2,
        "running": 1,
        "suspended": 1,
    }
    (worker,) = wiring.workers.describe()
    assert (worker["queued"], worker["running"], worker["suspended"]) == (2, 1, 1)


def test_results_are_tallied_per_function_name_per_worker_and_per_client() -> None:
    wiring = Wiring()
    client = wiring.connect_client()
    name_function(wiring, "module.work")
    wiring.connect_worker("w")
    ids = submit(wiring, client, range(1, 4), function_id=NAMED)
    results = [
        result(ids[0], TaskStatus.SUCCESS, 0.5),
        result(ids[1], TaskStatus.SUCCESS, 1.5),
        result(ids[2], TaskStatus.RAISED, 1.0),
    ]
    wiring.deliver(b"w", MessageType.TASK_RESULTS, results)
    (line,) = wiring.tasks.activity.describe_functions()
    assert line == {"name": "module.work", "count": 3, "mean_seconds": 1.0, "max_seconds": 1.5, "failures": 1}
    (worker,) = wiring.workers.describe()
    assert (worker["succeeded"], worker["failed"]) == (2, 1)
    (client_line,) = wiring.core.describe_clients()
    assert {key: client_line[key] for key in ("tasks", "submitted", "succeeded", "failed")} == {
        "tasks": 0,
        "submitted": 3,
        "succeeded": 2,
        "failed": 1,
    }
    spans = wiring.tasks.activity.take_task_stream()
    assert [(worker, name, ok) for worker, name, _, _, ok in spans] == [
        ("w", "module.work", True),
        ("w", "module.work", True),
        ("w", "module.work", False),
    ]
    assert all(
        end - start == pytest.approx(seconds)
        for (_, _, start, end, _), seconds in zip(spans, [0.5, 1.5, 1], strict=True)
    )
    assert wiring.tasks.activity.take_task_stream() == []  # each span is sent once


def test_function_objects_are_counted_apart_from_the_clients_objects() -> None:
    wiring = Wiring()
    wiring.connect_client()  # puts FUNCTION without a name: an object like any other
    wiring.deliver(b"client", MessageType.OBJECT_PUT, [[b"G" * 16, b"code", "g"], [b"D" * 16, b"data" * 10]])
    assert wiring.objects.describe() == {"count": 2, "bytes": 16 + 40, "functions": 1, "function_bytes": 4}
    wiring.deliver(b"client", MessageType.CLIENT_DISCONNECT, [])
    assert wiring.objects.describe() == {"count": 0, "bytes": 0, "functions": 0, "function_bytes": 0}


def test_a_worker_heartbeat_with_processor_figures_is_reported_and_a_bad_one_rejected() -> None:
    wiring = Wiring()
    wiring.connect_worker("w")
    fields: list[Any] = [0] * len(HeartbeatField)
    fields[HeartbeatField.CPU_PERCENT] = 103.0
    fields[HeartbeatField.RSS_BYTES] = 3000
    fields[HeartbeatField.QUEUED] = 0
    fields[HeartbeatField.PROCESSORS] = 1
    fields[HeartbeatField.AGENT_CPU_PERCENT] = 3.0
    fields[HeartbeatField.AGENT_RSS_BYTES] = 1000
    fields[HeartbeatField.PROCESSOR_FIGURES] = [[42, 100.0, 2000, True]]
    wiring.deliver(b"w", MessageType.WORKER_HEARTBEAT, fields)
    (worker,) = wiring.workers.describe()
    assert worker["cpu_percent"] == 103.0 and worker["agent_cpu_percent"] == 3.0
    assert worker["processors"] == [{"pid": 42, "cpu_percent": 100.0, "rss_bytes": 2000, "busy": True}]
    assert worker["heartbeat_age_seconds"] is not None and worker["heartbeat_age_seconds"] < 60
    fields[HeartbeatField.PROCESSOR_FIGURES] = [[42, "lots", 2000, True]]
    with pytest.raises(MalformedMessage):
        wiring.core.on_message(b"w", MessageType.WORKER_HEARTBEAT, fields, [])
    # The old four-field heartbeat is still read.
    wiring.deliver(b"w", MessageType.WORKER_HEARTBEAT, [50.0, 10, 0, 1])
    assert wiring.workers.describe()[0]["cpu_percent"] == 50.0


def test_task_output_goes_to_the_tasks_client_with_the_workers_name() -> None:
    wiring = Wiring(function_seconds=0.001)
    client = wiring.connect_client()
    wiring.connect_worker("w1")
    (task_id,) = submit(wiring, client, range(1, 2))
    wiring.take(MessageType.TASK_ASSIGN)
    output = [[task_id, int(OutputStream.STDOUT), "hello\n"], [task_id, int(OutputStream.STDERR), "oops\n"]]
    wiring.deliver(b"w1", MessageType.TASK_OUTPUT, output)
    assert wiring.take(MessageType.OUTPUT_FROM_WORKER) == [(b"client", ["w1", output])]
    wiring.connect_worker("w2")  # a worker that does not hold the task cannot speak for it
    wiring.deliver(b"w2", MessageType.TASK_OUTPUT, output)
    assert wiring.take(MessageType.OUTPUT_FROM_WORKER) == []
    for bad in ([[task_id, 7, "x\n"]], [[task_id, 1, b"bytes"]], [[task_id, 1]]):
        with pytest.raises(MalformedMessage):
            wiring.core.on_message(b"w1", MessageType.TASK_OUTPUT, bad, [])


def test_events_are_logged_one_line_each(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="scaler.scheduler")
    wiring = Wiring()
    client = wiring.connect_client()
    name_function(wiring, "module.work")
    wiring.tasks.durations.observe(NAMED, 0.05)
    wiring.connect_worker("busy")
    ids = submit(wiring, client, range(1, 3), function_id=NAMED)  # one runs, one waits behind it
    wiring.deliver(b"busy", MessageType.TASKS_STARTED, ids[:1])
    wiring.connect_worker("idle")  # takes the waiting one back
    wiring.deliver(b"busy", MessageType.TASK_RESULTS, [result(ids[0], TaskStatus.RAISED, 0.01)])
    wiring.deliver(b"busy", MessageType.WORKER_DISCONNECT, [])
    wiring.deliver(b"client", MessageType.CLIENT_DISCONNECT, [])
    text = caplog.text
    assert re.search(r"client 1 \(test, pid 1 on host\) connected", text)
    assert re.search(r"worker busy \(pid \d+ on host\) connected", text)
    assert re.search(r"balancing: asked worker busy back for 1 waiting tasks, for idle", text)
    assert re.search(rf"task {ids[0]:#x} of client 1 \(module.work\) failed: raised", text)
    assert re.search(r"worker busy gone \(disconnected\)", text)
    assert re.search(r"client 1 \(test\) gone: disconnected", text)


# ---------------------------------------------------------------------------------------------- a live cluster


def spin(seconds: float) -> int:
    """Keep one core busy for ``seconds``."""
    import time

    end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < end:
        count += 1
    return count


@pytest.mark.timeout(120)
def test_a_live_cluster_publishes_every_documented_section() -> None:
    names = ["monitor-alpha", "monitor-beta"]
    with SchedulerClusterCombo(n_workers=2, worker_names=names, heartbeat_interval_seconds=0.5) as combo:
        monitor = default_monitor_address(combo.get_address())
        with StatusReader(monitor) as status, Client(combo.get_address()) as client:
            assert client.map(tasks.square, [(i,) for i in range(200)]) == [i * i for i in range(200)]
            with pytest.raises(ValueError):
                client.submit(tasks.raise_value_error, "boom").result(timeout=30)
            spinning = client.submit(spin, 3.0)
            seen_spans: list[list[Any]] = []

            def spinner_seen_busy() -> bool:
                current = status.latest()
                seen_spans.extend(current["task_stream"])
                workers = current["workers"]
                return any(w["cpu_percent"] > 60 and any(p["busy"] for p in w["processors"]) for w in workers)

            # A processor spinning on one core shows near 100 % of one core, not a share of the machine.
            assert wait_until(spinner_seen_busy, timeout_seconds=10), status.latest()["workers"]
            running = status.latest()["tasks"]
            assert running["running"] == 1 and running["unfinished"] == 1
            assert spinning.result(timeout=30) > 0

            def settled() -> bool:
                current = status.latest()
                seen_spans.extend(current["task_stream"])
                return current["tasks"]["unfinished"] == 0 and current["tasks"]["succeeded"] == 201

            assert wait_until(settled, timeout_seconds=10)
            current = status.latest()
        assert current["version"] == STATUS_VERSION
        scheduler = current["scheduler"]
        assert scheduler["address"] == combo.get_address() and scheduler["messages_received"] > 0
        assert scheduler["messages_sent"] > 0 and scheduler["rss_bytes"] > 0
        counts = current["tasks"]
        assert (counts["submitted"], counts["succeeded"], counts["failed"], counts["cancelled"]) == (202, 201, 1, 0)
        assert counts["ended_per_second_last_minute"] > 0 and counts["throughput_history"]
        assert sorted(w["name"] for w in current["workers"]) == names
        assert sum(w["succeeded"] for w in current["workers"]) == 201
        assert sum(w["failed"] for w in current["workers"]) == 1
        assert all(w["heartbeat_age_seconds"] < 5 and len(w["processors"]) == 1 for w in current["workers"])
        functions = {line["name"]: line for line in current["functions"]}
        assert functions["square"]["count"] == 200 and functions["square"]["failures"] == 0
        assert functions["raise_value_error"]["failures"] == 1
        assert functions["spin"]["max_seconds"] >= 3.0
        assert current["objects"]["functions"] == 3 and current["objects"]["count"] == 0
        assert {name for worker, name, *_ in seen_spans if worker in names} >= {"spin"}


def run_client_script(address: str, stream_output: bool) -> subprocess.CompletedProcess[str]:
    """Run a client in its own process (its stdout is its own, apart from the workers') and capture its output."""
    script = textwrap.dedent(
        f"""
        import sys
        from scaler import Client
        from tests import tasks

        def shout(i):
            print("hello", i)
            print("line-%d-" % i + "x" * 5000)
            print("warning", i, file=sys.stderr)
            print("unfinished", end="")
            return i

        with Client({address!r}, stream_output={stream_output}) as client:
            results = client.map(shout, [(i,) for i in range(40)])
        print("results", sum(results))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        check=True,
    )


@pytest.mark.timeout(120)
def test_what_a_task_prints_reaches_the_clients_stdout_only_when_asked() -> None:
    names = ["out-alpha", "out-beta"]
    with SchedulerClusterCombo(n_workers=2, worker_names=names) as combo:
        streamed = run_client_script(combo.get_address(), stream_output=True)
        quiet = run_client_script(combo.get_address(), stream_output=False)
    stdout_lines = streamed.stdout.splitlines()
    assert stdout_lines[-1] == f"results {sum(range(40))}"
    prefix = r"\[(out-alpha|out-beta)\] "
    for i in range(40):
        assert sum(bool(re.fullmatch(prefix + f"hello {i}", line)) for line in stdout_lines) == 1
        # A long line arrives whole: lines of tasks running at once never mix within a line.
        assert sum(bool(re.fullmatch(prefix + f"line-{i}-" + "x" * 5000, line)) for line in stdout_lines) == 1
    assert all(re.fullmatch(prefix + r"(hello \d+|line-\d+-x{5000}|unfinished)", line) for line in stdout_lines[:-1])
    assert len([line for line in stdout_lines if line.endswith("] unfinished")]) == 40
    stderr_lines = [line for line in streamed.stderr.splitlines() if "warning" in line]
    assert sorted(stderr_lines, key=lambda line: int(line.split()[-1])) == sorted(
        stderr_lines, key=lambda line: int(line.split()[-1])
    )
    assert len(stderr_lines) == 40 and all(re.fullmatch(prefix + r"warning \d+", line) for line in stderr_lines)
    assert quiet.stdout.splitlines() == [f"results {sum(range(40))}"]
    assert "warning" not in quiet.stderr


@pytest.mark.timeout(120)
def test_the_scheduler_log_tells_joins_leaves_and_failures(tmp_path: Path) -> None:
    log_file = tmp_path / "scheduler.log"
    with SchedulerClusterCombo(
        n_workers=1, worker_names=["logged-worker"], logging_paths=[str(log_file)], logging_level="INFO"
    ) as combo:
        with Client(combo.get_address()) as client:
            with pytest.raises(ValueError):
                client.submit(tasks.raise_value_error, "boom").result(timeout=30)
            number = client.client_number

        def said(pattern: str) -> bool:
            return log_file.exists() and re.search(pattern, log_file.read_text()) is not None

        assert wait_until(lambda: said(rf"client {number} \(.*\) gone: disconnected"), timeout_seconds=10)
    text = log_file.read_text()
    assert re.search(rf"client {number} \(.*\) connected", text)
    assert re.search(r"worker logged-worker \(pid \d+ on .*\) connected", text)
    assert re.search(rf"task 0x[0-9a-f]+ of client {number} \(raise_value_error\) failed: raised", text)
    assert re.search(r"worker logged-worker gone \(disconnected\)", text)
