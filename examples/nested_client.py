"""Nested tasks: a task receives the client and submits more tasks, even on a single worker."""

from scaler import Client, SchedulerClusterCombo


def fibonacci(client: Client, n: int) -> int:
    if n < 2:
        return n
    a = client.submit(fibonacci, client, n - 1)
    b = client.submit(fibonacci, client, n - 2)
    return a.result() + b.result()


def main() -> None:
    with SchedulerClusterCombo(n_workers=1) as cluster, Client(address=cluster.get_address()) as client:
        result = client.submit(fibonacci, client, 8).result()
        assert result == 21
        print("fibonacci(8) =", result)


if __name__ == "__main__":
    main()
