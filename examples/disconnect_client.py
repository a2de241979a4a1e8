"""Leaving a scheduler: disconnect() cancels what is pending; shutdown() is refused while protected."""

import time

from scaler import Client, SchedulerClusterCombo, ShutdownRefusedError


def slow(x: int) -> int:
    time.sleep(10)
    return x


def main() -> None:
    with SchedulerClusterCombo(n_workers=2) as cluster:
        client = Client(address=cluster.get_address())
        futures = [client.submit(slow, i) for i in range(4)]
        try:
            client.shutdown()
        except ShutdownRefusedError as error:
            print("shutdown refused:", error)
        client.disconnect()  # the scheduler cancels this client's tasks and deletes its objects
        assert all(future.cancelled() for future in futures)
        print("disconnected; pending futures cancelled")


if __name__ == "__main__":
    main()
