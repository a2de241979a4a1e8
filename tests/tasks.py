"""Task functions used by the tests; in a module so workers import them by reference."""

from __future__ import annotations

import os
import time


def identity(value):
    return value


def add(a, b):
    return a + b


def square(x):
    return x * x


def raise_value_error(message):
    raise ValueError(message)


def sleep_and_return(seconds, value):
    time.sleep(seconds)
    return value


def worker_pid(_=None):
    return os.getpid()


def exit_processor(code):
    os._exit(code)


def describe_call(*args, **kwargs):
    return (args, kwargs)


def length(value):
    return len(value)


def fibonacci(client, n):
    if n < 2:
        return n
    a = client.submit(fibonacci, client, n - 1)
    b = client.submit(fibonacci, client, n - 2)
    return a.result() + b.result()


def nested_without_address(n):
    from scaler import Client

    client = Client()
    return client.submit(add, n, n).result()


class TaggingSerializer:
    """Tags every payload, and refuses untagged ones, so a test can see it is used end to end."""

    TAG = b"TAGGED:"

    def serialize(self, obj):
        import cloudpickle

        return self.TAG + cloudpickle.dumps(obj)

    def deserialize(self, payload):
        import cloudpickle

        payload = bytes(payload)
        if not payload.startswith(self.TAG):
            raise ValueError("payload without the tag")
        return cloudpickle.loads(payload[len(self.TAG):])


def receives_tagged_bytes(value):
    return value


def kill_own_worker():
    """Kill the worker agent running this task (the processor's parent); the processor dies with it."""
    import signal

    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(60)


def crash_processor():
    """Die of a segmentation fault signal (quietly: pytest's fault handler is inherited through fork)."""
    import faulthandler
    import signal

    faulthandler.disable()
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(60)


def sleep_and_report_worker(seconds, value):
    """Sleep, then return the value and the pid of the worker agent (the processor's parent)."""
    time.sleep(seconds)
    return value, os.getppid()


def nested_graph_and_map(client, x):
    """Wait on nested work through get() and map(), the way a graph or a batch inside a task does."""
    inner = client.get({"p": x, "q": (add, "p", 1), "r": (add, "p", "q")}, keys=["r"])["r"]
    return inner + sum(client.map(square, [(i,) for i in range(5)]))
