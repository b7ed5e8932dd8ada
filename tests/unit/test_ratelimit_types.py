"""LimitSpec validation and the shared GCRA arithmetic."""

from __future__ import annotations

import pytest

from authsvc.ratelimit import LimitSpec
from authsvc.ratelimit.redis import SCRIPT, SCRIPT_SHA, redis_key
from authsvc.ratelimit.types import build_decision, gcra_params, validate_call


@pytest.mark.parametrize(
    ("limit", "period_s", "burst", "match"),
    [
        (0, 1.0, 1, "limit"),
        (1, 1.0, 0, "burst"),
        (1, 0.0, 1, "period"),
        (1, float("inf"), 1, "period"),
    ],
)
def test_nonsensical_limits_are_rejected(
    limit: int, period_s: float, burst: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        LimitSpec("k", "n", limit, period_s, burst)


def test_interval_is_rounded_up_so_the_limiter_is_never_lenient() -> None:
    assert gcra_params(LimitSpec("k", "n", 3, 1.0, 3)) == (333_334, 1_000_002)
    assert gcra_params(LimitSpec("k", "n", 50, 10.0, 50)) == (200_000, 10_000_000)


def test_interval_is_at_least_one_microsecond() -> None:
    assert gcra_params(LimitSpec("k", "n", 10**9, 0.001, 5)) == (1, 5)


def test_huge_tolerance_is_capped_to_stay_exact_in_lua_doubles() -> None:
    interval, tau = gcra_params(LimitSpec("k", "n", 1, 31_536_000.0, 10**9))
    assert interval == 31_536_000_000_000
    assert 1_700_000_000_000_000 + tau < 2**53


@pytest.mark.parametrize("cost", [-1, 1.5, True])
def test_cost_must_be_a_non_negative_integer(cost: object) -> None:
    with pytest.raises(ValueError, match="cost"):
        validate_call("scope", cost)  # type: ignore[arg-type]


def test_states_after_an_allowed_multi_unit_request() -> None:
    spec = LimitSpec("k", "n", 10, 10.0, 10)
    decision = build_decision(True, 0, 4, [spec], [gcra_params(spec)], [2_000_000])
    (state,) = decision.states
    assert (state.remaining, state.reset_s) == (4, 6.0)
    assert decision.retry_after_s == 0.0


def test_redis_keys_of_one_scope_share_exactly_one_hash_tag() -> None:
    keys = [redis_key("tenant-1", k) for k in ("key:abc:per_min", "identity:x:{odd}", "sub:u")]
    tags = {k[k.index("{") + 1 : k.index("}", k.index("{"))] for k in keys}
    assert tags == {"tenant-1"}


def test_lua_script_ships_with_the_package() -> None:
    assert "redis.call('TIME')" in SCRIPT
    assert len(SCRIPT_SHA) == 40
