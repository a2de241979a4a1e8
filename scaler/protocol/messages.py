"""Every message type of scaler and the layout of its fields.

A message is a ZeroMQ multipart message: one msgpack envelope ``[type, field, ...]`` followed by
zero or more payload frames. A *payload reference* inside an envelope is either the payload itself
(``bytes``, for small payloads) or an ``int`` naming the payload frame that carries it (large
payloads travel as their own frame without copies). Payloads are user data: functions, arguments,
results and objects serialized by the client's serializer. The scheduler never decodes them.
"""

from __future__ import annotations

import enum


class MessageType(enum.IntEnum):
    """Type codes; the layout of each message's fields follows its name."""

    # client -> scheduler
    # [name, serializer_id, pid, hostname, version, parent_task_id] (see ClientConnectField)  (a peer of another scaler
    # version, or one without the version field, is refused with CLIENT_REJECTED naming both versions)
    CLIENT_CONNECT = 1
    CLIENT_HEARTBEAT = 2  # []
    OBJECT_PUT = 3  # [[object_id: bytes, payload_ref, function_name: str (function objects only)], ...]
    TASK_SUBMIT = 4  # [[task_id, function_id, priority, flags, args, keywords], ...] (see TaskField)
    TASK_CANCEL = 5  # [task_id, ...]   (also scheduler -> worker and agent -> processor)
    OBJECT_DELETE = 6  # [object_id, ...]   (also scheduler -> worker and agent -> processor)
    CLIENT_CLEAR = 7  # []
    CLIENT_DISCONNECT = 8  # []
    CLUSTER_SHUTDOWN = 9  # []
    # [task_id, ...]  keep these tasks' results in the scheduler (answered by TaskStatus.SUCCESS_HELD): a task
    # submitted next takes them as arguments, and the client fetches them only if asked
    RESULT_HOLD = 10
    RESULT_FETCH = 11  # [task_id, ...]  send these held results (answered with TASK_RESULTS)
    RESULT_RELEASE = 12  # [task_id, ...]  the client no longer needs these held results
    INFO_REQUEST = 13  # []  answered with INFO_REPLY

    # scheduler -> client
    CLIENT_ACCEPT = 20  # [client_number: int, protected: bool, scheduler_version: str]
    TASK_RESULTS = 21  # [[task_id, status, payload_ref | None, profile | None], ...] (workers add run_seconds)
    HEARTBEAT_ECHO = 22  # []
    SHUTDOWN_REPLY = 23  # [accepted: bool, reason: str]
    # [reason: str, scheduler_version: str]  the scheduler does not know this client (any more), or refuses it
    CLIENT_REJECTED = 24
    INFO_REPLY = 26  # [info: map]  the sections of the status (docs/monitoring.md) but the task stream
    OUTPUT_FROM_WORKER = 25  # [worker_name: str, [[task_id, OutputStream, text], ...]]  (TaskFlag.STREAM_OUTPUT)

    # worker agent -> scheduler
    # [name: str, pid: int, hostname: str, per_worker_queue_size: int, version: str]  (another version: WORKER_REFUSED)
    WORKER_CONNECT = 40
    WORKER_HEARTBEAT = 41  # see HeartbeatField
    TASKS_RETURNED = 42  # [[returned task_id, ...], [kept task_id, ...]]  the answer to one TASK_WITHDRAW
    WORKER_DISCONNECT = 43  # []
    TASKS_STARTED = 44  # [task_id, ...]  handed to a processor: blamed if this worker dies before they end
    # [task_id, suspended: bool]  a running task waits on nested tasks (True) and leaves its core free, or goes on
    TASK_SUSPENDED = 45
    TASK_OUTPUT = 46  # [[task_id, OutputStream, text: str], ...]  lines a task printed (also processor -> agent)

    # scheduler -> worker agent
    WORKER_ACCEPT = 60  # [scheduler_version: str]
    TASK_ASSIGN = 61  # [[[object_id, payload_ref], ...], [[task fields for workers], ...]]
    TASK_WITHDRAW = 62  # [task_id, ...]  give back these tasks if they have not started
    WORKER_SHUTDOWN = 63  # []
    WORKER_RECONNECT = 64  # []  the scheduler does not know this worker: drop every task and reconnect
    SCHEDULER_STOPPING = 65  # [reason: str]  the scheduler stops (SIGTERM, SIGINT): drop every task, wait for one
    WORKER_REFUSED = 66  # [reason: str]  the scheduler will not take this worker (another version): it exits

    # worker agent <-> processor
    PROCESSOR_READY = 80  # [pid: int]
    PROCESSOR_RUN = 81  # same layout as TASK_ASSIGN
    PROCESSOR_SUSPENDED = 82  # [task_id]  the running task waits for nested tasks
    PROCESSOR_RESUMED = 83  # [task_id]
    PROCESSOR_RESULTS = 84  # [[result items as in TASK_RESULTS, with run_seconds]]
    PROCESSOR_DROP = 85  # [task_id, ...]  forget these tasks without answering (the agent re-queued them)


