"""The documentation site builds in strict mode, offline, and carries the generated pages.

Runs ``mkdocs build --strict`` (mkdocs.yml) into a temporary directory: a broken link, a warning or a
public name without a docstring fails the build. Then checks that the generated content is there: the
command-line reference from the click commands, the settings reference from scaler.settings and the API
reference from the docstrings.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(90)


def _text(page: Path) -> str:
    """The visible text of a built page, without tags."""
    return re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=75,
    )
    assert completed.returncode == 0, f"mkdocs build --strict failed:\n{completed.stdout}\n{completed.stderr}"
    return site_dir


def test_every_page_of_the_navigation_is_built(site: Path) -> None:
    for page in (
        "index.html",
        "getting-started/index.html",
        "user-guide/index.html",
        "coming-from-scaler/index.html",
        "coming-from-dask/index.html",
        "compatibility/index.html",
        "monitoring/index.html",
        "fault-tolerance/index.html",
        "performance/index.html",
        "scheduling/index.html",
        "lifecycle/index.html",
        "dask/index.html",
        "streams/index.html",
        "parallel/index.html",
        "remote/index.html",
        "executor/index.html",
        "cli/index.html",
        "settings/index.html",
        "api/scaler/index.html",
        "api/streams/index.html",
        "api/remote/index.html",
        "api/parallel/index.html",
    ):
        assert (site / page).is_file(), page
    assert not (site / "hooks").exists(), "the hooks are build code, not pages"


def test_command_line_reference_is_generated_from_the_click_commands(site: Path) -> None:
    text = _text(site / "cli" / "index.html")
    for command in ("scaler_scheduler", "scaler_worker", "scaler_top", "scaler_ui", "python -m scaler worker"):
        assert command in text, command
    for option in ("--num-of-workers", "--client-timeout-seconds", "--dashboard-port", "--show-config"):
        assert option in text, option
    assert "SCALER_WORKER_&lt;OPTION&gt;" in (site / "cli" / "index.html").read_text(encoding="utf-8")


def test_settings_reference_is_generated(site: Path) -> None:
    text = _text(site / "settings" / "index.html")
    assert "<!-- settings-reference -->" not in (site / "settings" / "index.html").read_text(encoding="utf-8")
    from scaler.settings import reference_markdown  # the page is generated from it

    assert reference_markdown()
    for name in ("client_timeout_seconds", "SCALER_SCHEDULER_CLIENT_TIMEOUT_SECONDS", "num_of_workers"):
        assert name in text, name


def test_api_reference_covers_the_public_api(site: Path) -> None:
    import scaler

    page = (site / "api" / "scaler" / "index.html").read_text(encoding="utf-8")
    for name in scaler.__all__:
        if name.startswith("_"):
            continue
        assert f'id="scaler.{name}"' in page, name
    assert 'id="scaler.Client.submit"' in page
    for module, name in (("remote", "Task"), ("parallel", "MapReduce"), ("streams", "ScalerStream")):
        assert f'id="scaler.{module}.{name}"' in (site / "api" / module / "index.html").read_text(encoding="utf-8")
