"""MkDocs hook: fail the build when a public name of scaler has no docstring.

The public API is every name in ``scaler.__all__`` and in the ``__all__`` of the packages the API
reference documents (``scaler.streams``, ``scaler.remote``, ``scaler.parallel``), and, for each public
class defined in scaler, every public method and property (a name not starting with ``_``) that a class
of the scaler package defines. A name without a docstring of its own stops the build with a list of the
qualified names, so the API reference never shows an empty entry.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from typing import Any

from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.hooks.docstrings")

#: Packages whose ``__all__`` is the public API that the API reference documents.
PUBLIC_MODULES = ("scaler", "scaler.streams", "scaler.remote", "scaler.parallel")

#: Qualified names still waiting for a docstring in scaler/. They are reported, not failed on; empty the
#: set as docstrings land (a name listed here that has a docstring is reported too, so it gets removed).
PENDING: frozenset[str] = frozenset()


def _defined_in_scaler(obj: Any) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "scaler"


def _own_doc(obj: Any) -> str:
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    return (doc or "").strip()


def _member_function(member: Any) -> Any:
    """The function that carries a class member's docstring, or None if the member is not a method/property."""
    if isinstance(member, (staticmethod, classmethod)):
        return member.__func__
    if isinstance(member, property):
        return member.fget
    if inspect.isfunction(member):
        return member
    return None


def undocumented() -> list[str]:
    """Qualified names of the public API (see the module docstring) that have no docstring."""
    missing: set[str] = set()
    seen_classes: set[type] = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        if not _own_doc(module):
            missing.add(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or not _defined_in_scaler(obj):
                continue  # a version string, or a name re-exported from another library (streamz's Stream)
            if not _own_doc(obj):
                missing.add(f"{obj.__module__}.{obj.__qualname__}")
            if inspect.isclass(obj) and obj not in seen_classes:
                seen_classes.add(obj)
                missing.update(_undocumented_members(obj))
    return sorted(missing)


def _undocumented_members(cls: type) -> set[str]:
    missing: set[str] = set()
    for owner in cls.__mro__:
        if not _defined_in_scaler(owner):
            continue
        for attribute, member in vars(owner).items():
            if attribute.startswith("_"):
                continue
            function = _member_function(member)
            if function is None or not _defined_in_scaler(function):
                continue  # data, or a function borrowed from elsewhere
            if not (function.__doc__ or "").strip():
                missing.add(f"{owner.__module__}.{owner.__qualname__}.{attribute}")
    return missing


def on_config(config: Any) -> Any:
    """Check the docstrings before anything is built."""
    missing = undocumented()
    pending = [name for name in missing if name in PENDING]
    failing = [name for name in missing if name not in PENDING]
    if pending:
        log.info("docstrings still pending (listed in docs/hooks/docstrings.py): %s", ", ".join(pending))
    documented_now = sorted(PENDING - set(missing))
    if documented_now:
        log.info("these names have docstrings now, remove them from PENDING: %s", ", ".join(documented_now))
    if failing:
        raise PluginError(
            "public names of scaler without a docstring (add one, the API reference shows it):\n  "
            + "\n  ".join(failing)
        )
    return config