class ClientConnectField(enum.IntEnum):
    """Positions of CLIENT_CONNECT's fields."""

    NAME = 0
    SERIALIZER_ID = 1
    PID = 2
    HOSTNAME = 3
    VERSION = 4  # the client's scaler version
    PARENT_TASK_ID = 5  # int | None: the task whose code created this client (a nested client), else None


class ClientAcceptField(enum.IntEnum):
    """Positions of CLIENT_ACCEPT's fields."""

    CLIENT_NUMBER = 0
    PROTECTED = 1
    VERSION = 2  # the scheduler's scaler version


class WorkerConnectField(enum.IntEnum):
    """Positions of WORKER_CONNECT's fields."""

    NAME = 0
    PID = 1
    HOSTNAME = 2
    PER_WORKER_QUEUE_SIZE = 3
    VERSION = 4  # the worker's scaler version


class TaskField(enum.IntEnum):
    """Positions of a task's fields in TASK_SUBMIT items."""

    TASK_ID = 0  # int, unique within the scheduler (client number in the high bits)
    FUNCTION_ID = 1  # bytes, id of the function object sent with OBJECT_PUT
    PRIORITY = 2  # int, larger runs first; a nested task gets its parent's priority plus one
    FLAGS = 3  # int, TaskFlag bits
    ARGS = 4  # list of [ArgumentKind, value]
    KEYWORDS = 5  # list of str naming the last len(keywords) arguments


class WorkerTaskField(enum.IntEnum):
    """Positions of a task's fields in TASK_ASSIGN and PROCESSOR_RUN items."""

    TASK_ID = 0
    FUNCTION_ID = 1
    PRIORITY = 2
    FLAGS = 3
    ARGS = 4  # list of [ArgumentKind.INLINE, payload_ref] or [ArgumentKind.OBJECT, object_id]
    KEYWORDS = 5
    SERIALIZER_ID = 6  # bytes id of the client's serializer object, or None for the default


class TaskFlag(enum.IntFlag):
    """Bits of a task's FLAGS field."""

    PROFILING = 1  # measure run time, CPU time and peak memory
    RESULT_TO_CLIENT = 2  # send the result to the client that submitted the task
    STREAM_OUTPUT = 16  # send what the task prints to stdout and stderr to its client (OUTPUT_FROM_WORKER)
    SUSPECT = 8  # was running on a worker that died: the agent runs it alone, so blame falls on it only


class ArgumentKind(enum.IntEnum):
    """How one argument of a task is given."""

    INLINE = 0  # value is a payload reference
    OBJECT = 1  # value is the id of an object in the scheduler
    TASK = 2  # value is the id of another task of the same client whose result is the argument


