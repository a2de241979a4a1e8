"""python -m scaler ADDRESS: run a scheduler (see scaler_scheduler --help)."""

from scaler.cli.scheduler import main

main()
