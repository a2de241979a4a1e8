"""SchedulerConfig and WorkerConfig from the settings of scaler.settings (a command line's, a combo's)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from scaler.scheduler.config import SchedulerConfig
from scaler.worker.config import WorkerConfig


def _fields_of(config_type: type, settings: Mapping[str, Any]) -> dict[str, Any]:
    fields = {field.name for field in dataclasses.fields(config_type)}
    return {name: value for name, value in settings.items() if name in fields}


def scheduler_config(settings: Mapping[str, Any]) -> SchedulerConfig:
    """The scheduler's config from the [scheduler] settings (the address included)."""
    return SchedulerConfig(**_fields_of(SchedulerConfig, settings))


def worker_config(settings: Mapping[str, Any]) -> WorkerConfig:
    """The base config of a pool's workers from the [worker] settings (the scheduler address included)."""
    return WorkerConfig(**_fields_of(WorkerConfig, settings))
