"""Streams on a scaler cluster, with the real streamz library: ``pip install "scaler[streams]"``.

``Stream`` is streamz's own. ``Stream.scatter()`` sends every element to the cluster and returns a
``ScalerStream``, whose ``map``, ``starmap`` and ``accumulate`` submit tasks and pass their futures on;
``buffer(n)`` lets ``n`` of them run at once and ``gather()`` brings the results back, in order::

    from scaler import Client
    from scaler.streams import Stream, drain

    client = Client(address)        # scatter() uses the most recently created client by default
    source = Stream()
    source.scatter().map(inc).buffer(8).gather().sink(print)
    for i in range(10):
        source.emit(i)              # blocks while 8 tasks are unfinished
    drain(source)                   # waits for the last results

See docs/streams.md.
"""

try:
    import streamz  # type: ignore[import-untyped]  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('scaler.streams needs streamz: pip install "scaler[streams]"') from exc

from streamz import Stream

from scaler.streams import nodes  # noqa: F401  (registers scatter, gather, map... on the stream classes)
from scaler.streams.default_client import default_client, set_default_client
from scaler.streams.drain import drain
from scaler.streams.stream import ScalerStream

__all__ = ["ScalerStream", "Stream", "default_client", "drain", "set_default_client"]
