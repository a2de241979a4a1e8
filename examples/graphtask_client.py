"""Client.get: compute keys of a Dask-style task graph."""

from scaler import Client, SchedulerClusterCombo


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def main() -> None:
    graph = {
        "a": 2,
        "b": (inc, "a"),  # 3
        "c": (add, "a", "b"),  # 5
        "d": (sum, ["a", "b", "c"]),  # 10: lists of keys become lists of values
        "unused": (inc, 1000),  # not needed by the keys below, so never run
    }
    with SchedulerClusterCombo(n_workers=2) as cluster, Client(address=cluster.get_address()) as client:
        result = client.get(graph, keys=["c", "d"])
        assert result == {"c": 5, "d": 10}
        print(result)


if __name__ == "__main__":
    main()
