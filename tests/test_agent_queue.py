"""The agent's task queue, without processes."""

from __future__ import annotations

from scaler.protocol.messages import WorkerTaskField
from scaler.worker.task_queue import AgentTaskQueue


def task(task_id: int, priority: int = 0) -> list[object]:
    fields: list[object] = [None] * (max(WorkerTaskField) + 1)
    fields[WorkerTaskField.TASK_ID] = task_id
    fields[WorkerTaskField.PRIORITY] = priority
    return fields


def test_a_task_removed_then_pushed_again_is_popped_once() -> None:
    queue = AgentTaskQueue()
    queue.push(task(1))
    queue.push(task(2))
    assert queue.remove(1) is not None  # withdrawn by the scheduler...
    again = task(1)
    queue.push(again)  # ...and assigned to this worker again
    popped = [queue.pop(), queue.pop(), queue.pop()]
    assert [t[WorkerTaskField.TASK_ID] for t in popped if t is not None] == [2, 1]
    assert popped[1] is again and popped[2] is None and len(queue) == 0


def test_higher_priority_first_then_first_in_first_out() -> None:
    queue = AgentTaskQueue()
    for task_id, priority in [(1, 0), (2, 1), (3, 0), (4, 1)]:
        queue.push(task(task_id, priority))
    assert [queue.pop()[WorkerTaskField.TASK_ID] for _ in range(4)] == [2, 4, 1, 3]  # type: ignore[index]


def test_task_ids_lists_live_tasks_in_running_order_without_stale_entries() -> None:
    queue = AgentTaskQueue()
    for task_id, priority in [(1, 0), (2, 1), (3, 0)]:
        queue.push(task(task_id, priority))
    queue.remove(1)
    queue.push(task(1, 0), front=True)  # re-queued ahead of its priority: the removed entry stays stale
    assert queue.task_ids() == [2, 1, 3] and len(queue) == 3
