"""Binding and addresses: a scheduler bound to every interface, reached by a host address; IPv6 addresses."""

from __future__ import annotations

import socket

import pytest

from scaler import Client, Cluster, Scheduler, SchedulerClusterCombo
from scaler.io.address import connectable_address, local_address
from tests import tasks
from tests.helpers import wait_until


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.timeout(90)
def test_an_ipv6_address_works_for_scheduler_workers_and_clients() -> None:
    if not _ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1)")
    address = local_address("::1")
    with SchedulerClusterCombo(n_workers=2, address=address) as combo, Client(address, timeout_seconds=30) as client:
        assert combo.get_address() == address
        assert client.map(tasks.add, [(i, i) for i in range(100)]) == [2 * i for i in range(100)]
        assert wait_until(lambda: len(client.scheduler_info()["workers"]) == 2, timeout_seconds=30)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("wildcard", ["0.0.0.0", "*"])
def test_a_scheduler_bound_to_every_interface_is_reached_by_a_host_address(wildcard: str) -> None:
    port = int(local_address("0.0.0.0").rsplit(":", 1)[1])
    bound = f"tcp://{wildcard}:{port}"
    reached = connectable_address(bound)
    assert reached == f"tcp://127.0.0.1:{port}"
    with Scheduler(bound) as scheduler, Cluster(reached, num_of_workers=1):
        assert scheduler.get_address() == bound
        with Client(reached, timeout_seconds=30) as client:
            assert client.submit(tasks.add, 20, 22).result(timeout=30) == 42
        if wildcard == "*" and _ipv6_loopback():  # every interface, IPv6 included
            with Client(f"tcp://[::1]:{port}", timeout_seconds=30) as client:
                assert client.submit(tasks.add, 1, 2).result(timeout=30) == 3
