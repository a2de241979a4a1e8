"""The agent's queue of tasks not yet handed to a processor: by priority, removable by id."""

from __future__ import annotations

import collections
from typing import Any

from scaler.protocol.messages import WorkerTaskField

_TASK_ID = int(WorkerTaskField.TASK_ID)
_PRIORITY = int(WorkerTaskField.PRIORITY)


class AgentTaskQueue:
    """Tasks by priority (larger first), first in first out within a priority; removal by id is O(1)."""

    def __init__(self) -> None:
        self._buckets: dict[int, collections.deque[list[Any]]] = {}
        self._priorities: list[int] = []
        self._live: dict[int, list[Any]] = {}

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, task_id: int) -> bool:
        return task_id in self._live

    def push(self, task: list[Any], front: bool = False) -> None:
        """Add a task behind the others of its priority, or ahead of them with ``front``."""
        priority = task[_PRIORITY]
        bucket = self._buckets.get(priority)
        if bucket is None:
            bucket = self._buckets[priority] = collections.deque()
            self._priorities.append(priority)
            self._priorities.sort(reverse=True)
        if front:
            bucket.appendleft(task)
        else:
            bucket.append(task)
        self._live[task[_TASK_ID]] = task

    def remove(self, task_id: int) -> list[Any] | None:
        """Take a task out by id; it is skipped when its turn comes."""
        return self._live.pop(task_id, None)

    def peek(self) -> list[Any] | None:
        """The task ``pop`` would return, left in place."""
        while self._priorities:
            bucket = self._buckets[self._priorities[0]]
            while bucket:
                task = bucket[0]
                if self._live.get(task[_TASK_ID]) is task:
                    return task
                bucket.popleft()  # stale: removed, or pushed again elsewhere
            del self._buckets[self._priorities[0]]
            self._priorities.pop(0)
        return None

    def pop(self) -> list[Any] | None:
        """The next task to run, or None."""
        while self._priorities:
            priority = self._priorities[0]
            bucket = self._buckets[priority]
            while bucket:
                task = bucket.popleft()
                task_id = task[_TASK_ID]
                # A stale entry (removed, then the same task pushed again) must not take the live one with it.
                if self._live.get(task_id) is task:
                    del self._live[task_id]
                    return task
            del self._buckets[priority]
            self._priorities.pop(0)
        return None

    def task_ids(self) -> list[int]:
        """Ids of the queued tasks, in the order they would run."""
        live = self._live
        ids: list[int] = []
        for priority in self._priorities:
            for task in self._buckets[priority]:
                task_id = task[_TASK_ID]
                if live.get(task_id) is task:
                    ids.append(task_id)
        return ids

    def clear(self) -> list[list[Any]]:
        """Remove and return every task."""
        tasks = list(self._live.values())
        self._buckets.clear()
        self._priorities.clear()
        self._live.clear()
        return tasks
