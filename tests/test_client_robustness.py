"""The client's I/O thread survives any one bad message from its scheduler, and every future settles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from scaler import Client
from scaler.errors import TaskFailedError
from scaler.protocol.codec import encode
from scaler.protocol.messages import MessageType, TaskStatus
from scaler.serializer import DefaultSerializer
from tests.protocol_peer import ScriptedScheduler


class FakeScheduler(ScriptedScheduler):
    """Accepts one client and, once ``expected`` tasks arrived, answers with what a test gives."""

    def __init__(self, expected: int, answer: Any) -> None:
        self._expected = expected
        self._submitted: list[int] = []
        self._test_answer = answer
        super().__init__(self._reply)

    def _reply(self, msg_type: MessageType, fields: list[Any]) -> list[list[Any]]:
        if msg_type is MessageType.CLIENT_HEARTBEAT:
            return [encode(MessageType.HEARTBEAT_ECHO)]
        if msg_type is MessageType.TASK_SUBMIT:
            self._submitted.extend(item[0] for item in fields)
            if len(self._submitted) == self._expected:
                return list(self._test_answer(self._submitted))
        return []


@pytest.fixture
def serialized_three() -> bytes:
    return DefaultSerializer().serialize(3)


def test_bad_results_fail_their_own_futures_and_the_others_still_arrive(serialized_three: bytes) -> None:
    def answer(task_ids: list[int]) -> Iterator[list[Any]]:
        first, second, third, fourth = task_ids
        yield [b"\xc1 not msgpack"]
        yield encode(MessageType.TASK_RESULTS, [[first, int(TaskStatus.SUCCESS), serialized_three, ["a", "b", "c"]]])
        yield encode(MessageType.TASK_RESULTS, [[second, 99, b"x", None], "junk", [None, 0, b"", None]])
        yield encode(MessageType.TASK_RESULTS, [[third, int(TaskStatus.SUCCESS), 7, None]])  # no such frame
        yield encode(MessageType.TASK_RESULTS, [[fourth, int(TaskStatus.SUCCESS), serialized_three, None]])

    scheduler = FakeScheduler(4, answer)
    try:
        with Client(scheduler.address, timeout_seconds=10) as client:
            futures = [client.submit(int, i) for i in range(4)]
            first, second, third, fourth = futures
            assert first.result(timeout=10) == 3  # the malformed profile is dropped, the value kept
            with pytest.raises(TaskFailedError):
                second.result(timeout=10)  # an unknown status
            with pytest.raises(TaskFailedError, match="malformed result"):
                third.result(timeout=10)
            assert fourth.result(timeout=10) == 3
    finally:
        scheduler.close()
