"""Headers a route decides before it knows its response, put on whatever response it produces.

* the rate-limit headers of a caller admitted by its own limits (see :meth:`authsvc.verify.
  service.VerifyService.authenticate`; a refused caller gets them with its 429 instead, through
  :class:`~authsvc.errors.RateLimited`);
* CORS headers of the token endpoint, which error responses need as much as successes.

The route puts them in the ASGI scope state with :func:`expose`; a ``before_send`` hook adds
them to the response start (never replacing a header the response already has), so neither
handlers nor the exception mapper need to know about them.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.types import Message, Scope

STATE_KEY = "authsvc.ratelimit_headers"


def expose(request: Request[Any, Any, Any], headers: dict[str, str]) -> None:
    if headers:
        state: dict[str, Any] = request.scope.setdefault("state", {})
        state.setdefault(STATE_KEY, {}).update(headers)


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
