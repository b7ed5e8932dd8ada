"""Which rate limits apply to a credential, as limiter specs.

* API key: its own limits (counter ``key:<key id>:<name>``) and, when the key names an
  identity, the identity's limits (``identity:<external id>:<name>``), shared by every key of
  that identity.
* JWT: ``limits.rps`` (``rps`` per second, burst ``rps``) keyed by the verified ``sub``, or by
  the ``jti`` when there is no subject, never by a free-form name; plus any ``ratelimits``
  claim (same shape as a key's limits) under the same counter prefix.

All counters of one tenant share the tenant id as limiter scope (the Redis Cluster hash tag).
Names come from the configuration, so they are reported back as configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from authsvc.keys.limits import RateLimitDef
from authsvc.keys.service import KeyRecord
from authsvc.ratelimit.types import LimitSpec

MAX_RPS = 1_000_000


def _specs(prefix: str, defs: Iterable[RateLimitDef]) -> list[LimitSpec]:
    return [LimitSpec(f"{prefix}:{d.name}", d.name, d.limit, d.period_s, d.burst) for d in defs]


def key_specs(record: KeyRecord, identity_limits: Iterable[RateLimitDef] = ()) -> list[LimitSpec]:
    specs = _specs(f"key:{record.id}", record.ratelimits)
    if record.identity is not None:
        specs += _specs(f"identity:{record.identity}", identity_limits)
    return specs


def token_specs(claims: Mapping[str, Any], *, sub: str | None, jti: str | None) -> list[LimitSpec]:
    holder = f"sub:{sub}" if sub else f"jti:{jti}" if jti else None
    if holder is None:
        return []
    specs: list[LimitSpec] = []
    limits = claims.get("limits")
    if isinstance(limits, Mapping):
        rps = limits.get("rps")
        if type(rps) is int and 1 <= rps <= MAX_RPS:
            specs.append(LimitSpec(f"{holder}:rps", "rps", rps, 1.0, rps))
    extra = claims.get("ratelimits")
    if isinstance(extra, list):
        for item in extra:
            spec = _claim_spec(holder, item)
            if spec is not None:
                specs.append(spec)
    return specs


def _claim_spec(holder: str, item: object) -> LimitSpec | None:
    """A ``ratelimits`` claim entry (signed by us, so trusted, but shape-checked)."""
    if not isinstance(item, Mapping):
        return None
    name, limit, period = item.get("name"), item.get("limit"), item.get("period_s")
    burst = item.get("burst", limit)
    if not isinstance(name, str) or type(limit) is not int or type(burst) is not int:
        return None
    if not isinstance(period, int | float) or isinstance(period, bool) or not period > 0:
        return None
    try:
        return LimitSpec(f"{holder}:{name}", name, limit, float(period), burst)
    except ValueError:
        return None
