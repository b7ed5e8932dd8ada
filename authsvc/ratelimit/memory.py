"""In-process GCRA limiter for the embedded (single-instance) mode.

Same algorithm and arithmetic as the Redis limiter (see :mod:`authsvc.ratelimit.types`):
one theoretical arrival time (TAT) per counter, whole microseconds, all limits of a call
decided together and consumed only if every one admits the request.

Consistency trade-offs: the state lives in this process only, so it is exact for one
instance and meaningless across several (each would enforce the full limit on its own) and
it is lost on restart (every counter starts fresh, i.e. the restart grants at most one
extra burst). That is the right trade for embedded mode, which runs exactly one instance.

Concurrency: :meth:`MemoryLimiter.check` never awaits, so on one event loop each decision
is a critical section by construction. It is not thread-safe; use one limiter per loop.

Memory stays bounded: a counter whose TAT is in the past is indistinguishable from a fresh
one: reads treat it as fresh, and an amortised sweep drops such entries after as many
writes as there were live entries at the previous sweep (so memory is at most about twice
the live counters, and the sweep costs O(1) per write on average).
"""

from __future__ import annotations

from collections.abc import Sequence

from authsvc.clock import Clock
from authsvc.ratelimit.types import (
    ALLOWED_NO_LIMITS,
    Decision,
    LimitSpec,
    build_decision,
    gcra_params,
    to_us,
    validate_call,
)

__all__ = ["MemoryLimiter"]

_MIN_SWEEP_INTERVAL = 1024


class MemoryLimiter:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tats: dict[tuple[str, str], int] = {}
        self._writes_until_sweep = _MIN_SWEEP_INTERVAL

    def __len__(self) -> int:
        """Number of counters currently held (including not-yet-swept expired ones)."""
        return len(self._tats)

    async def check(self, scope: str, specs: Sequence[LimitSpec], cost: int = 1) -> Decision:
        validate_call(scope, cost)
        if not specs:
            return ALLOWED_NO_LIMITS
        now = to_us(self._clock.time())
        tats = self._tats
        params = [gcra_params(spec) for spec in specs]
        pending: dict[tuple[str, str], int] = {}
        bases: list[int] = []
        allowed = True
        for spec, (interval, tau) in zip(specs, params, strict=True):
            key = (scope, spec.key)
            tat = pending.get(key)
            if tat is None:
                tat = tats.get(key, now)
            base = max(tat, now)
            new_tat = base + interval * cost
            if new_tat - now > tau:
                allowed = False
            pending[key] = new_tat
            bases.append(base)
        if allowed and cost > 0:
            tats.update(pending)
            self._writes_until_sweep -= len(pending)
            if self._writes_until_sweep <= 0:
                self._sweep(now)
        return build_decision(allowed, now, cost, specs, params, bases)

    def _sweep(self, now: int) -> None:
        self._tats = {k: tat for k, tat in self._tats.items() if tat > now}
        self._writes_until_sweep = max(_MIN_SWEEP_INTERVAL, len(self._tats))

    async def aclose(self) -> None:
        self._tats.clear()
