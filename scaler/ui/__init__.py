"""scaler.ui: the web dashboard (``scaler_ui``), a page showing the status a scheduler publishes.

The dashboard needs the optional extra ``scaler[dashboard]`` (Starlette and uvicorn). Importing this
package does not import them: ``require_dashboard_dependencies()`` says clearly what is missing.

- ``scaler.ui.status_feed``: subscribes to a scheduler's monitor address and fans each status out.
- ``scaler.ui.app``: the Starlette application (the page, ``/api/status``, ``/api/events``, ``/healthz``).
- ``scaler.ui.server``: runs it with uvicorn, in this process or as a child process.
"""

from __future__ import annotations

import importlib

INSTALL_HINT = 'pip install "scaler[dashboard]"'


class DashboardUnavailable(ImportError):
    """The dashboard's optional dependencies (Starlette, uvicorn) are not installed."""


def require_dashboard_dependencies() -> None:
    """Raise DashboardUnavailable, naming what is missing and how to install it, unless the dashboard can run."""
    missing = []
    for module in ("starlette", "uvicorn"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise DashboardUnavailable(f"the dashboard needs {' and '.join(missing)}: {INSTALL_HINT}")


__all__ = ["DashboardUnavailable", "INSTALL_HINT", "require_dashboard_dependencies"]
