"""send_object: store a large object once and let many tasks read it."""

from scaler import Client, SchedulerClusterCombo


def count_in(table: list, value: int) -> int:
    return table.count(value)


def main() -> None:
    with SchedulerClusterCombo(n_workers=2) as cluster, Client(address=cluster.get_address()) as client:
        table = [i % 10 for i in range(1_000_000)]
        reference = client.send_object(table, name="table")  # serialized and sent once
        counts = client.map(count_in, [(reference, digit) for digit in range(10)])
        assert counts == [100_000] * 10
        print("each digit appears", counts[0], "times")


if __name__ == "__main__":
    main()
