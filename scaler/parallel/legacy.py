"""The spellings of pyrallel's and RLTK's constructors, turned into ParallelProcessor's and MapReduce's own.

pyrallel: ``ParallelProcessor(num_of_processor, mapper, max_size_per_mapper_queue=0, collector=None, ...)``;
RLTK: ``ParallelProcessor(input_handler, num_of_processor, max_size_per_input_queue=0, ..., output_handler=None)``;
pyrallel: ``MapReduce(num_of_process, mapper, reducer, mapper_queue_size=0, reducer_queue_size=0)``.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: Options of pyrallel and RLTK that have no meaning here: accepted and ignored.
_IGNORED_PROCESSOR_OPTIONS = frozenset(
    {
        "max_size_per_collector_queue",
        "max_size_per_output_queue",
        "use_shm",
        "enable_collector_queues",
        "single_mapper_queue",
    }
)
#: Per-process input queue sizes: with ``n`` processes, at most ``size * n`` tasks wait.
_QUEUE_SIZE_OPTIONS = ("max_size_per_mapper_queue", "max_size_per_input_queue")
_IGNORED_MAP_REDUCE_OPTIONS = frozenset({"mapper_queue_size", "reducer_queue_size"})


@dataclasses.dataclass(frozen=True)
class ProcessorArguments:
    """A ParallelProcessor's arguments, whichever spelling they came in."""

    num_of_processor: int
    mapper: Callable[..., Any]
    collector: Callable[..., Any] | None
    max_in_flight: int | None


def processor_arguments(
    first: Any, second: Any, collector: Any, max_in_flight: int | None, options: dict[str, Any]
) -> ProcessorArguments:
    """Sort out ``ParallelProcessor(8, mapper, collector)``, ``(8, mapper=..., collector=...)`` and RLTK's
    ``(mapper, 8, output_handler=...)``. Raises TypeError for a missing or doubled argument or an unknown option,
    ValueError for an option scaler cannot honour."""
    options = dict(options)
    if callable(first) and not callable(second):  # RLTK: the function first, then the number
        first, second = second, first
    number, mapper = first, second
    mapper = _one_of("mapper", mapper, "input_handler", options.pop("input_handler", None))
    collector = _one_of("collector", collector, "output_handler", options.pop("output_handler", None))
    if options.pop("enable_process_id", False):
        raise ValueError("enable_process_id is not supported: a task runs on whichever worker is free")
    if options.pop("progress", None) is not None:
        raise ValueError("progress is not supported by scaler.parallel; count the collector's calls instead")
    for name in _QUEUE_SIZE_OPTIONS:
        size = options.pop(name, 0)
        if size and max_in_flight is None and isinstance(number, int):
            max_in_flight = int(size) * number
    _drop_ignored(options, _IGNORED_PROCESSOR_OPTIONS, "ParallelProcessor")
    number = _checked_number(number)
    if mapper is None or not callable(mapper):
        raise TypeError(f"ParallelProcessor needs a callable mapper, got {mapper!r}")
    if inspect.isclass(mapper) and callable(getattr(mapper, "process", None)) and hasattr(mapper, "enter"):
        raise ValueError("pyrallel's Mapper classes are not supported: pass a function (its process method's work)")
    if collector is not None and not callable(collector):
        raise TypeError(f"the collector must be callable, got {collector!r}")
    return ProcessorArguments(number, mapper, collector, max_in_flight)


def map_reduce_options(options: dict[str, Any]) -> None:
    """Accept pyrallel's MapReduce queue sizes (ignored); TypeError for any other unknown option."""
    _drop_ignored(dict(options), _IGNORED_MAP_REDUCE_OPTIONS, "MapReduce")


def _checked_number(number: Any) -> int:
    if isinstance(number, bool) or not isinstance(number, int):
        raise TypeError(f"num_of_processor must be an integer, got {number!r}")
    if number < 1:
        raise ValueError(f"num_of_processor must be at least 1, got {number}")
    return number


def _one_of(name: str, value: Any, alias: str, alias_value: Any) -> Any:
    if alias_value is None:
        return value
    if value is not None:
        raise TypeError(f"{name} and {alias} name the same function: give one of them")
    return alias_value


def _drop_ignored(options: dict[str, Any], ignored: frozenset[str], owner: str) -> None:
    unknown = sorted(set(options) - ignored)
    if unknown:
        raise TypeError(f"{owner}() got an unexpected keyword argument {unknown[0]!r}")
    if options:
        logger.debug("%s ignores %s (no meaning for scaler)", owner, ", ".join(sorted(options)))
