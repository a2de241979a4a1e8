"""A graph whose task computes a graph of its own with a client made inside the task."""

from scaler import Client, SchedulerClusterCombo


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def inner_graph(x: int) -> int:
    client = Client()  # inside a task, Client() connects to the scheduler running it
    graph = {"p": x, "q": (inc, "p"), "r": (add, "p", "q")}
    return client.get(graph, keys=["r"])["r"]


def main() -> None:
    graph = {"a": 10, "b": (inner_graph, "a"), "c": (add, "a", "b")}
    with SchedulerClusterCombo(n_workers=2) as cluster, Client(address=cluster.get_address()) as client:
        result = client.get(graph, keys=["c"])
        assert result == {"c": 31}
        print(result)


if __name__ == "__main__":
    main()
