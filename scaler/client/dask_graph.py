"""Graphs that Dask's collections hand to ``Client.get`` (``dask.compute(x, scheduler=client.get)``).

Dask calls a custom scheduler as ``get(graph, keys)``: ``graph`` is a mapping of key -> node or an object with
``__dask_graph__()`` (today an expression), its nodes are ``dask._task_spec`` objects (``Task``, ``DataNode``,
``Alias``, ``List``, ``Dict``, ... whose arguments hold ``TaskRef``s to other keys), ``keys`` is a list that may nest
lists, and the values are expected back in the nesting of ``keys``, lists becoming tuples (as ``dask.local`` does).

``dask_request`` turns such a graph into a plain scaler graph without interpreting Dask's nodes itself: every node
becomes ``(run_dask_node, DaskNode(node, dependency keys), *dependency keys)``, and the worker runs the node with
Dask's own code, ``node({dependency key: value})``. Only the dependency keys are visible to scaler, so data that looks
like a key is never mistaken for one. Aliases are followed on the client, and a ``DataNode`` needed by at most one
task stays a literal.

Dask is imported only when a graph is Dask's; scaler itself does not need Dask.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scaler.client.graph import dependencies_of, is_task
from scaler.errors import GraphCycleError, GraphKeyError

# Node classes of ``dask._task_spec`` this module was written and tested against (see ``handled_node_types``).
HANDLED_NODE_TYPE_NAMES: tuple[str, ...] = ("Task", "DataNode", "Alias", "TaskRef", "List", "Tuple", "Set", "Dict")


@dataclass(frozen=True)
class DaskRequest:
    """A Dask graph turned into a plain scaler graph, the flat keys to compute, and how Dask wants them back."""

    graph: dict[Any, Any]
    keys: list[Any]
    repack: Callable[[dict[Any, Any]], Any]


class _PlainGraph(dict):
    """A scaler graph made from a Dask graph: ``dask_request`` passes it on without looking again."""


class DaskNode:
    """One Dask graph node, shipped to a worker with the keys its dependency values stand for, in order."""

    __slots__ = ("node", "dependencies")

    def __init__(self, node: Any, dependencies: tuple[Hashable, ...]) -> None:
        self.node = node
        self.dependencies = dependencies

    def __getstate__(self) -> tuple[Any, tuple[Hashable, ...]]:
        return self.node, self.dependencies

    def __setstate__(self, state: tuple[Any, tuple[Hashable, ...]]) -> None:
        self.node, self.dependencies = state

    def __repr__(self) -> str:
        return f"DaskNode({self.node!r})"


def run_dask_node(work: DaskNode, *values: Any) -> Any:
    """Run a Dask node on a worker; ``values`` are its dependencies' values in the order of ``work.dependencies``."""
    return work.node(dict(zip(work.dependencies, values, strict=True)))


