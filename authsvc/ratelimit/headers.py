"""HTTP rate-limit headers for a :class:`~authsvc.ratelimit.types.Decision`.

Two families, because clients read both:

* IETF ``RateLimit-Policy`` / ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-10/11):
  Structured-Field Lists with one item per limit, the policy name as an sf-string::

      RateLimit-Policy: "per_min";q=100;w=60, "per_day";q=10000;w=86400
      RateLimit: "per_min";r=42;t=35, "per_day";r=9950;t=432

  ``q`` is the limit, ``w`` the period (whole seconds, >= 1 as the draft requires),
  ``r`` the remaining cost-1 requests, ``t`` the seconds until the counter is fully reset.
  GCRA refills continuously (one unit every ``period/limit``), so ``t`` is the upper bound
  after which the whole quota is back; quota starts returning well before that.
* The de-facto ``X-RateLimit-Limit/Remaining/Reset`` for the most restrictive limit (lowest
  remaining; on a tie, the later reset). ``X-RateLimit-Reset`` is delta-seconds, not an
  epoch, so it does not depend on client clocks.

On refusal, ``Retry-After`` (delta-seconds, rounded up, >= 1) says when the refused request
(same cost) would pass. It can be earlier than ``t``: with GCRA the refused request only
needs the next units to drain, not the whole counter.
"""

from __future__ import annotations

import math

from authsvc.ratelimit.types import Decision

__all__ = ["rate_limit_headers"]


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """Response headers for ``decision``; ``{}`` when no limit applied.

    A refused decision without states (Redis down and failing closed) still gets
    ``Retry-After``, so the client learns when to come back.
    """
    headers: dict[str, str] = {}
    if decision.states:
        policies: list[str] = []
        limits: list[str] = []
        for state in decision.states:
            name = _sf_string(state.name)
            window = max(1, math.ceil(state.period_s))
            policies.append(f"{name};q={state.limit};w={window}")
            limits.append(f"{name};r={state.remaining};t={_ceil_s(state.reset_s)}")
        headers["RateLimit-Policy"] = ", ".join(policies)
        headers["RateLimit"] = ", ".join(limits)
        tightest = min(decision.states, key=lambda s: (s.remaining, -s.reset_s))
        headers["X-RateLimit-Limit"] = str(tightest.limit)
        headers["X-RateLimit-Remaining"] = str(tightest.remaining)
        headers["X-RateLimit-Reset"] = str(_ceil_s(tightest.reset_s))
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, _ceil_s(decision.retry_after_s)))
    return headers


def _ceil_s(seconds: float) -> int:
    # Limiter values are whole microseconds; rounding first keeps a binary-float artefact
    # like 2.0000000000000004 from becoming 3.
    return max(0, math.ceil(round(seconds, 6)))


def _sf_string(value: str) -> str:
    """Serialise ``value`` as an RFC 9651 sf-string (printable ASCII, ``"``/``\\`` escaped)."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            # sf-string cannot carry it; a stand-in keeps the field parseable.
            out.append("?")
    return '"' + "".join(out) + '"'
