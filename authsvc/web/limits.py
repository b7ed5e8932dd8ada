"""ASGI guard for oversized request heads (414, 431), before any routing or parsing.

uvicorn with httptools bounds neither the request line nor the header block, so a client could
make every request buffer and scan megabytes of headers. The guard measures what the server
parsed and refuses before the application sees the request:

- request target (path + query) over :data:`MAX_URI_BYTES`: 414 ``URI_TOO_LONG``;
- header block over :data:`MAX_HEADER_BYTES`: 431 ``HEADERS_TOO_LARGE``. The block is measured
  as on the wire, each field ``name: value`` plus CRLF (RFC 9112 §5), so ``len(name) +
  len(value) + 4`` per field. 16 KiB is twice nginx's default ``large_client_header_buffers``
  line size and far above any real credential (an API key is 35 bytes, a JWT under 2 KiB).

The bodies are the service's JSON error shape. The server still reads the whole head before the
guard runs: put a proxy limit in front to bound that too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

MAX_URI_BYTES = 8192
MAX_HEADER_BYTES = 16 * 1024


def header_block_bytes(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """Size of the header fields on the wire: ``name: value`` and CRLF each."""
    return sum(len(name) + len(value) + 4 for name, value in headers)


async def _refuse(send: Send, status: int, message: str, code: str) -> None:
    body = json.dumps({"error": message, "code": code}).encode()
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)


def request_head_limits(app: ASGIApp) -> ASGIApp:
    async def guard(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # type: ignore[comparison-overlap]
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            if size > MAX_URI_BYTES:
                # RFC 9110 §15.5.15
                await _refuse(send, 414, "The request URI is too long.", "URI_TOO_LONG")
                return
            if header_block_bytes(scope["headers"]) > MAX_HEADER_BYTES:
                # RFC 6585 §5
                await _refuse(
                    send, 431, "The request header fields are too large.", "HEADERS_TOO_LARGE"
                )
                return
        await app(scope, receive, send)

    return guard
