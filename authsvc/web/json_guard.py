"""Refuse JSON bodies that name a member twice.

msgspec (like most parsers) lets the last duplicate win, while other parsers keep the first: a
proxy or audit tool in front of authsvc could read ``{"scopes": ["X"], "scopes": ["ADMIN"]}``
as granting ``X`` while authsvc grants ``ADMIN``. A body with a duplicated member is therefore a
400 before any handler sees it. The check re-parses the (size-limited, already buffered) body
with the standard library only when it contains an object; ``/v1/verify``, the hot path, has a
body with four scalar members and decodes it strictly itself, so it is not re-parsed.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request

from authsvc.errors import InvalidRequest

_SKIP_PATHS = frozenset({"/v1/verify"})


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise InvalidRequest("A JSON object names the same member twice.", code="DUPLICATE_MEMBER")
    return dict(pairs)


async def reject_duplicate_members(request: Request[Any, Any, Any]) -> None:
    if request.method not in ("POST", "PUT", "PATCH") or request.url.path in _SKIP_PATHS:
        return
    body = await request.body()
    if b"{" not in body:
        return
    try:
        json.loads(body, object_pairs_hook=_no_duplicates)
    except InvalidRequest:
        raise
    except (ValueError, RecursionError):
        return  # not JSON (a form) or malformed: the handler's own decoding answers it