def dask_request(graph: Any, keys: Any) -> DaskRequest | None:
    """The plain form of a graph Dask sent, or None for a scaler graph (``get`` then works as documented).

    A call is Dask's when the graph has ``__dask_graph__`` (and is not a mapping), is a ``HighLevelGraph``, holds
    ``dask._task_spec`` nodes, or when ``keys`` nests lists. Raises GraphKeyError for a key or a dependency missing
    from the graph and GraphCycleError for aliases that go round in a circle, before anything runs.
    """
    if type(graph) is _PlainGraph or not _is_dask_call(graph, keys):
        return None
    try:
        from dask._task_spec import Alias, DataNode, convert_legacy_graph
    except ImportError as error:
        raise ImportError(
            "scaler runs Dask graphs made of dask._task_spec nodes; this Dask has none: upgrade dask"
        ) from error

    if not isinstance(graph, Mapping):
        graph = graph.__dask_graph__()
        if not isinstance(graph, Mapping):
            raise TypeError(f"__dask_graph__() returned {type(graph).__name__}, not a mapping")
    nodes: dict[Hashable, Any] = convert_legacy_graph(graph)  # legacy tuple tasks and literals become nodes
    resolved: dict[Hashable, Hashable] = {}

    def resolve(key: Hashable, needed_by: Hashable | None) -> Hashable:
        """The key holding ``key``'s value: ``key`` itself, or the end of its chain of aliases."""
        try:
            return resolved[key]
        except (KeyError, TypeError):
            pass
        chain: list[Hashable] = []
        current = key
        while True:
            try:
                node = nodes[current]
            except (KeyError, TypeError):
                where = "" if needed_by is None else f" (needed by {needed_by!r})"
                raise GraphKeyError(f"keys not in the graph: {[current]!r}{where}") from None
            if not isinstance(node, Alias):
                break
            chain.append(current)
            current = node.target
            if current in chain:
                raise GraphCycleError(f"the graph has a cycle of aliases through key {current!r}")
        for link in chain:
            resolved[link] = current
        resolved[key] = current
        return current

    wanted = _flatten(keys)
    flat_keys = list(dict.fromkeys(resolve(key, None) for key in wanted))

    # Everything the keys need, with each node's dependencies (as Dask names them) and where their values are.
    needed: dict[Hashable, tuple[Any, tuple[Hashable, ...], tuple[Hashable, ...]]] = {}
    dependents: collections.Counter[Hashable] = collections.Counter()
    stack = list(flat_keys)
    while stack:
        key = stack.pop()
        if key in needed:
            continue
        node = nodes[key]
        names = tuple(node.dependencies)
        sources = tuple(resolve(name, key) for name in names)
        needed[key] = (node, names, sources)
        dependents.update(set(sources))
        stack.extend(source for source in sources if source not in needed)

    plain = _PlainGraph.fromkeys(needed)  # every key present first, so literals can be checked for key look-alikes
    for key, (node, names, sources) in needed.items():
        if isinstance(node, DataNode) and dependents[key] <= 1 and _is_plain_literal(plain, node.value):
            plain[key] = node.value
        else:
            plain[key] = (run_dask_node, DaskNode(node, names), *sources)

    def repack(values: dict[Any, Any]) -> Any:
        def build(item: Any) -> Any:
            if isinstance(item, list):
                return tuple(build(inner) for inner in item)
            return values[resolved[item]]

        return build(keys)

    return DaskRequest(plain, flat_keys, repack)


def handled_node_types() -> frozenset[type]:
    """The ``dask._task_spec`` node classes this module was written and tested against (imports Dask)."""
    import dask._task_spec as spec

    return frozenset(getattr(spec, name) for name in HANDLED_NODE_TYPE_NAMES)


def node_types_in(graph: Any) -> collections.Counter[type]:
    """How many nodes of each type a Dask graph holds, nested nodes included (imports Dask).

    Walks task arguments, keyword arguments, and lists, tuples, sets and dicts inside them (a fused task keeps its
    inner nodes in a dict argument). Plain data is not counted. For the format guard: every type found here should
    be one of ``handled_node_types()``.
    """
    from dask._task_spec import GraphNode, TaskRef, convert_legacy_graph

    if not isinstance(graph, Mapping):
        graph = graph.__dask_graph__()
    found: collections.Counter[type] = collections.Counter()
    stack: list[Any] = list(convert_legacy_graph(graph).values())
    while stack:
        item = stack.pop()
        if isinstance(item, (GraphNode, TaskRef)):
            found[type(item)] += 1
            stack.extend(getattr(item, "args", ()))
            stack.extend(getattr(item, "kwargs", {}).values())
            if hasattr(item, "value") and isinstance(item, GraphNode):  # a DataNode may hold nodes as data
                stack.append(item.value)
        elif type(item) in (list, tuple, set, frozenset):
            stack.extend(item)
        elif type(item) is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
    return found


def _is_dask_call(graph: Any, keys: Any) -> bool:
    if not isinstance(graph, Mapping):
        return hasattr(graph, "__dask_graph__")
    if isinstance(keys, list) and any(isinstance(key, list) for key in keys):
        return True
    highlevelgraph = sys.modules.get("dask.highlevelgraph")
    if highlevelgraph is not None and isinstance(graph, highlevelgraph.HighLevelGraph):
        return True
    spec = sys.modules.get("dask._task_spec")  # Dask nodes exist only if Dask was imported
    if spec is None:
        return False
    return any(isinstance(value, spec.GraphNode) for value in graph.values())


def _flatten(keys: Any) -> list[Hashable]:
    """Dask's keys in order, lists (not tuples: a tuple is a key) opened."""
    if not isinstance(keys, list):
        return [keys]
    flat: list[Hashable] = []
    stack: list[Iterable[Any]] = [iter(keys)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _is_plain_literal(graph: dict[Hashable, Any], value: Any) -> bool:
    """Whether scaler keeps ``value`` as it is: not a task, and not a list or tuple holding keys of ``graph``."""
    if is_task(value):
        return False
    return not (type(value) in (list, tuple) and dependencies_of(graph, value))
