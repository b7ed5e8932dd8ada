"""ASGI guard for oversized request heads (414, 431), before any routing or parsing.

uvicorn with httptools bounds neither the request line nor the header block, so a client could
make every request buffer and scan megabytes of headers. The guard measures what the server
parsed and refuses before the application sees the request:

- request target (path + query) over :data:`MAX_URI_BYTES`: 414 ``URI_TOO_LONG``;
- header block over :data:`MAX_HEADER_BYTES`: 431 ``HEADERS_TOO_LARGE``. The block is measured
  as on the wire, each field ``name: value`` plus CRLF (RFC 9112 §5), so ``len(name) +
  len(value) + 4`` per field. 16 KiB is twice nginx's default ``large_client_header_buffers``
  line size and far above any real credential (an API key is 35 bytes, a JWT under 2 KiB).

Both refusals are raised as domain errors and answered by the one exception mapper
(:mod:`authsvc.web.exceptions`), like every other error. The server still reads the whole head
before the guard runs: put a proxy limit in front to bound that too.
"""

from __future__ import annotations

from collections.abc import Iterable

from litestar.types import ASGIApp, Receive, Scope, Send

from authsvc.errors import Code, InvalidRequest

MAX_URI_BYTES = 8192
MAX_HEADER_BYTES = 16 * 1024


def header_block_bytes(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """Size of the header fields on the wire: ``name: value`` and CRLF each."""
    return sum(len(name) + len(value) + 4 for name, value in headers)


def request_head_limits(app: ASGIApp) -> ASGIApp:
    async def guard(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # type: ignore[comparison-overlap]
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            if size > MAX_URI_BYTES:
                raise InvalidRequest("The request URI is too long.", code=Code.URI_TOO_LONG)
            if header_block_bytes(scope["headers"]) > MAX_HEADER_BYTES:  # RFC 6585 §5
                raise InvalidRequest(
                    "The request header fields are too large.", code=Code.HEADERS_TOO_LARGE
                )
        await app(scope, receive, send)

    return guard
