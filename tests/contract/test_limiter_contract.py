"""One behavioural contract, run against every Limiter implementation.

Time is injected (FrozenClock) in every backend, Redis included, so the assertions are
exact to the microsecond. Each test uses a fresh random scope, so runs never share
counters even on a shared Redis.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from authsvc.clock import FrozenClock
from authsvc.ratelimit import Decision, Limiter, LimitSpec, MemoryLimiter, RedisLimiter

REDIS_URL = os.environ.get("AUTHSVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START_S = 1_700_000_000  # whole seconds, so START_S*1e6 + n µs is exact in the limiter

BACKENDS = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-uncoalesced", marks=pytest.mark.redis),
]


@dataclass
class Env:
    limiter: Limiter
    clock: FrozenClock
    scope: str

    def at_us(self, us: int) -> None:
        """Put the clock ``us`` microseconds after the start of the test."""
        self.clock.set(START_S + us / 1_000_000)

    async def check(self, specs: Sequence[LimitSpec], cost: int = 1) -> Decision:
        return await self.limiter.check(self.scope, specs, cost)


async def _open(backend: str, clock: FrozenClock) -> tuple[Limiter, Callable[[], Awaitable[None]]]:
    if backend == "memory":
        limiter: Limiter = MemoryLimiter(clock)
        return limiter, limiter.aclose
    client = Redis.from_url(REDIS_URL)
    limiter = RedisLimiter(client, clock=clock, coalesce=backend == "redis")

    async def close() -> None:
        await limiter.aclose()
        await client.aclose()

    return limiter, close


@pytest.fixture(params=BACKENDS)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    clock = FrozenClock(float(START_S))
    limiter, close = await _open(request.param, clock)
    yield Env(limiter, clock, f"t-{uuid.uuid4().hex}")
    await close()


def spec(
    key: str = "k", limit: int = 10, period_s: float = 10.0, burst: int | None = None
) -> LimitSpec:
    return LimitSpec(key, key, limit, period_s, limit if burst is None else burst)


async def test_fresh_counter_admits_exactly_burst_then_one_per_interval(env: Env) -> None:
    limit = spec(limit=10, period_s=10.0, burst=4)  # T = 1 s
    assert [(await env.check([limit])).allowed for _ in range(5)] == [True] * 4 + [False]
    env.at_us(999_999)
    assert not (await env.check([limit])).allowed
    env.at_us(1_000_000)
    assert (await env.check([limit])).allowed
    assert not (await env.check([limit])).allowed
    env.at_us(3_000_000)
    assert [(await env.check([limit])).allowed for _ in range(3)] == [True, True, False]


async def test_concurrent_callers_on_one_counter_admit_exactly_burst(env: Env) -> None:
    limit = spec(limit=5, period_s=60.0)
    decisions = await asyncio.gather(*(env.check([limit]) for _ in range(40)))
    assert sum(d.allowed for d in decisions) == 5


async def test_cost_consumes_that_many_units_at_once(env: Env) -> None:
    limit = spec(limit=10, period_s=10.0)
    first = await env.check([limit], cost=4)
    assert first.allowed
    assert first.states[0].remaining == 6
    too_big = await env.check([limit], cost=7)
    assert not too_big.allowed
    assert too_big.states[0].remaining == 6
    assert too_big.retry_after_s == pytest.approx(1.0)
    exact = await env.check([limit], cost=6)
    assert exact.allowed
    assert exact.states[0].remaining == 0


async def test_cost_above_burst_is_refused_forever_with_finite_retry_after(env: Env) -> None:
    limit = spec(limit=10, period_s=10.0, burst=5)
    refused = await env.check([limit], cost=6)
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(10.0)  # a full period: "don't hammer"
    env.at_us(3600 * 1_000_000)
    assert not (await env.check([limit], cost=6)).allowed
    # ...and it consumed nothing.
    assert (await env.check([limit], cost=5)).allowed


async def test_peek_reports_state_and_consumes_nothing(env: Env) -> None:
    limit = spec(limit=10, period_s=10.0)
    await env.check([limit], cost=3)
    peeks = [await env.check([limit], cost=0) for _ in range(5)]
    assert all(p.allowed for p in peeks)
    assert {p.states[0].remaining for p in peeks} == {7}
    assert all(p.states[0].reset_s == pytest.approx(3.0) for p in peeks)
    assert (await env.check([limit], cost=7)).allowed
    exhausted = await env.check([limit], cost=0)
    # Peek is allowed while the counter is within its tolerance, even with nothing left;
    # ``remaining`` is what tells the caller a cost-1 request would be refused.
    assert exhausted.allowed
    assert exhausted.states[0].remaining == 0


async def test_peek_on_unknown_counter_creates_no_state(env: Env) -> None:
    limit = spec(limit=3, period_s=10.0)
    peek = await env.check([limit], cost=0)
    assert peek.allowed
    assert peek.states[0].remaining == 3
    assert peek.states[0].reset_s == 0.0
    assert [(await env.check([limit])).allowed for _ in range(4)] == [True, True, True, False]


async def test_refused_request_consumes_no_other_limit(env: Env) -> None:
    roomy = spec("roomy", limit=100, period_s=60.0)
    tight = spec("tight", limit=2, period_s=60.0)
    for _ in range(2):
        assert (await env.check([roomy, tight])).allowed
    for _ in range(5):
        refused = await env.check([roomy, tight])
        assert not refused.allowed
        assert [s.remaining for s in refused.states] == [98, 0]
    assert (await env.check([roomy], cost=0)).states[0].remaining == 98


async def test_refusal_reports_states_of_every_limit_in_order(env: Env) -> None:
    a, b, c = spec("a", limit=5), spec("b", limit=1), spec("c", limit=3)
    await env.check([a, b, c])
    refused = await env.check([a, b, c])
    assert not refused.allowed
    assert [(s.name, s.limit, s.remaining) for s in refused.states] == [
        ("a", 5, 4),
        ("b", 1, 0),
        ("c", 3, 2),
    ]


async def test_retry_after_is_exactly_when_the_request_passes(env: Env) -> None:
    limit = spec(limit=3, period_s=1.0)  # T = 333_334 µs (rounded up)
    for _ in range(3):
        await env.check([limit])
    env.at_us(100_000)
    refused = await env.check([limit], cost=2)
    assert not refused.allowed
    wait_us = round(refused.retry_after_s * 1_000_000)
    # debt (3T - 0.1 s) + this request (2T) must come down to tau (3T): 2T - 0.1 s.
    assert wait_us == 2 * 333_334 - 100_000
    env.at_us(100_000 + wait_us - 1)
    assert not (await env.check([limit], cost=2)).allowed
    env.at_us(100_000 + wait_us)
    assert (await env.check([limit], cost=2)).allowed


async def test_rate_holds_when_the_interval_is_not_a_whole_microsecond(env: Env) -> None:
    limit = spec(limit=3, period_s=1.0, burst=1)  # T = 333_333.3 µs, enforced as 333_334
    assert (await env.check([limit])).allowed
    env.at_us(333_333)  # 2 requests here would be 2 > 1 + 0.999999 allowed by the rate
    assert not (await env.check([limit])).allowed
    env.at_us(333_334)
    assert (await env.check([limit])).allowed


async def test_retry_after_is_the_longest_wait_among_refusing_limits(env: Env) -> None:
    per_second = spec("s", limit=1, period_s=1.0)
    per_minute = spec("m", limit=2, period_s=60.0)
    for _ in range(2):
        await env.check([per_minute])
    await env.check([per_second])
    refused = await env.check([per_second, per_minute])
    assert refused.retry_after_s == pytest.approx(30.0)
    env.at_us(1_000_000)  # the per-second limit passes again, the per-minute one not yet
    assert not (await env.check([per_second, per_minute])).allowed
    env.at_us(30_000_000)
    assert (await env.check([per_second, per_minute])).allowed


async def test_allowed_decision_has_zero_retry_after_and_is_not_degraded(env: Env) -> None:
    decision = await env.check([spec()])
    assert decision.allowed
    assert decision.retry_after_s == 0.0
    assert not decision.degraded


async def test_remaining_and_reset_track_consumption_and_drain(env: Env) -> None:
    limit = spec(limit=10, period_s=10.0)  # T = 1 s
    for n in range(1, 5):
        state = (await env.check([limit])).states[0]
        assert state.remaining == 10 - n
        assert state.reset_s == pytest.approx(n)
        assert state.period_s == 10.0
    env.at_us(2_500_000)
    state = (await env.check([limit], cost=0)).states[0]
    assert state.remaining == 8  # 1.5 s of debt: 8 more fit (9.5 s <= tau = 10 s)
    assert state.reset_s == pytest.approx(1.5)
    env.at_us(4_000_000)
    state = (await env.check([limit], cost=0)).states[0]
    assert (state.remaining, state.reset_s) == (10, 0.0)


async def test_changing_a_limit_keeps_the_counter_state(env: Env) -> None:
    for _ in range(5):
        await env.check([spec(limit=10, period_s=10.0)])  # 5 s of debt
    raised = await env.check([spec(limit=20, period_s=10.0)])
    # Same key, new limit: 5 s of debt + 0.5 s for this request, T = 0.5 s, tau = 10 s.
    assert raised.allowed
    assert raised.states[0].remaining == 9
    assert raised.states[0].reset_s == pytest.approx(5.5)


async def test_lowering_a_limit_below_the_debt_refuses_until_it_drains(env: Env) -> None:
    for _ in range(8):
        await env.check([spec(limit=10, period_s=10.0)])  # 8 s of debt
    lowered = spec(limit=10, period_s=10.0, burst=5)  # tau = 5 s < 8 s of debt
    refused = await env.check([lowered])
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(4.0)
    peek = await env.check([lowered], cost=0)
    assert not peek.allowed  # the counter is over its tolerance: even a peek says no
    assert peek.retry_after_s == pytest.approx(3.0)
    env.at_us(3_000_000)
    assert (await env.check([lowered], cost=0)).allowed
    assert not (await env.check([lowered])).allowed
    env.at_us(4_000_000)
    assert (await env.check([lowered])).allowed


async def test_counters_are_isolated_by_scope_and_by_key(env: Env) -> None:
    limit = spec("a", limit=1, period_s=60.0)
    assert (await env.check([limit])).allowed
    assert not (await env.check([limit])).allowed
    assert (await env.check([spec("b", limit=1, period_s=60.0)])).allowed
    assert (await env.limiter.check(f"other-{uuid.uuid4().hex}", [limit])).allowed


async def test_identical_key_listed_twice_is_charged_twice(env: Env) -> None:
    limit = spec(limit=3, period_s=60.0)
    first = await env.check([limit, limit])
    assert first.allowed
    assert [s.remaining for s in first.states] == [2, 1]
    assert (await env.check([limit], cost=0)).states[0].remaining == 1
    assert not (await env.check([limit, limit])).allowed


async def test_no_specs_is_allowed_without_states(env: Env) -> None:
    assert await env.check([]) == Decision(allowed=True, states=(), retry_after_s=0.0)


async def test_negative_cost_and_empty_scope_are_programming_errors(env: Env) -> None:
    with pytest.raises(ValueError, match="cost"):
        await env.check([spec()], cost=-1)
    with pytest.raises(ValueError, match="scope"):
        await env.limiter.check("", [spec()])


# -- properties -------------------------------------------------------------------------

EXAMPLES = {"memory": 300, "redis": 60, "redis-uncoalesced": 30}

limit_params = st.tuples(
    st.integers(1, 20),  # limit
    st.integers(1_000, 20_000_000),  # period in µs
    st.integers(1, 20),  # burst
)
# An advance of None means "exactly the retry_after of the last refusal": it lands the
# clock on the limiter's own boundaries, where an off-by-one or rounding leak shows.
steps = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(0, 3_000)), st.integers(0, 4)),
    min_size=1,
    max_size=40,
)


def _run(backend: str, body: Callable[[Env], Awaitable[None]]) -> None:
    async def main() -> None:
        clock = FrozenClock(float(START_S))
        limiter, close = await _open(backend, clock)
        try:
            await body(Env(limiter, clock, f"p-{uuid.uuid4().hex}"))
        finally:
            await close()

    asyncio.run(main())


async def _replay(
    env: Env, limit_spec: LimitSpec, ops: list[tuple[int | None, int]]
) -> tuple[int, list[tuple[int, int]]]:
    """Play ``ops``; return the final time (µs) and the admitted (time µs, cost) pairs."""
    t_us = 0
    last_retry_us = 0
    admitted: list[tuple[int, int]] = []
    for advance_ms, cost in ops:
        t_us += last_retry_us if advance_ms is None else advance_ms * 1000
        env.at_us(t_us)
        decision = await env.check([limit_spec], cost)
        if decision.allowed:
            admitted.append((t_us, cost))
        else:
            last_retry_us = round(decision.retry_after_s * 1_000_000)
    return t_us, admitted


@pytest.mark.parametrize("backend", BACKENDS)
def test_admitted_cost_never_exceeds_burst_plus_elapsed_times_rate(backend: str) -> None:
    @settings(max_examples=EXAMPLES[backend], deadline=None)
    @given(params=limit_params, ops=steps)
    def prop(params: tuple[int, int, int], ops: list[tuple[int | None, int]]) -> None:
        limit, period_us, burst = params
        limit_spec = spec("p", limit, period_us / 1_000_000, burst)
        admitted: list[tuple[int, int]] = []

        async def body(env: Env) -> None:
            admitted.extend((await _replay(env, limit_spec, ops))[1])

        _run(backend, body)
        # Every window [t_i, t_j] of the run, not just the one from the start.
        for i, (t_i, _) in enumerate(admitted):
            total = 0
            for t_j, cost in admitted[i:]:
                total += cost
                assert total <= burst + (t_j - t_i) * limit / period_us + 1e-9

    prop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_refused_request_passes_exactly_after_retry_after(backend: str) -> None:
    @settings(max_examples=EXAMPLES[backend], deadline=None)
    @given(params=limit_params, ops=steps, cost=st.integers(1, 20))
    def prop(params: tuple[int, int, int], ops: list[tuple[int | None, int]], cost: int) -> None:
        limit, period_us, burst = params
        limit_spec = spec("p", limit, period_us / 1_000_000, burst)

        async def body(env: Env) -> None:
            t_us, _ = await _replay(env, limit_spec, ops)
            refused = await env.check([limit_spec], cost)
            if refused.allowed:
                return
            if cost > burst:
                assert refused.retry_after_s >= limit_spec.period_s
                return
            wait_us = round(refused.retry_after_s * 1_000_000)
            assert wait_us > 0
            env.at_us(t_us + wait_us - 1)
            assert not (await env.check([limit_spec], cost)).allowed
            env.at_us(t_us + wait_us)
            assert (await env.check([limit_spec], cost)).allowed

        _run(backend, body)

    prop()
