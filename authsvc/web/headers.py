"""Rate-limit headers of the calling key on whatever response a handler produces.

A caller that is admitted by its own limits (see :meth:`authsvc.verify.service.VerifyService.
authenticate`) gets the rate-limit headers of that decision on the response. The guard puts them
in the ASGI scope state with :func:`expose`; a ``before_send`` hook adds them to the response
start, so handlers need not know about them. A refused caller gets them with its 429 instead
(:class:`~authsvc.errors.RateLimited` carries them to the exception mapper).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.types import Message, Scope

STATE_KEY = "authsvc.ratelimit_headers"


def expose(request: Request[Any, Any, Any], headers: dict[str, str]) -> None:
    if headers:
        state: dict[str, Any] = request.scope.setdefault("state", {})
        state[STATE_KEY] = headers


async def add_caller_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook: put the admitted caller's rate-limit headers on the response.

    Async on purpose: Litestar runs a sync hook in a worker thread, twice per request.
    """
    if message["type"] != "http.response.start":
        return
    headers = (scope.get("state") or {}).get(STATE_KEY)
    if not headers:
        return
    present = {name.lower() for name, _ in message.get("headers", ())}
    extra = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in headers.items()
        if k.lower().encode("latin-1") not in present
    ]
    message["headers"] = [*message.get("headers", ()), *extra]
