"""The scheduler survives whatever a peer sends it, then serves clients correctly."""

from __future__ import annotations

import random
from pathlib import Path

import msgpack
import pytest
import zmq

from scaler import Client, SchedulerClusterCombo
from scaler.protocol.messages import MessageType
from scaler.security import Security, apply_client
from scaler.version import __version__
from tests import tasks
from tests.cluster_parts import CurveKeys


def _random_messages(count: int, seed: int) -> list[list[bytes]]:
    rng = random.Random(seed)
    types = [int(t) for t in MessageType]
    messages: list[list[bytes]] = []
    for index in range(count):
        shape = index % 8
        if shape == 0:  # random bytes
            messages.append([rng.randbytes(rng.randint(0, 64))])
        elif shape == 1:  # several random frames
            messages.append([rng.randbytes(rng.randint(0, 16)) for _ in range(rng.randint(1, 5))])
        elif shape == 2:  # a valid type with random fields
            fields = [rng.choice([None, 1, -5, "s", b"b", [1, 2], {"k": 1}, 3.5, [[1, b"x"]]]) for _ in range(4)]
            messages.append([msgpack.packb([rng.choice(types), *fields])])
        elif shape == 3:  # a truncated envelope
            whole = msgpack.packb([int(MessageType.TASK_SUBMIT), [[1, b"f" * 16, 0, 2, [[0, b"x"]], []]]])
            messages.append([whole[: rng.randint(0, len(whole) - 1)]])
        elif shape == 4:  # unknown type codes
            messages.append([msgpack.packb([rng.randint(100, 10_000), 1, 2])])
        elif shape == 5:  # submits with a bad frame reference, from a client that never connected
            messages.append([msgpack.packb([int(MessageType.TASK_SUBMIT), [[1, b"f", 0, 2, [[0, 7]], []]]])])
        elif shape == 6:  # results claiming to come from a worker
            messages.append([msgpack.packb([int(MessageType.TASK_RESULTS), [[rng.randint(0, 2**40), 0, b"x", None]]])])
        else:  # not even a list
            messages.append([msgpack.packb(rng.choice([{"a": 1}, "text", 42, None, [], [None]]))])
    return messages


@pytest.mark.timeout(120)
@pytest.mark.parametrize("secured", [False, True], ids=["plain", "curve"])
def test_scheduler_survives_20000_malformed_frames_then_serves_a_client(secured: bool, tmp_path: Path) -> None:
    """With CURVE on, the garbage comes from a peer holding an allowed key (it passes the handshake, so the
    scheduler reads it), and more from a peer without keys (dropped at the handshake)."""
    keys = CurveKeys.create(tmp_path) if secured else None
    security = (
        Security(
            secret_key_file=keys.scheduler_options()["curve_secret_key"],
            allowed_clients=keys.scheduler_options()["curve_allowed_clients"],
        )
        if keys
        else None
    )
    client_security = keys.client() if keys else None
    with SchedulerClusterCombo(n_workers=1, security=security) as cluster:
        context = zmq.Context()
        try:
            dealer = context.socket(zmq.DEALER)
            dealer.setsockopt(zmq.LINGER, 0)
            if client_security is not None:
                apply_client(dealer, client_security)
            dealer.connect(cluster.get_address())
            for message in _random_messages(18_000, seed=7):
                dealer.send_multipart(message)
            # a peer that connects as a client and then sends garbage under that identity
            dealer.send_multipart(
                [msgpack.packb([int(MessageType.CLIENT_CONNECT), "fuzz", None, 1, "host", __version__])]
            )
            for message in _random_messages(2_000, seed=8):
                dealer.send_multipart(message)
            if client_security is not None:
                stranger = context.socket(zmq.DEALER)
                stranger.setsockopt(zmq.LINGER, 0)
                stranger.connect(cluster.get_address())
                for message in _random_messages(1_000, seed=9):
                    stranger.send_multipart(message)
                stranger.close()
            dealer.close()
        finally:
            context.term()
        with Client(cluster.get_address(), timeout_seconds=30, security=client_security) as client:
            assert client.map(tasks.add, [(i, 1) for i in range(100)]) == list(range(1, 101))
            assert client.scheduler_info()["workers"]
        assert cluster._scheduler.is_alive()
