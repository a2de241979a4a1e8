"""ScalerStream: a streamz Stream whose elements are ScalerFutures of tasks on a scaler cluster."""

from __future__ import annotations

from typing import Any

from streamz import Stream  # type: ignore[import-untyped]

from scaler.client.client import Client
from scaler.streams.default_client import default_client, is_connected


class ScalerStream(Stream):
    """A streamz ``Stream`` whose elements are ScalerFutures: ``map``, ``starmap`` and ``accumulate``
    submit tasks to a scaler cluster and pass their futures on, without waiting for them.

    ``Stream.scatter()`` turns a local stream into a ScalerStream and ``gather()`` turns it back into a
    local stream of values. Buffering, windowing and joining nodes (``buffer``, ``zip``, ``partition``,
    ``sliding_window``...) work on the futures as they do on values, and stay ScalerStreams.

    Every node runs on streamz's event loop (a thread of its own unless the stream is asynchronous), so
    ``emit`` works from ordinary synchronous code.

    Examples
    --------
    >>> from scaler import Client
    >>> from scaler.streams import Stream
    >>> client = Client(address)                 # the default client: the most recent one
    >>> source = Stream()
    >>> source.scatter().map(inc).buffer(8).gather().sink(print)
    >>> for i in range(10):
    ...     source.emit(i)
    """

    def __init__(self, *args: Any, client: Client | None = None, **kwargs: Any) -> None:
        self._client = client
        self._default: Client | None = None
        kwargs["ensure_io_loop"] = True
        super().__init__(*args, **kwargs)

    @property
    def client(self) -> Client:
        """The client this node submits to: the one given to it, else its upstream's (the one
        ``scatter`` used), else the default client, looked up when the first element arrives and kept
        while it is connected."""
        if self._client is not None:
            return self._client
        for upstream in self.upstreams:
            if isinstance(upstream, ScalerStream):
                return upstream.client
        if self._default is None or not is_connected(self._default):
            self._default = default_client()
        return self._default
