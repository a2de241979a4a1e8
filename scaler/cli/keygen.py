"""scaler_keygen DIR NAME: write a CURVE key pair, DIR/NAME.key (public) and DIR/NAME.key_secret (docs/security.md)."""

from __future__ import annotations

import os

import click
import zmq.auth

from scaler.cli.common import version_option


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.argument("name", metavar="NAME")
@click.option("--force", "-f", is_flag=True, help="overwrite NAME.key and NAME.key_secret if they exist")
@version_option
def main(directory: str, name: str, force: bool) -> None:
    """Write a CURVE key pair for scaler's security: DIR/NAME.key, the public key to hand to others (the
    scheduler's to its peers, a client's or worker's to the scheduler's allow-lists), and DIR/NAME.key_secret,
    both keys, to keep private (readable by its owner only). DIR is created if needed."""
    if not name or os.sep in name or name.startswith("."):
        raise click.BadParameter(f"{name!r} is not a plain file name", param_hint="NAME")
    public_file = os.path.join(directory, f"{name}.key")
    secret_file = os.path.join(directory, f"{name}.key_secret")
    existing = [path for path in (public_file, secret_file) if os.path.exists(path)]
    if existing and not force:
        raise click.ClickException(f"{existing[0]} exists already (--force overwrites it)")
    try:
        os.makedirs(directory, exist_ok=True)
        public_file, secret_file = zmq.auth.create_certificates(directory, name)
        os.chmod(secret_file, 0o600)
    except OSError as exc:
        raise click.ClickException(f"cannot write the keys in {directory}: {exc.strerror or exc}") from None
    click.echo(f"public key: {public_file}")
    click.echo(f"secret key: {secret_file}")


if __name__ == "__main__":
    main()
