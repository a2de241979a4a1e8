"""Dask collections computed on scaler: ``dask.compute(x, scheduler=client.get)`` against Dask's own scheduler.

Every result is compared with ``scheduler="sync"`` (Dask's local scheduler). The format guard at the top fails,
naming the type, when Dask starts producing graph nodes ``scaler.client.dask_graph`` was not written for.
"""

from __future__ import annotations

import operator
import subprocess
import sys
from typing import Any

import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
db = pytest.importorskip("dask.bag")
np = pytest.importorskip("numpy")
spec = pytest.importorskip("dask._task_spec")

from scaler import Client, GraphError  # noqa: E402
from scaler.client.dask_graph import (  # noqa: E402
    DaskNode,
    dask_request,
    handled_node_types,
    node_types_in,
    run_dask_node,
)
from tests import tasks  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def _captured_call(collection: Any) -> tuple[Any, Any]:
    """The graph and keys ``dask.compute`` hands a custom scheduler for ``collection``."""
    seen: dict[str, Any] = {}

    def scheduler(graph: Any, keys: Any, **options: Any) -> Any:
        seen["graph"], seen["keys"] = graph, keys
        return dask.local.get_sync(graph, keys)

    dask.compute(collection, scheduler=scheduler)
    return seen["graph"], seen["keys"]


def _small_collections() -> dict[str, Any]:
    """One small instance of each kind of graph the module is expected to handle."""
    x = da.arange(400, chunks=40).reshape((20, 20)).rechunk((5, 5))
    a = dask.delayed(tasks.add)(1, 2)
    return {
        "delayed with kwargs and containers": dask.delayed(tasks.describe_call)(
            [a, 3], {"k": a}, (a, "x"), key=a, other=[a, {"z": a}]
        ),
        "bag fold": db.from_sequence(range(50), npartitions=5).map(tasks.square).fold(operator.add),
        "array sum with transpose": (x + x.T).sum(),
        "array slice and rechunk": x[3:17, 2:9].rechunk((7, 7)),
        "persisted array": da.arange(30, chunks=10).persist(scheduler="sync") + 1,
    }


# ---------------------------------------------------------------- the format guard


@pytest.mark.parametrize("name", list(_small_collections()))
def test_format_guard_dask_graphs_hold_only_node_types_scaler_handles(name: str) -> None:
    graph, keys = _captured_call(_small_collections()[name])
    found = node_types_in(graph)
    unknown = sorted(f"{t.__module__}.{t.__qualname__}" for t in set(found) - handled_node_types())
    assert not unknown, (
        f"dask {dask.__version__} changed its graph format: the {name!r} graph holds node types "
        f"scaler.client.dask_graph does not handle: {unknown}. Check they run through run_dask_node "
        f"(node(values) with node.dependencies) and add them to HANDLED_NODE_TYPE_NAMES."
    )
    assert found, f"no dask._task_spec node found in the {name!r} graph: did dask change how graphs are passed?"
    assert dask_request(graph, keys) is not None, f"a dask call ({type(graph).__name__}, {keys!r}) not recognised"


def test_format_guard_node_protocol_scaler_relies_on() -> None:
    """Each handled node exposes ``dependencies`` and runs as ``node({dependency: value})``."""
    node = spec.Task(
        "t",
        tasks.describe_call,
        spec.TaskRef("a"),
        spec.List(spec.TaskRef("b"), 1),
        k=spec.Dict(x=spec.TaskRef("a")),
    )
    assert set(node.dependencies) == {"a", "b"}
    assert node({"a": 1, "b": 2}) == ((1, [2, 1]), {"k": {"x": 1}})
    assert spec.Alias("c", "a")({"a": 5}) == 5 and set(spec.Alias("c", "a").dependencies) == {"a"}
    assert spec.DataNode("d", [1])({}) == [1] and not spec.DataNode("d", 1).dependencies


class UnknownTask(spec.Task):
    """Stands for a node type a future dask might add."""


def test_format_guard_names_a_node_type_it_does_not_know(client: Client) -> None:
    inner = UnknownTask(None, tasks.square, spec.TaskRef("a"))
    graph = {"a": spec.DataNode("a", 3), "b": spec.Task("b", tasks.add, inner, 1)}
    unknown = set(node_types_in(graph)) - handled_node_types()
    assert unknown == {UnknownTask}
    assert client.get(graph, ["b"]) == dask.local.get_sync(graph, ["b"]) == (10,)  # still run by dask's own code


# ---------------------------------------------------------------- the acceptance


def test_a_1000_partition_bag_fold(client: Client) -> None:
    partitions = db.from_sequence(range(20_000), npartitions=1000)
    assert partitions.npartitions == 1000
    folded = partitions.map(tasks.square).fold(operator.add)
    assert folded.compute(scheduler=client.get) == folded.compute(scheduler="sync") == sum(i * i for i in range(20_000))
    total = partitions.sum()
    assert total.compute(scheduler=client.get) == total.compute(scheduler="sync")


