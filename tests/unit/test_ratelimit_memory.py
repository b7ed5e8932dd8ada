"""MemoryLimiter specifics (the shared behaviour is in tests/contract)."""

from __future__ import annotations

import asyncio

from authsvc.clock import FrozenClock
from authsvc.ratelimit import LimitSpec, MemoryLimiter


async def test_expired_counters_are_dropped_so_memory_stays_bounded() -> None:
    clock = FrozenClock(1_700_000_000.0)
    limiter = MemoryLimiter(clock)
    one_per_second = LimitSpec("k", "n", 1, 1.0, 1)
    for round_ in range(20):
        for i in range(1_000):
            await limiter.check(f"r{round_}-{i}", [one_per_second])
        clock.advance(2.0)  # every counter of this round is now back to fresh
    # 20,000 distinct counters were touched; only about one round's worth may linger.
    assert len(limiter) <= 2 * 1_024 + 1_000


async def test_expired_counter_decides_like_a_fresh_one() -> None:
    clock = FrozenClock(1_700_000_000.0)
    limiter = MemoryLimiter(clock)
    limit = [LimitSpec("k", "n", 2, 1.0, 2)]
    await limiter.check("s", limit, cost=2)
    clock.advance(5.0)
    state = (await limiter.check("s", limit, cost=0)).states[0]
    assert (state.remaining, state.reset_s) == (2, 0.0)


async def test_concurrent_tasks_cannot_both_take_the_last_unit() -> None:
    limiter = MemoryLimiter(FrozenClock(1_700_000_000.0))
    limit = [LimitSpec("k", "n", 1, 60.0, 1), LimitSpec("j", "m", 100, 60.0, 100)]
    decisions = await asyncio.gather(*(limiter.check("s", limit) for _ in range(50)))
    assert sum(d.allowed for d in decisions) == 1
    assert (await limiter.check("s", limit[1:], cost=0)).states[0].remaining == 99


async def test_aclose_forgets_every_counter() -> None:
    limiter = MemoryLimiter(FrozenClock(1_700_000_000.0))
    await limiter.check("s", [LimitSpec("k", "n", 1, 60.0, 1)])
    await limiter.aclose()
    assert len(limiter) == 0
