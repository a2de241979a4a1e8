"""The dashboard as a Starlette application: the page, the live event stream and a JSON API.

Routes (all relative, so the dashboard also works behind a proxy under a path prefix):

- ``/``: the page (``static/index.html``); ``/static/...``: its script and style sheet;
- ``/api/events``: Server-Sent Events, one ``data:`` line of JSON per status (the newest at once on connect);
- ``/api/status``: the newest status as JSON (503 until one has arrived);
- ``/healthz``: the dashboard's own health, with the age of the newest status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scaler.ui.status_feed import StatusFeed
from scaler.version import __version__

STATIC_DIRECTORY = Path(__file__).resolve().parent / "static"

# How long an idle event stream waits before it sends a comment, so proxies and browsers keep it open.
KEEPALIVE_SECONDS = 5.0
# How soon a browser's EventSource reconnects after losing the stream.
RECONNECT_MILLISECONDS = 1000

_SECURITY_HEADERS = [
    # Nothing of the page may come from elsewhere: scripts, styles, images and connections are same-origin only.
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class _SecurityHeaders:
    """Adds the security headers, and ``Cache-Control: no-cache`` where none is set, to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.extend(header for header in _SECURITY_HEADERS if header[0] not in names)
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-cache"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build_app(monitor_address: str, feed: StatusFeed | None = None) -> Starlette:
    """The dashboard for the scheduler publishing on ``monitor_address``.

    The feed (a new ``StatusFeed`` unless one is given) subscribes while the application runs (its lifespan);
    it is ``app.state.feed``.
    """
    status_feed = feed if feed is not None else StatusFeed(monitor_address)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await status_feed.start()
        try:
            yield
        finally:
            await status_feed.stop()

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIRECTORY / "index.html", media_type="text/html")

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    async def healthz(request: Request) -> Response:
        age = status_feed.age_seconds()
        return JSONResponse(
            {
                "ok": True,
                "version": __version__,
                "monitor_address": status_feed.monitor_address,
                "statuses_received": status_feed.statuses_received,
                "status_age_seconds": round(age, 3) if age is not None else None,
                "browsers": status_feed.subscriber_count,
            }
        )

    async def api_status(request: Request) -> Response:
        if status_feed.latest_json is None:
            return JSONResponse(
                {"error": f"no status received yet from {status_feed.monitor_address}"}, status_code=503
            )
        return Response(status_feed.latest_json, media_type="application/json")

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            with status_feed.subscribe() as subscription:
                # The age of the status that follows at once (the newest one), so the page can tell it is stale.
                age = status_feed.age_seconds()
                hello = json.dumps(
                    {
                        "monitor_address": status_feed.monitor_address,
                        "version": __version__,
                        "status_age_seconds": round(age, 3) if age is not None else None,
                    }
                )
                yield f"retry: {RECONNECT_MILLISECONDS}\nevent: hello\ndata: {hello}\n\n"
                while not subscription.closed:
                    message = await subscription.next(KEEPALIVE_SECONDS)
                    if message is not None:
                        yield f"data: {message}\n\n"
                    elif not subscription.closed:
                        yield ": keepalive\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache, no-transform", "x-accel-buffering": "no"},
        )

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/favicon.ico", favicon),
            Route("/healthz", healthz),
            Route("/api/status", api_status),
            Route("/api/events", events),
            Mount("/static", StaticFiles(directory=STATIC_DIRECTORY), name="static"),
        ],
        middleware=[Middleware(_SecurityHeaders)],
        lifespan=lifespan,
    )
    app.state.feed = status_feed
    return app
