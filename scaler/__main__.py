"""python -m scaler COMMAND ...: the command lines of scaler as subcommands of one program.

``python -m scaler scheduler|worker|cluster|top|ui|keygen ARGS`` runs the same click command as
``scaler_scheduler``, ``scaler_worker``, ``scaler_cluster``, ``scaler_top``, ``scaler_ui`` and ``scaler_keygen``;
``python -m scaler --help`` lists them and ``python -m scaler --version`` prints the version.
For compatibility, ``python -m scaler ADDRESS ...`` (a ZeroMQ address first, such as
``tcp://127.0.0.1:8516``) still runs a scheduler, as ``python -m scaler scheduler ADDRESS ...``.
"""

from __future__ import annotations

import click

from scaler.cli.keygen import main as keygen_main
from scaler.cli.scheduler import main as scheduler_main
from scaler.cli.top import main as top_main
from scaler.cli.ui import main as ui_main
from scaler.cli.worker import main as worker_main
from scaler.version import __version__

#: Subcommand name -> (click command, the installed script that runs the same command).
SUBCOMMANDS: dict[str, tuple[click.Command, str]] = {
    "scheduler": (scheduler_main, "scaler_scheduler"),
    "worker": (worker_main, "scaler_worker"),
    "cluster": (worker_main, "scaler_cluster"),
    "top": (top_main, "scaler_top"),
    "ui": (ui_main, "scaler_ui"),
    "keygen": (keygen_main, "scaler_keygen"),
}


class ScalerGroup(click.Group):
    """A click group that keeps the old ``python -m scaler ADDRESS`` form, a scheduler, working."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Read ``ADDRESS ...`` (a ZeroMQ address where a subcommand is expected) as ``scheduler ADDRESS ...``."""
        if args and "://" in args[0] and args[0] not in self.commands:
            args = ["scheduler", *args]
        return super().parse_args(ctx, args)


@click.group(
    cls=ScalerGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Each COMMAND is also installed as a script: scaler_scheduler, scaler_worker, scaler_cluster, "
    "scaler_top, scaler_ui, scaler_keygen. Run python -m scaler COMMAND --help for its options.",
)
@click.version_option(__version__, "--version", prog_name="scaler", message="%(prog)s, version %(version)s")
def cli() -> None:
    """scaler, a distributed computation engine: run one of its commands."""


for _name, (_command, _script) in SUBCOMMANDS.items():
    cli.add_command(_command, name=_name)


def main() -> None:
    """Run ``python -m scaler``."""
    cli(prog_name="python -m scaler")


if __name__ == "__main__":
    main()
