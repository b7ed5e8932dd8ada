"""Rate-limit definitions as configured on keys, identities, tokens and trusted issuers.

A :class:`RateLimitDef` is ``limit`` requests per ``period_s`` with ``burst`` back to back; the
limiter enforces it on a counter named ``<holder>:<name>`` (see :func:`specs`). The counter is
identified by the limit's *name*: changing a definition keeps its counter's state, while a new
name starts a fresh counter.

Narrowing (DESIGN §8, "changes only narrow"): a set of limits ``new`` is at least as strict as
``old`` when every limit of ``old`` is still there under the same name with a rate no higher
(``limit / period_s``) and a burst no larger. New names only add restrictions. Removing or
renaming a limit would hand its holder a fresh, unlimited counter, so it loosens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authsvc.errors import Code, InvalidRequest
from authsvc.ratelimit.types import LimitSpec

_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
MAX_LIMITS = 10
_FIELDS = ("name", "limit", "period_s", "burst")


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

    def at_most(self, other: RateLimitDef) -> bool:
        """Whether this limit admits no more than ``other`` (same counter, stricter or equal)."""
        return (
            self.name == other.name
            and self.limit * other.period_s <= other.limit * self.period_s
            and self.burst <= other.burst
        )


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, code=Code.INVALID_RATELIMIT)


def parse_ratelimits(items: Sequence[Any]) -> tuple[RateLimitDef, ...]:
    """Validate ``[{name, limit, period_s, burst?}]`` (dicts or structs); burst defaults to
    limit."""
    if len(items) > MAX_LIMITS:
        raise _bad(f"At most {MAX_LIMITS} rate limits.")
    out: list[RateLimitDef] = []
    for item in items:
        fields = item if isinstance(item, Mapping) else {k: getattr(item, k, None) for k in _FIELDS}
        name, limit, period, burst = (fields.get(k) for k in _FIELDS)
        if not isinstance(name, str) or not _NAME.match(name):
            raise _bad("A rate limit needs a name of 1-64 letters, digits, '_', '.', '-'.")
        if type(limit) is not int or not 1 <= limit <= 1_000_000_000:
            raise _bad(f"Rate limit '{name}': limit must be an integer from 1 to 1e9.")
        if (
            not isinstance(period, int | float)
            or isinstance(period, bool)
            or not 0.001 <= float(period) <= 31_536_000
        ):
            raise _bad(f"Rate limit '{name}': period_s must be between 0.001 and 31536000.")
        burst = limit if burst is None else burst
        if type(burst) is not int or not 1 <= burst <= 1_000_000_000:
            raise _bad(f"Rate limit '{name}': burst must be an integer from 1 to 1e9.")
        out.append(RateLimitDef(name, limit, float(period), burst))
    if len({d.name for d in out}) != len(out):
        raise _bad("Rate limit names must be unique.")
    return tuple(out)


def ratelimits_from_json(items: Iterable[Mapping[str, Any]]) -> tuple[RateLimitDef, ...]:
    """Definitions as stored or signed (validated on the way in)."""
    return tuple(
        RateLimitDef(str(i["name"]), int(i["limit"]), float(i["period_s"]), int(i["burst"]))
        for i in items
    )


def loosened(old: Iterable[RateLimitDef], new: Iterable[RateLimitDef]) -> str | None:
    """The name of the first limit of ``old`` that ``new`` drops or loosens, else ``None``."""
    by_name = {d.name: d for d in new}
    for limit in old:
        kept = by_name.get(limit.name)
        if kept is None or not kept.at_most(limit):
            return limit.name
    return None


def specs(holder: str, defs: Iterable[RateLimitDef]) -> list[LimitSpec]:
    """Limiter specs of ``defs`` on the counters of ``holder`` (``key:<id>``, ``sub:<sub>`` …)."""
    return [LimitSpec(f"{holder}:{d.name}", d.name, d.limit, d.period_s, d.burst) for d in defs]
