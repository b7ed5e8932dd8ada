"""ASGI guard for oversized request lines (414), before any routing or parsing.

The refusal is raised as a domain error and answered by the one exception mapper
(:mod:`authsvc.web.exceptions`), like every other error.
"""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from authsvc.errors import Code, InvalidRequest

MAX_URI_BYTES = 8192


def request_limits(app: ASGIApp) -> ASGIApp:
    async def guard(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # type: ignore[comparison-overlap]
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            if size > MAX_URI_BYTES:
                raise InvalidRequest("The request URI is too long.", code=Code.URI_TOO_LONG)
        await app(scope, receive, send)

    return guard
