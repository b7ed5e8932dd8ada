"""Rate-limit definitions as configured on keys, identities and tokens (not the limiter)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from authsvc.errors import InvalidRequest

_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
MAX_LIMITS = 10
_KEYS = ("name", "limit", "period_s", "burst")


@dataclass(frozen=True, slots=True)
class RateLimitDef:
    name: str
    limit: int
    period_s: float
    burst: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "limit": self.limit,
            "period_s": self.period_s,
            "burst": self.burst,
        }


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="INVALID_RATELIMIT")


def parse_ratelimits(items: Sequence[Any]) -> tuple[RateLimitDef, ...]:
    """Validate ``[{name, limit, period_s, burst?}]``; burst defaults to limit."""
    if len(items) > MAX_LIMITS:
        raise _bad(f"At most {MAX_LIMITS} rate limits.")
    out: list[RateLimitDef] = []
    for item in items:
        fields = item if isinstance(item, dict) else {k: getattr(item, k, None) for k in _KEYS}
        name, limit, period, burst = (fields.get(k) for k in _KEYS)
        if not isinstance(name, str) or not _NAME.match(name):
            raise _bad("A rate limit needs a name of 1-64 letters, digits, '_', '.', '-'.")
        if type(limit) is not int or not 1 <= limit <= 1_000_000_000:
            raise _bad(f"Rate limit '{name}': limit must be an integer from 1 to 1e9.")
        if not isinstance(period, int | float) or not 0.001 <= float(period) <= 31_536_000:
            raise _bad(f"Rate limit '{name}': period_s must be between 0.001 and 31536000.")
        burst = limit if burst is None else burst
        if type(burst) is not int or not 1 <= burst <= 1_000_000_000:
            raise _bad(f"Rate limit '{name}': burst must be an integer from 1 to 1e9.")
        out.append(RateLimitDef(name, limit, float(period), burst))
    if len({d.name for d in out}) != len(out):
        raise _bad("Rate limit names must be unique.")
    return tuple(out)


def ratelimits_from_json(items: Sequence[dict[str, Any]]) -> tuple[RateLimitDef, ...]:
    return tuple(
        RateLimitDef(i["name"], int(i["limit"]), float(i["period_s"]), int(i["burst"]))
        for i in items
    )
