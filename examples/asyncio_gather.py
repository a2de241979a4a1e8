"""Await Scaler futures from asyncio: asyncio.gather, and ``async for`` over scaler.as_completed."""

import asyncio

import scaler
from scaler import Client, SchedulerClusterCombo


def slow_square(value: int) -> int:
    return value * value


async def main(client: Client) -> None:
    # Each future is awaitable: the loop stays free while the tasks run on the workers.
    squares = await asyncio.gather(*(client.submit(slow_square, i) for i in range(10)))
    print("gather:", squares)
    assert squares == [i * i for i in range(10)]

    total = 0
    async for _, value in scaler.as_completed([client.submit(slow_square, i) for i in range(10)], with_results=True):
        total += value
    print("as_completed total:", total)
    assert total == sum(i * i for i in range(10))


if __name__ == "__main__":
    with SchedulerClusterCombo(n_workers=2) as cluster, Client(cluster.get_address()) as client:
        asyncio.run(main(client))
    print("asyncio_gather finished")
