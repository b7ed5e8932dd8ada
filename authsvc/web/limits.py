"""ASGI guard for oversized request lines (414), before any routing or parsing."""

from __future__ import annotations

import json

from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

MAX_URI_BYTES = 8192


def uri_limit(app: ASGIApp) -> ASGIApp:
    async def guard(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # type: ignore[comparison-overlap]
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            if size > MAX_URI_BYTES:
                body = json.dumps({"error": "The request URI is too long.", "code": "URI_TOO_LONG"})
                start: HTTPResponseStartEvent = {
                    "type": "http.response.start",
                    "status": 414,
                    "headers": [(b"content-type", b"application/json")],
                }
                await send(start)
                end: HTTPResponseBodyEvent = {
                    "type": "http.response.body",
                    "body": body.encode(),
                    "more_body": False,
                }
                await send(end)
                return
        await app(scope, receive, send)

    return guard
