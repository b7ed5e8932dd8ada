"""The calling key's own rate limits on authsvc's API.

A key with ``ratelimits`` (or an identity with limits) is limited on every authenticated call
it makes to authsvc (management, ``/v1/verify``, ``/v1/authz`` as the gateway key) exactly as
when it is verified: same counters, same GCRA, cost 1. Refused: 429 ``RATE_LIMITED`` with
``Retry-After`` and the rate-limit headers. Admitted: the headers are added to whatever
response the handler produces (a ``before_send`` hook reads them from the ASGI scope state,
so handlers need not know about them).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.types import Message, Scope

from authsvc.errors import RateLimited
from authsvc.keys.service import KeyRecord
from authsvc.ratelimit.headers import rate_limit_headers
from authsvc.services import Services

STATE_KEY = "authsvc.ratelimit_headers"


class CallerRateLimited(RateLimited):
    """The calling key exceeded its own limits; carries the headers for the 429."""

    def __init__(self, retry_after_s: float, headers: dict[str, str]) -> None:
        self.headers = headers
        super().__init__(retry_after_s, "Rate limit exceeded for this key.")


async def guard_caller(
    request: Request[Any, Any, Any], services: Services, record: KeyRecord, *, expose: bool = True
) -> None:
    """Consume one unit of the caller's limits; raise :class:`CallerRateLimited` if refused.

    ``expose=False`` keeps the caller's headers off an admitted response (``/v1/authz``,
    whose rate-limit headers must describe the end user's token, not the gateway's key).
    """
    decision = await services.verifier.key_limits(record)
    headers = rate_limit_headers(decision)
    if not decision.allowed:
        raise CallerRateLimited(decision.retry_after_s, headers)
    if headers and expose:
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
