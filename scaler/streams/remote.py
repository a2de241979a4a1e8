"""The small functions the stream nodes run on the workers.

They are pickled by value, so a worker runs them without streamz or ``scaler.streams`` installed: this
module imports nothing beyond the standard library and cloudpickle.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import cloudpickle


def identity(value: Any) -> Any:
    """``value`` itself: the task that puts a scattered element on the cluster."""
    return value


def star_apply(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], values: Any) -> Any:
    """``func(*values, *args, **kwargs)``: one step of ``starmap``, where ``values`` arrives from another task."""
    return func(*values, *args, **kwargs)


cloudpickle.register_pickle_by_value(sys.modules[__name__])
