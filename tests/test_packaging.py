"""Packaging and the command lines' entry points: --version everywhere, python -m scaler, and a built wheel.

The slow test builds an sdist and a wheel with ``python -m build`` from a copy of the sources, installs
the wheel into a fresh virtual environment (no ``--system-site-packages``; pip installs the dependencies
from the package index, a few seconds with pip's cache) and runs scaler from there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scaler.version import __version__

BIN = Path(sys.executable).parent
REPOSITORY = Path(__file__).resolve().parent.parent
SCRIPTS = ["scaler_scheduler", "scaler_worker", "scaler_cluster", "scaler_top", "scaler_ui"]
SUBCOMMANDS = ["scheduler", "worker", "cluster", "top", "ui"]
# What the build needs from the source tree; copied so that building leaves the working tree untouched.
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "scaler"]

END_TO_END = """
from scaler import Client, SchedulerClusterCombo

if __name__ == "__main__":
    with SchedulerClusterCombo(n_workers=1) as cluster, Client(cluster.get_address()) as client:
        assert client.submit(pow, 2, 10).result(timeout=60) == 1024
    print("end to end ok")
"""


def _run(args: list[str], timeout: float = 30, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output as text; fail the test with that output if it does not exit 0."""
    completed = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert completed.returncode == 0, f"{args} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}"
    return completed


def _clean_env() -> dict[str, str]:
    """The environment without anything that would make a subprocess import scaler from this repository."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_command_prints_its_version(script: str) -> None:
    completed = _run([str(BIN / script), "--version"])
    assert completed.stdout.strip() == f"{script}, version {__version__}"


@pytest.mark.timeout(60)
def test_python_m_scaler_help_lists_the_subcommands_and_prints_the_version() -> None:
    help_text = _run([sys.executable, "-m", "scaler", "--help"]).stdout
    for name in SUBCOMMANDS:
        assert f"  {name} " in help_text, help_text
    assert _run([sys.executable, "-m", "scaler", "--version"]).stdout.strip() == f"scaler, version {__version__}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("subcommand", "script"), list(zip(SUBCOMMANDS, SCRIPTS, strict=True)))
def test_python_m_scaler_subcommand_is_the_same_command_as_the_script(subcommand: str, script: str) -> None:
    via_module = _run([sys.executable, "-m", "scaler", subcommand, "--help"]).stdout
    via_script = _run([str(BIN / script), "--help"]).stdout
    # The same options and text; only the program name in the usage line differs.
    assert via_module.replace(f"python -m scaler {subcommand}", script) == via_script
    assert (
        f"python -m scaler, version {__version__}"
        in _run([sys.executable, "-m", "scaler", subcommand, "--version"]).stdout
    )


@pytest.mark.timeout(60)
def test_python_m_scaler_rejects_an_unknown_subcommand_and_still_takes_an_address_for_a_scheduler() -> None:
    unknown = subprocess.run([sys.executable, "-m", "scaler", "wroker"], capture_output=True, text=True, timeout=30)
    assert unknown.returncode == 2 and "No such command 'wroker'" in unknown.stderr
    # The old form, python -m scaler ADDRESS, is read as python -m scaler scheduler ADDRESS.
    old_form = subprocess.run(
        [sys.executable, "-m", "scaler", "tcp://127.0.0.1:0"], capture_output=True, text=True, timeout=30
    )
    assert old_form.returncode == 2 and "python -m scaler scheduler" in old_form.stderr, old_form.stderr


@pytest.mark.timeout(240)
def test_built_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        path = REPOSITORY / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)

    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)], timeout=120, env=_clean_env())
    (wheel,) = dist.glob("scaler-*.whl")
    (sdist,) = dist.glob("scaler-*.tar.gz")
    assert wheel.name == f"scaler-{__version__}-py3-none-any.whl"

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"scaler-{__version__}.dist-info/METADATA").decode()
    license_file = f"scaler-{__version__}.dist-info/licenses/LICENSE"
    assert {"scaler/py.typed", "scaler/ui/static/index.html", license_file} <= names
    assert "License-Expression: Apache-2.0" in metadata
    with tarfile.open(sdist) as archive:
        assert f"scaler-{__version__}/LICENSE" in archive.getnames()

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=60)
    python = str(venv / "bin" / "python")
    env = _clean_env()
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)], timeout=150, env=env)

    # Run from an empty directory so that the repository's scaler cannot be imported by accident.
    work = tmp_path / "work"
    work.mkdir()
    imported = _run(
        [python, "-c", "import scaler; print(scaler.__version__); print(scaler.__file__)"], cwd=work, env=env
    ).stdout.split()
    assert imported[0] == __version__
    assert Path(imported[1]).resolve().is_relative_to(venv.resolve())
    worker = _run([str(venv / "bin" / "scaler_worker"), "--version"], cwd=work, env=env).stdout
    assert worker.strip() == f"scaler_worker, version {__version__}"
    assert "scheduler" in _run([python, "-m", "scaler", "--help"], cwd=work, env=env).stdout
    assert "end to end ok" in _run([python, "-c", END_TO_END], timeout=90, cwd=work, env=env).stdout
    # The README's quickstart, run by the installed wheel.
    shutil.copy2(REPOSITORY / "examples" / "quickstart.py", work / "quickstart.py")
    assert "quickstart finished" in _run([python, "quickstart.py"], timeout=90, cwd=work, env=env).stdout

    # The public API as a type checker sees it from the installed wheel (py.typed): a typed program passes
    # mypy --strict, and its deliberate mistakes are caught (a type: ignore that catches nothing fails).
    shutil.copy2(REPOSITORY / "tests" / "typed_program.py", work / "typed_program.py")
    checked = _run(
        [
            str(BIN / "mypy"),
            "--strict",
            "--warn-unused-ignores",
            "--no-incremental",
            "--python-executable",
            python,
            "typed_program.py",
        ],
        timeout=120,
        cwd=work,
        env=env,
    )
    assert "Success: no issues found" in checked.stdout
