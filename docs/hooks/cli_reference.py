"""MkDocs hook: the ``python -m scaler`` group as mkdocs-click documents it.

``scaler.__main__.cli`` registers each command under its subcommand name (``worker``, ``top``...), but the
command objects are named after their function, ``main``, which is what mkdocs-click would print. This
module builds, from the same group, a group whose subcommands carry their names, their help and their
arguments; their options are those of the installed scripts, documented in full on the same page. It
registers itself as the module ``scaler_docs_cli`` so that docs/cli.md can name it in a ``::: mkdocs-click``
block (``:module: scaler_docs_cli``, ``:command: python_m_scaler``).
"""

from __future__ import annotations

import inspect
import re
import sys
from typing import Any

import click

from scaler.__main__ import SUBCOMMANDS, cli

MODULE_NAME = "scaler_docs_cli"


def _subcommand(name: str, command: click.Command, script: str) -> click.Command:
    documented = "scaler_worker" if script == "scaler_cluster" else script  # scaler_cluster is scaler_worker
    first_paragraph = inspect.cleandoc(command.help or "").split("\n\n")[0]
    same = f"the command `{script}`" if script == documented else f"the command `{script}`, the same as `{documented}`"
    return click.Command(
        name=name,
        help=f"{first_paragraph}\n\nThis is {same}: its options are in [{documented}](#{documented}).",
        params=[param for param in command.params if isinstance(param, click.Argument)],
        add_help_option=False,
    )


def _group() -> click.Group:
    group = click.Group(
        name="python -m scaler",
        help=cli.help,
        epilog=cli.epilog,
        params=list(cli.params),
        context_settings=dict(cli.context_settings),
    )
    for name, (command, script) in SUBCOMMANDS.items():
        group.add_command(_subcommand(name, command, script), name=name)
    return group


python_m_scaler = _group()

sys.modules[MODULE_NAME] = sys.modules[__name__]


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    """On the command-line page, show a placeholder written in angle brackets in help texts
    (``SCALER_WORKER_<OPTION>``) as text rather than as an HTML tag."""
    if page.file.src_uri != "cli.md":
        return html
    return re.sub(r"<([A-Z][A-Z_]*)>", r"&lt;\1&gt;", html)
