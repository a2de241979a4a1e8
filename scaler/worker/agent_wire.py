"""Turning the messages a worker agent receives into its state machine's events.

Only the parsing lives here; the shell (scaler/worker/agent.py) adds what it observes itself (the time,
what each processor runs). Anything malformed raises MalformedMessage before the machine sees it.
"""

from __future__ import annotations

from typing import Any

from scaler.protocol.checks import as_int, as_list, resolve_object_items
from scaler.protocol.codec import MalformedMessage, resolve
from scaler.protocol.messages import ArgumentField, ArgumentKind, AssignField, ProcessorResultsField, WorkerTaskField
from scaler.worker.agent_events import (
    ObjectsDeleted,
    ProcessorResults,
    ProcessorSuspended,
    TasksAssigned,
    WithdrawRequested,
)

_TASK_FIELDS = len(WorkerTaskField)
_ARGS = int(WorkerTaskField.ARGS)
_KIND = int(ArgumentField.KIND)
_VALUE = int(ArgumentField.VALUE)
_ARGUMENT_FIELDS = len(ArgumentField)
_ASSIGN_FIELDS = len(AssignField)
_OBJECTS = int(AssignField.OBJECTS)
_TASKS = int(AssignField.TASKS)
_RESULTS_FIELDS = len(ProcessorResultsField)
_ITEMS = int(ProcessorResultsField.ITEMS)
_INLINE = int(ArgumentKind.INLINE)


def parse_assign(fields: list[Any], frames: list[Any]) -> TasksAssigned:
    """TASK_ASSIGN; inline arguments sent as frames get their frame in place of its index."""
    as_list(fields, "TASK_ASSIGN", _ASSIGN_FIELDS)
    objects = resolve_object_items(fields[_OBJECTS], frames)
    tasks = as_list(fields[_TASKS], "tasks")
    for task in tasks:
        if type(task) is not list or len(task) != _TASK_FIELDS or type(task[_ARGS]) is not list:
            raise MalformedMessage(f"a task must be a list of {_TASK_FIELDS} fields with a list of arguments")
        for arg in task[_ARGS]:
            if type(arg) is not list or len(arg) != _ARGUMENT_FIELDS:
                raise MalformedMessage("an argument must be a [kind, value] list")
            if frames and arg[_KIND] == _INLINE and type(arg[_VALUE]) is int:
                arg[_VALUE] = resolve(arg[_VALUE], frames)
    return TasksAssigned(objects, tasks)


def parse_task_ids(fields: list[Any], what: str) -> list[int]:
    """A message whose fields are task ids (TASK_CANCEL, TASK_WITHDRAW)."""
    for task_id in fields:
        as_int(task_id, f"{what} task id")
    return fields


def parse_withdraw(fields: list[Any], frames: list[Any]) -> WithdrawRequested:
    """TASK_WITHDRAW [task_id, ...]."""
    return WithdrawRequested(parse_task_ids(fields, "TASK_WITHDRAW"))


def parse_object_delete(fields: list[Any], frames: list[Any]) -> ObjectsDeleted:
    """OBJECT_DELETE [object_id, ...]."""
    for object_id in fields:
        if type(object_id) is not bytes:
            raise MalformedMessage("OBJECT_DELETE object ids must be bytes")
    return ObjectsDeleted(fields)


def parse_processor_results(processor: int, fields: list[Any], frames: list[Any]) -> ProcessorResults:
    """PROCESSOR_RESULTS from processor number ``processor``."""
    as_list(fields, "PROCESSOR_RESULTS", _RESULTS_FIELDS)
    # Items are not checked one by one: they come from this agent's own processor, on the hot path.
    items = as_list(fields[_ITEMS], "results")
    return ProcessorResults(processor, items, frames)


def parse_processor_suspended(processor: int, fields: list[Any]) -> ProcessorSuspended:
    """PROCESSOR_SUSPENDED [task_id]."""
    as_list(fields, "PROCESSOR_SUSPENDED", 1)
    task_id, *_ = fields
    return ProcessorSuspended(processor, as_int(task_id, "suspended task id"))


def parse_reason(fields: list[Any]) -> str:
    """SCHEDULER_STOPPING and WORKER_REFUSED: [reason]; a missing or odd reason reads as "no reason given"."""
    return fields[0] if fields and type(fields[0]) is str else "no reason given"


def parse_accept_version(fields: list[Any]) -> str:
    """WORKER_ACCEPT [scheduler_version]; a scheduler that sends none runs an unknown version."""
    return fields[0] if fields and type(fields[0]) is str else "(unknown version)"
