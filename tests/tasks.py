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
