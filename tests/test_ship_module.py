"""Code that lives only next to the client: a clear error naming the way out, and ship_module as that way."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scaler import SchedulerClusterCombo

REPOSITORY = Path(__file__).resolve().parent.parent

CLIENT = textwrap.dedent(
    """
    import sys
    from scaler import Client
    import client_only_module

    with Client(sys.argv[1]) as client:
        if sys.argv[2] == "ship":
            client.ship_module(client_only_module)
        try:
            print("result", client.submit(client_only_module.triple, 14).result(timeout=30))
        except Exception as exc:
            print("error", exc)
    """
)


@pytest.mark.timeout(120)
def test_a_module_only_the_client_has_fails_with_a_hint_and_runs_once_shipped(tmp_path: Path) -> None:
    (tmp_path / "client_only_module.py").write_text("def triple(x):\n    return 3 * x\n")
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPOSITORY)])}
    with SchedulerClusterCombo(n_workers=1) as combo:  # its workers cannot import client_only_module

        def run(mode: str) -> str:
            command = [sys.executable, str(script), combo.get_address(), mode]
            done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment, check=True)
            return done.stdout.strip().splitlines()[-1]

        refused = run("plain")
        assert refused.startswith("error") and "No module named 'client_only_module'" in refused
        assert "client.ship_module(client_only_module)" in refused
        assert run("ship") == "result 42"
