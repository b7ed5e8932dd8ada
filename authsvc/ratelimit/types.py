"""Rate-limit values and the GCRA arithmetic both limiters share.

GCRA (the generic cell rate algorithm of ITU-T I.371 / ATM Forum TM 4.0, the same idea as a
leaky bucket "as a meter") keeps one number per counter: the *theoretical arrival time*
(TAT), the instant at which the counter would be back to empty if nothing else arrived.
With emission interval ``T = period_s / limit`` and tolerance ``tau = T * burst``, a request
of cost ``c`` arriving at ``now`` is admitted iff::

    max(TAT, now) + c*T - now <= tau

and on admission ``TAT := max(TAT, now) + c*T``. A fresh counter therefore admits exactly
``burst`` back-to-back cost-1 requests, then one every ``T``: a smooth rate with no window
boundary at which a client can double its quota, and O(1) state.

All arithmetic here is on whole microseconds so the in-process limiter and the Redis script
(Lua numbers are doubles, exact below 2**53) reach bit-identical decisions. ``T`` is
rounded *up* to a whole microsecond: the limiter can only ever be stricter than configured
(by less than 1 µs per request, i.e. < 0.1 % for any T >= 1 ms), never more lenient. That
caps a single counter at 1,000,000 requests/s.

Nothing in this module does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

US_PER_S = 1_000_000

# Keeps now + tau comfortably below 2**53 so the Lua side stays exact; a tolerance of
# ~35 years is indistinguishable from "unlimited burst" anyway.
_MAX_TAU_US = 2**50


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """One limit to enforce on one counter."""

    key: str
    """Stable identity of the counter, e.g. ``key:<key_id>:<name>`` or ``sub:<sub>``."""
    name: str
    """The limit's configured name, reported back in :class:`LimitState` and headers."""
    limit: int
    """Requests per period."""
    period_s: float
    burst: int
    """Maximum back-to-back requests from a fresh counter (callers default it to ``limit``)."""

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1, got {self.burst}")
        if not self.period_s > 0 or math.isinf(self.period_s):
            raise ValueError(f"period_s must be a positive finite number, got {self.period_s}")


@dataclass(frozen=True, slots=True)
class LimitState:
    """A counter's state right after a decision."""

    name: str
    limit: int
    remaining: int
    """How many more cost-1 requests would pass right now."""
    reset_s: float
    """Seconds until the counter is completely back to a fresh state (>= 0)."""
    period_s: float


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    states: tuple[LimitState, ...]
    retry_after_s: float
    """0 when allowed; else seconds until the same request (same cost) would pass."""
    degraded: bool = False
    """True when the backend was unreachable and the fail-open/closed policy decided."""


class Limiter(Protocol):
    async def check(self, scope: str, specs: Sequence[LimitSpec], cost: int = 1) -> Decision:
        """Decide one request against every spec atomically.

        ``scope`` is the tenant id; ``cost`` >= 0 (0 peeks without consuming).
        """
        ...

    async def aclose(self) -> None: ...


ALLOWED_NO_LIMITS = Decision(allowed=True, states=(), retry_after_s=0.0)


def validate_call(scope: str, cost: int) -> None:
    if not scope:
        # An empty hash tag "{}" makes Redis Cluster hash the whole key, which would
        # scatter one decision's keys over several slots.
        raise ValueError("scope must be a non-empty string")
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
        raise ValueError(f"cost must be an integer >= 0, got {cost!r}")


def gcra_params(spec: LimitSpec) -> tuple[int, int]:
    """Return ``(T, tau)`` in whole microseconds for ``spec``."""
    period_us = round(spec.period_s * US_PER_S)
    interval = max(1, -(-period_us // spec.limit))
    return interval, min(interval * spec.burst, _MAX_TAU_US)


def to_us(t: float) -> int:
    return round(t * US_PER_S)


def build_decision(
    allowed: bool,
    now: int,
    cost: int,
    specs: Sequence[LimitSpec],
    params: Sequence[tuple[int, int]],
    bases: Sequence[int],
) -> Decision:
    """Turn the raw outcome of a GCRA step into a :class:`Decision`.

    ``bases[i]`` is ``max(TAT_i, now)`` as the decision saw it, before this request's
    increment (for a key listed twice, it includes the earlier listing's increment).
    """
    states: list[LimitState] = []
    retry_us = 0
    never_s = 0.0
    for spec, (interval, tau), base in zip(specs, params, bases, strict=True):
        increment = interval * cost
        debt = base - now
        after = debt + increment if allowed else debt
        remaining = max(0, (tau - after) // interval)
        states.append(LimitState(spec.name, spec.limit, remaining, after / US_PER_S, spec.period_s))
        if not allowed:
            wait = debt + increment - tau
            if wait <= 0:
                continue
            if increment > tau:
                # cost > burst can never pass. An infinite Retry-After is useless to
                # clients, so report "wait for a full reset and a period" instead, which
                # is long enough to stop a naive retry loop from hammering us.
                never_s = max(never_s, debt / US_PER_S + spec.period_s)
            else:
                retry_us = max(retry_us, wait)
    retry_after_s = 0.0 if allowed else max(retry_us / US_PER_S, never_s)
    return Decision(allowed=allowed, states=tuple(states), retry_after_s=retry_after_s)
