"""Every default of scaler in one place, each with a line saying what it means."""

# --- client -------------------------------------------------------------------------------------
# Seconds a client waits for its scheduler to answer before every pending future fails.
CLIENT_TIMEOUT_SECONDS = 60
# Seconds between two heartbeats a client sends to its scheduler.
CLIENT_HEARTBEAT_INTERVAL_SECONDS = 2

# --- scheduler ----------------------------------------------------------------------------------
# Seconds of silence after which the scheduler forgets a client and cancels its work.
SCHEDULER_CLIENT_TIMEOUT_SECONDS = 60
# Seconds of silence after which the scheduler declares a worker dead and re-queues its tasks.
SCHEDULER_WORKER_TIMEOUT_SECONDS = 60
# Seconds a worker may leave a withdrawal or a cancel unanswered before it is treated as dead, heartbeats or not.
SCHEDULER_WORKER_ANSWER_TIMEOUT_SECONDS = 30
# Accepted for compatibility with Scaler 1.x and without effect: an object lives until its client deletes it,
# clears or leaves, and is deleted at once then (a scheduler given another value logs a warning).
SCHEDULER_OBJECT_RETENTION_SECONDS = 3600
# Seconds between two load-balancing passes of the scheduler.
SCHEDULER_LOAD_BALANCE_SECONDS = 1.0
# Number of consecutive passes seeing the same imbalance before tasks are moved.
SCHEDULER_LOAD_BALANCE_TRIGGER_TIMES = 2
# Largest number of tasks one worker holds (reached by tiny tasks only: see docs/scheduling.md).
SCHEDULER_PER_WORKER_QUEUE_SIZE = 1000
# Largest number of tasks waiting in the scheduler for a worker; -1 means no limit.
SCHEDULER_MAX_NUMBER_OF_TASKS_WAITING = -1
# Number of ZeroMQ I/O threads of the scheduler.
SCHEDULER_IO_THREADS = 1
# Whether the scheduler refuses a client's request to shut the cluster down.
SCHEDULER_PROTECTED = True
# Seconds between two status messages on the monitor socket.
SCHEDULER_STATUS_INTERVAL_SECONDS = 1.0
# Times a task may lose its worker before it fails with WorkerDiedError (it runs at most this + 1 times).
SCHEDULER_ALLOWED_FAILURES = 3

# --- worker -------------------------------------------------------------------------------------
# Seconds between two heartbeats a worker sends to its scheduler.
WORKER_HEARTBEAT_INTERVAL_SECONDS = 2
# Seconds a task may run before it is stopped and fails with TimeoutError; 0 means no limit.
WORKER_TASK_TIMEOUT_SECONDS = 0
# Seconds without a word from the scheduler after which a worker exits by itself.
WORKER_DEATH_TIMEOUT_SECONDS = 300
# Seconds between two garbage collections inside a processor.
WORKER_GARBAGE_COLLECT_INTERVAL_SECONDS = 30
# Resident memory, in bytes, above which a processor asks the C library to give memory back.
WORKER_TRIM_MEMORY_THRESHOLD_BYTES = 1024 * 1024 * 1024
# Number of ZeroMQ I/O threads of a worker agent.
WORKER_IO_THREADS = 1
# Accepted for compatibility with Scaler 1.x and without effect: a processor waiting on nested tasks is already
# idle, and a SIGSTOP would silence its client (a worker pool given True logs a warning).
WORKER_HARD_PROCESSOR_SUSPEND = False
# Target milliseconds of work handed to a processor at once: short tasks go in large batches.
WORKER_PROCESSOR_PREFETCH_MILLISECONDS = 5.0
# Largest number of tasks handed to a processor at once.
WORKER_PROCESSOR_PREFETCH_MAX = 512
# Seconds a processor keeps finished results before sending them on (bounded by each batch's end).
WORKER_RESULT_FLUSH_SECONDS = 0.002

# --- local cluster (SchedulerClusterCombo, Scheduler) ---------------------------------------------
# Seconds the combo (or Scheduler.start) waits for its scheduler to listen before it gives up with an error.
COMBO_START_TIMEOUT_SECONDS = 30.0

# --- transport ----------------------------------------------------------------------------------
# Payloads larger than this many bytes travel as their own ZeroMQ frame without copies.
PAYLOAD_INLINE_LIMIT_BYTES = 64 * 1024
# Event loop used by the scheduler and the worker agents: "builtin" or "uvloop".
EVENT_LOOP = "builtin"

# --- logging ------------------------------------------------------------------------------------
# Where log lines go; "/dev/stdout" means standard output.
LOGGING_PATHS = ("/dev/stdout",)
# Lowest level logged.
LOGGING_LEVEL = "INFO"