class TaskStatus(enum.IntEnum):
    """How a task ended, in TASK_RESULTS items."""

    SUCCESS = 0  # payload: the serialized result
    RAISED = 1  # payload: the pickled exception with its traceback
    CANCELLED = 2  # payload: None
    WORKER_DIED = 3  # payload: utf-8 text saying what happened
    PROCESSOR_DIED = 4  # payload: utf-8 text naming the exit code or signal
    TIMED_OUT = 5  # payload: utf-8 text naming the limit
    FAILED = 6  # payload: utf-8 text (bad input that no worker could run: an unknown dependency, ...)
    OBJECT_MISSING = 7  # payload: utf-8 text naming the object (or function) the task needs and nobody holds
    SUCCESS_HELD = 8  # payload: None; it succeeded and its result waits in the scheduler (RESULT_HOLD, RESULT_FETCH)
    # payload: utf-8 text; a task it depends on had ended (and its result gone to the client) before it came
    DEPENDENCY_GONE = 9


class ProfileField(enum.IntEnum):
    """Positions in the profile list of a TASK_RESULTS item."""

    DURATION_S = 0
    CPU_TIME_S = 1
    PEAK_MEMORY_BYTES = 2


class ResultField(enum.IntEnum):
    """Positions in one TASK_RESULTS (and PROCESSOR_RESULTS) item."""

    TASK_ID = 0
    STATUS = 1
    PAYLOAD = 2  # payload reference or None
    PROFILE = 3  # list of ProfileField values or None
    # Seconds the task ran (from workers only; optional): the scheduler's duration estimates learn from it.
    RUN_SECONDS = 4


class OutputStream(enum.IntEnum):
    """Which stream a line of task output was printed on."""

    STDOUT = 1
    STDERR = 2


class OutputField(enum.IntEnum):
    """Positions in one item of TASK_OUTPUT and OUTPUT_FROM_WORKER."""

    TASK_ID = 0
    STREAM = 1
    TEXT = 2  # whole lines, each ending with a newline


class OutputFromWorkerField(enum.IntEnum):
    """Positions in the fields of OUTPUT_FROM_WORKER."""

    WORKER_NAME = 0
    ITEMS = 1


class HeartbeatField(enum.IntEnum):
    """Positions in the fields of WORKER_HEARTBEAT; the last three are optional (older workers omit them)."""

    CPU_PERCENT = 0  # float: agent and processors together, percent of one core
    RSS_BYTES = 1  # int: agent and processors together
    QUEUED = 2  # int: tasks the agent holds
    PROCESSORS = 3  # int: processors it runs
    AGENT_CPU_PERCENT = 4  # float
    AGENT_RSS_BYTES = 5  # int
    PROCESSOR_FIGURES = 6  # [[pid, cpu_percent, rss_bytes, busy: bool], ...] (see ProcessorFigureField)


class ProcessorFigureField(enum.IntEnum):
    """Positions in one item of HeartbeatField.PROCESSOR_FIGURES."""

    PID = 0
    CPU_PERCENT = 1
    RSS_BYTES = 2
    BUSY = 3


class ObjectField(enum.IntEnum):
    """Positions in one item of OBJECT_PUT."""

    OBJECT_ID = 0
    PAYLOAD = 1
    FUNCTION_NAME = 2  # optional: present on function objects, the function's qualified name (for monitors)


class ProcessorResultsField(enum.IntEnum):
    """Positions in the fields of a PROCESSOR_RESULTS message."""

    ITEMS = 0


class AssignField(enum.IntEnum):
    """Positions in the fields of a TASK_ASSIGN (and PROCESSOR_RUN) message."""

    OBJECTS = 0  # [[object_id, payload_ref], ...]
    TASKS = 1  # [[task fields, see WorkerTaskField], ...]


class ArgumentField(enum.IntEnum):
    """Positions in one argument of a task: [ArgumentKind, value]."""

    KIND = 0
    VALUE = 1