def test_a_100_chunk_array_x_plus_transpose_sum(client: Client) -> None:
    x = da.random.RandomState(42).random_sample((100, 100), chunks=(10, 10))
    assert x.npartitions == 100
    y = (x + x.T).sum()
    assert y.compute(scheduler=client.get) == y.compute(scheduler="sync")
    z = da.arange(10_000, chunks=100).reshape((100, 100)).rechunk((10, 10))
    assert z.npartitions == 100
    assert (z + z.T).sum().compute(scheduler=client.get) == (z + z.T).sum().compute(scheduler="sync")


def test_a_500_node_delayed_graph(client: Client) -> None:
    nodes = [dask.delayed(i, name=f"leaf-{i}") for i in range(10)]
    while len(nodes) < 500:
        nodes.append(dask.delayed(tasks.add)(nodes[-1], nodes[len(nodes) // 2]))
    total = dask.delayed(sum)(nodes)
    assert len(total.__dask_graph__()) >= 500
    assert total.compute(scheduler=client.get) == total.compute(scheduler="sync")


def _assert_same(ours: Any, theirs: Any) -> None:
    """Equal values, recursing into containers, numpy arrays compared element by element."""
    assert type(ours) is type(theirs), (ours, theirs)
    if isinstance(theirs, np.ndarray):
        np.testing.assert_array_equal(ours, theirs)
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), (ours, theirs)
        for mine, other in zip(ours, theirs, strict=True):
            _assert_same(mine, other)
    elif isinstance(theirs, dict):
        assert list(ours) == list(theirs), (ours, theirs)
        for key in theirs:
            _assert_same(ours[key], theirs[key])
    else:
        assert ours == theirs


def test_compute_of_several_collections_comes_back_nested_as_dask_returns_it(client: Client) -> None:
    a = da.arange(100, chunks=10)
    b = db.from_sequence(range(10), npartitions=3).map(tasks.square)
    c = dask.delayed(tasks.add)(1, 2)
    ours = dask.compute(a.sum(), {"pair": [a[::30], 7], "b": b.sum()}, "plain", scheduler=client.get)
    _assert_same(ours, dask.compute(a.sum(), {"pair": [a[::30], 7], "b": b.sum()}, "plain", scheduler="sync"))
    _assert_same(ours, (np.int64(4950), {"pair": [np.array([0, 30, 60, 90]), 7], "b": 285}, "plain"))
    _assert_same(dask.compute(c, [c, 1], scheduler=client.get), (3, [3, 1]))
    # Mixing kinds of collection: dask 2026.8 groups their graphs by optimizer and can hand the values back out
    # of order with any scheduler (dask._expr._HLGExprSequence._tune_down); scaler returns what "sync" returns.
    for mixed in [(b, c, [c, b.count()]), (a.sum(), {"bag": b, "pair": [c, 7]}, a[::7], "plain")]:
        _assert_same(dask.compute(*mixed, scheduler=client.get), dask.compute(*mixed, scheduler="sync"))


def test_kwargs_and_nested_containers_in_tasks(client: Client) -> None:
    a = dask.delayed(tasks.add)(1, 2)
    b = dask.delayed(tasks.square)(a)
    call = dask.delayed(tasks.describe_call)([a, 3], {"k": b}, (a, "x"), key=a, other=[b, {"z": a}], plain=("a", 0))
    assert call.compute(scheduler=client.get) == call.compute(scheduler="sync")
    assert call.compute(scheduler=client.get) == (
        ([3, 3], {"k": 9}, (3, "x")),
        {"key": 3, "other": [9, {"z": 3}], "plain": ("a", 0)},
    )


def test_aliases_from_slicing_rechunking_and_persist(client: Client) -> None:
    x = da.arange(400, chunks=40).reshape((20, 20)).rechunk((5, 5))
    sliced = x[3:17, 2:9].rechunk((7, 7))
    graph, _ = _captured_call(sliced)
    assert any(isinstance(node, spec.Alias) for node in graph.__dask_graph__().values())
    np.testing.assert_array_equal(sliced.compute(scheduler=client.get), sliced.compute(scheduler="sync"))

    persisted = x.persist(scheduler=client.get)  # comes back as in-memory chunks: DataNodes
    np.testing.assert_array_equal(persisted.compute(scheduler="sync"), x.compute(scheduler="sync"))
    y = (persisted * 2)[::3]
    np.testing.assert_array_equal(y.compute(scheduler=client.get), y.compute(scheduler="sync"))


def test_a_failing_task_raises_its_exception_in_the_caller(client: Client) -> None:
    bad = dask.delayed(tasks.raise_value_error)("dask boom")
    after = dask.delayed(tasks.add)(bad, 1)
    with pytest.raises(ValueError, match="dask boom"):
        after.compute(scheduler=client.get)
    blocks = da.arange(10, chunks=5).map_blocks(lambda block: block if block[0] else int("chunk 0"), dtype=int)
    with pytest.raises(ValueError, match="chunk 0"):
        blocks.sum().compute(scheduler=client.get)
    assert dask.delayed(tasks.add)(1, 1).compute(scheduler=client.get) == 2  # the client still works


# ---------------------------------------------------------------- task-spec graphs given to get directly


def test_task_spec_graph_with_tuple_keys_aliases_kwargs_and_key_look_alike_data(client: Client) -> None:
    graph = {
        ("x", 0): spec.DataNode(("x", 0), 10),
        ("x", 1): spec.Task(("x", 1), tasks.add, spec.TaskRef(("x", 0)), 5),
        ("y", 0): spec.Alias(("y", 0), ("x", 1)),
        ("y", 1): spec.Alias(("y", 1), ("y", 0)),  # an alias of an alias
        "data": spec.DataNode("data", [("x", 0), "y"]),  # looks like keys, is data
        "t": spec.DataNode("t", (tasks.add, ("x", 0), 1)),  # looks like a scaler task, is data
        "z": spec.Task(
            "z",
            tasks.describe_call,
            spec.TaskRef(("y", 1)),
            ("x", 0),
            spec.TaskRef("data"),
            spec.TaskRef("t"),
            k=spec.TaskRef(("x", 0)),
        ),
        "unused": spec.Task("unused", tasks.raise_value_error, "must not run"),
    }
    keys = [["z", ("y", 1)], ("x", 0), [["data"]], "t"]
    expected = dask.local.get_sync(graph, keys)
    assert client.get(graph, keys) == expected
    assert expected == (
        (((15, ("x", 0), [("x", 0), "y"], (tasks.add, ("x", 0), 1)), {"k": 10}), 15),
        10,
        (([("x", 0), "y"],),),
        (tasks.add, ("x", 0), 1),
    )


def test_legacy_tuple_graph_with_nested_keys_and_a_high_level_graph(client: Client) -> None:
    legacy = {"a": 1, ("b", 0): (tasks.add, "a", 2), "c": (sum, ["a", ("b", 0)])}
    keys = [["c"], [("b", 0), "a"]]
    assert client.get(legacy, keys) == dask.local.get_sync(legacy, keys) == ((4,), (3, 1))

    value = dask.delayed(tasks.square)(dask.delayed(tasks.add)(2, 3))
    high_level = value.__dask_graph__()
    assert client.get(high_level, [value.key]) == dask.local.get_sync(high_level, [value.key]) == (25,)
    assert client.get(value, [value.key]) == (25,)  # an object with __dask_graph__


def test_a_shared_data_node_is_computed_once_as_a_task() -> None:
    data = np.arange(12)
    graph = {
        "data": spec.DataNode("data", data),
        "one": spec.DataNode("one", [1, 2]),
        "a": spec.Task("a", operator.getitem, spec.TaskRef("data"), 0),
        "b": spec.Task("b", operator.getitem, spec.TaskRef("data"), 1),
        "c": spec.Task("c", len, spec.TaskRef("one")),
    }
    request = dask_request(graph, ["a", "b", "c"])
    assert request is not None
    assert request.graph["one"] == [1, 2]  # one dependent: stays a literal
    shared = request.graph["data"]
    assert shared[0] is run_dask_node and isinstance(shared[1], DaskNode) and len(shared) == 2
    np.testing.assert_array_equal(run_dask_node(shared[1]), data)
    assert request.graph["a"][2:] == ("data",)  # the only key among a task's arguments: its dependency


def test_a_bad_task_spec_graph_fails_at_once(client: Client) -> None:
    missing = {"a": spec.Task("a", tasks.add, spec.TaskRef("nowhere"), 1)}
    with pytest.raises(GraphError, match="nowhere"):
        client.get(missing, ["a"])
    aliases = {"a": spec.Alias("a", "b"), "b": spec.Alias("b", "a")}
    with pytest.raises(GraphError, match="cycle"):
        client.get(aliases, ["a"])
    tasks_cycle = {
        "a": spec.Task("a", tasks.add, spec.TaskRef("b"), 1),
        "b": spec.Task("b", tasks.add, spec.TaskRef("a"), 1),
    }
    with pytest.raises(GraphError, match="cycle"):
        client.get(tasks_cycle, ["a"])


# ---------------------------------------------------------------- scaler's own graphs


def test_scaler_plain_graphs_still_take_the_old_path(client: Client) -> None:
    plain = {"a": 1, ("b", 0): (tasks.add, "a", 2), "c": (sum, ["a", ("b", 0)]), "d": [("b", 0), "a"]}
    assert dask_request(plain, ["c", ("b", 0)]) is None
    assert client.get(plain, keys=["c", ("b", 0), "d"]) == {"c": 4, ("b", 0): 3, "d": [3, 1]}


def test_scaler_imports_and_runs_plain_graphs_without_dask() -> None:
    code = (
        "import sys\n"
        "sys.modules['dask'] = None  # importing dask now fails\n"
        "import scaler\n"
        "from scaler.client.dask_graph import dask_request\n"
        "assert dask_request({'a': 1, 'b': (len, 'a')}, ['b']) is None\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=50, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
