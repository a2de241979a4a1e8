"""One settings module for the command lines, the environment, configuration files and the combo.

Precedence is command line > environment > configuration file > default, shown at each level through
``--show-config`` of the installed commands, and by real clusters that behave as the winning value says.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from scaler import Client, SchedulerClusterCombo, settings
from scaler.io.address import local_address
from scaler.scheduler.config import SchedulerConfig
from scaler.worker.config import WorkerConfig
from tests import tasks
from tests.helpers import environment_without_settings, stop_processes, wait_until

BIN = Path(sys.executable).parent


def _show_config(*args: str, env: dict[str, str]) -> dict[str, str]:
    """``scaler_scheduler ... --show-config`` as {setting: the whole line}."""
    result = subprocess.run(
        [str(BIN / "scaler_scheduler"), *args, "--show-config", "tcp://127.0.0.1:5555"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = {}
    for line in result.stdout.splitlines()[1:]:
        name = line.lstrip("# ").split(" ")[0]
        lines[name] = line
    return lines


def _alive(pid: int | None) -> bool:
    return pid is not None and psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.timeout(60)
def test_default_level(tmp_path: Path) -> None:
    lines = _show_config(env=environment_without_settings())
    assert lines["client_timeout_seconds"] == "client_timeout_seconds = 60.0  # default"
    assert lines["address"] == 'address = "tcp://127.0.0.1:5555"  # command line'


@pytest.mark.timeout(60)
def test_config_file_level_beats_defaults(tmp_path: Path) -> None:
    config = _write(tmp_path / "scaler.toml", "[scheduler]\nclient_timeout_seconds = 7\n[worker]\nnum_of_workers = 3\n")
    lines = _show_config("-c", config, env=environment_without_settings())
    assert lines["client_timeout_seconds"] == f"client_timeout_seconds = 7.0  # config file {config}"
    assert lines["worker_timeout_seconds"].endswith("# default")
    # the file may also be named by SCALER_CONFIG
    lines = _show_config(env=environment_without_settings(SCALER_CONFIG=config))
    assert lines["client_timeout_seconds"] == f"client_timeout_seconds = 7.0  # config file {config}"


@pytest.mark.timeout(60)
def test_environment_level_beats_the_file(tmp_path: Path) -> None:
    config = _write(tmp_path / "scaler.toml", "[scheduler]\nclient_timeout_seconds = 7\nprotected = true\n")
    env = environment_without_settings(SCALER_SCHEDULER_CLIENT_TIMEOUT_SECONDS="8", SCALER_SCHEDULER_PROTECTED="false")
    lines = _show_config("-c", config, env=env)
    assert lines["client_timeout_seconds"] == (
        "client_timeout_seconds = 8.0  # environment SCALER_SCHEDULER_CLIENT_TIMEOUT_SECONDS"
    )
    assert lines["protected"] == "protected = false  # environment SCALER_SCHEDULER_PROTECTED"


@pytest.mark.timeout(60)
def test_command_line_level_beats_the_environment(tmp_path: Path) -> None:
    config = _write(tmp_path / "scaler.toml", "[scheduler]\nclient_timeout_seconds = 7\n")
    env = environment_without_settings(SCALER_SCHEDULER_CLIENT_TIMEOUT_SECONDS="8")
    lines = _show_config("-c", config, "--client-timeout-seconds", "9", "-lp", "/dev/stderr", env=env)
    assert lines["client_timeout_seconds"] == "client_timeout_seconds = 9.0  # command line"
    assert lines["logging_paths"] == 'logging_paths = ["/dev/stderr"]  # command line'


@pytest.mark.timeout(120)
def test_settings_from_file_and_environment_reach_the_running_processes(tmp_path: Path) -> None:
    """The file makes the scheduler unprotected (a client may shut it down) and the environment asks for two
    named workers: a real cluster does as told."""
    address = local_address()
    config = _write(
        tmp_path / "scaler.toml",
        f'[scheduler]\naddress = "{address}"\nprotected = false\nlogging_level = "WARNING"\n'
        f'[worker]\nscheduler_address = "{address}"\nworker_names = "one,two"\nlogging_level = "WARNING"\n',
    )
    env = environment_without_settings(SCALER_CONFIG=config, SCALER_WORKER_NUM_OF_WORKERS="2")
    scheduler = subprocess.Popen([str(BIN / "scaler_scheduler")], env=env, stdout=subprocess.DEVNULL)
    workers = subprocess.Popen([str(BIN / "scaler_worker")], env=env, stdout=subprocess.DEVNULL)
    try:
        with Client(address, timeout_seconds=30) as client:
            assert client.map(tasks.add, [(i, 1) for i in range(100)]) == [i + 1 for i in range(100)]
            assert wait_until(lambda: len(client.scheduler_info()["workers"]) == 2, timeout_seconds=30)
            assert sorted(w["name"] for w in client.scheduler_info()["workers"]) == ["one", "two"]
            client.shutdown()  # accepted: protected = false came from the file
        assert scheduler.wait(timeout=30) == 0
        assert workers.wait(timeout=30) == 0
    finally:
        stop_processes(workers, scheduler)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[scheduler]\nclient-timeout-seconds = 5\n", "write client_timeout_seconds"),
        ("[scheduler]\nno_such_thing = 5\n", "[scheduler] has no setting 'no_such_thing'"),
        ("[schedular]\nclient_timeout_seconds = 5\n", "no section [schedular]"),
        ("[scheduler]\nclient_timeout_seconds = -5\n", "client_timeout_seconds: -5.0 is not in the range x>0"),
        ("[scheduler\n", "is not valid TOML"),
    ],
)
def test_a_bad_configuration_file_gives_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    config = _write(tmp_path / "scaler.toml", text)
    result = subprocess.run(
        [str(BIN / "scaler_scheduler"), "-c", config, "tcp://127.0.0.1:5555"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment_without_settings(),
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_every_config_field_is_a_setting_and_every_setting_is_used() -> None:
    scheduler_fields = {field.name for field in dataclasses.fields(SchedulerConfig)}
    worker_fields = {field.name for field in dataclasses.fields(WorkerConfig)} - {"name"}
    command_only = {
        "scheduler": {"dashboard_port", "logging_paths", "logging_level", "logging_config_file"},
        "worker": {
            "num_of_workers",
            "worker_names",
            "log_hub_address",
            "logging_paths",
            "logging_level",
            "logging_config_file",
        },
    }
    assert set(settings.names("scheduler")) == scheduler_fields | command_only["scheduler"]
    assert set(settings.names("worker")) == worker_fields | command_only["worker"]


def test_a_setting_two_commands_share_is_spelled_the_same_on_both() -> None:
    for name in set(settings.names("scheduler")) & set(settings.names("worker")):
        scheduler_side, worker_side = settings.setting("scheduler", name), settings.setting("worker", name)
        assert scheduler_side.short_flags == worker_side.short_flags, name
        assert scheduler_side.long_option == worker_side.long_option, name


def test_the_settings_reference_lists_every_setting_with_its_environment_variable() -> None:
    text = settings.reference_markdown()
    for section, items in settings.SECTIONS.items():
        assert f"## [{section}]" in text
        for item in items:
            assert f"`{item.name}`" in text
            assert f"`{item.environment_variable(section)}`" in text


@pytest.mark.timeout(120)
def test_the_combo_takes_the_same_settings_by_name_and_from_a_file(tmp_path: Path) -> None:
    config = _write(tmp_path / "scaler.toml", "[worker]\ntask_timeout_seconds = 1\n[scheduler]\nprotected = false\n")
    with SchedulerClusterCombo(n_workers=1, config_file=config, status_interval_seconds=0.5, prefetch_max=4) as combo:
        with Client(combo.get_address(), timeout_seconds=30) as client:
            with pytest.raises(TimeoutError):  # task_timeout_seconds = 1 from the file's [worker] section
                client.submit(tasks.sleep_and_return, 30, 1).result(timeout=60)
            assert client.submit(tasks.add, 2, 3).result(timeout=30) == 5
            client.shutdown()  # protected = false from the file's [scheduler] section, else ShutdownRefusedError
        assert wait_until(lambda: not _alive(combo.scheduler_pid), timeout_seconds=30)


@pytest.mark.timeout(60)
def test_the_combo_takes_its_logging_from_the_files_scheduler_section(tmp_path: Path) -> None:
    log = tmp_path / "combo.log"
    config = _write(tmp_path / "scaler.toml", f'[scheduler]\nlogging_paths = ["{log}"]\nlogging_level = "INFO"\n')
    with SchedulerClusterCombo(n_workers=1, config_file=config) as combo:
        with Client(combo.get_address(), timeout_seconds=30) as client:
            assert client.submit(tasks.add, 1, 2).result(timeout=30) == 3
        assert wait_until(lambda: log.exists() and "scheduler listening on" in log.read_text(), timeout_seconds=30)
        assert wait_until(lambda: "connected to the scheduler at" in log.read_text(), timeout_seconds=30)


def test_the_combo_refuses_a_bad_value_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="client_timeout_seconds: -1"):
        SchedulerClusterCombo(n_workers=0, client_timeout_seconds=-1)
    with pytest.raises(ValueError, match="event_loop"):
        SchedulerClusterCombo(n_workers=0, event_loop="no-such-loop")
