"""rate_limit_headers: IETF RateLimit/RateLimit-Policy, X-RateLimit-*, Retry-After."""

from __future__ import annotations

from authsvc.ratelimit import Decision, LimitState, rate_limit_headers


def state(
    name: str = "default",
    limit: int = 100,
    remaining: int = 50,
    reset_s: float = 30.0,
    period_s: float = 60.0,
) -> LimitState:
    return LimitState(name, limit, remaining, reset_s, period_s)


def test_allowed_single_limit_uses_draft_structured_field_syntax() -> None:
    headers = rate_limit_headers(Decision(True, (state(),), 0.0))
    assert headers == {
        "RateLimit-Policy": '"default";q=100;w=60',
        "RateLimit": '"default";r=50;t=30',
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "50",
        "X-RateLimit-Reset": "30",
    }


def test_every_limit_is_listed_in_order_and_x_headers_show_the_tightest() -> None:
    minute = state("per_min", 100, 42, 35.2, 60.0)
    day = state("per_day", 10_000, 3, 432.0, 86_400.0)
    headers = rate_limit_headers(Decision(True, (minute, day), 0.0))
    assert headers["RateLimit-Policy"] == '"per_min";q=100;w=60, "per_day";q=10000;w=86400'
    assert headers["RateLimit"] == '"per_min";r=42;t=36, "per_day";r=3;t=432'
    assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("10000", "3")
    assert headers["X-RateLimit-Reset"] == "432"


def test_tie_on_remaining_reports_the_limit_that_resets_last() -> None:
    short = state("short", 10, 0, 1.0, 10.0)
    long = state("long", 5, 0, 50.0, 100.0)
    headers = rate_limit_headers(Decision(False, (short, long), 1.0))
    assert headers["X-RateLimit-Limit"] == "5"
    assert headers["X-RateLimit-Reset"] == "50"


def test_refusal_adds_retry_after_rounded_up() -> None:
    headers = rate_limit_headers(Decision(False, (state(remaining=0),), 2.2))
    assert headers["Retry-After"] == "3"


def test_retry_after_is_at_least_one_second() -> None:
    headers = rate_limit_headers(Decision(False, (state(remaining=0),), 0.004))
    assert headers["Retry-After"] == "1"


def test_allowed_decision_has_no_retry_after() -> None:
    assert "Retry-After" not in rate_limit_headers(Decision(True, (state(),), 0.0))


def test_whole_seconds_are_not_rounded_up_by_float_noise() -> None:
    one_ulp_above_two = 2.0000000000000004  # e.g. what 2_000_000 µs can become after float math
    headers = rate_limit_headers(Decision(False, (state(reset_s=one_ulp_above_two),), 2.0))
    assert headers["RateLimit"].endswith(";t=2")
    assert headers["Retry-After"] == "2"
    assert rate_limit_headers(Decision(False, (state(),), 2.000001))["Retry-After"] == "3"


def test_sub_second_window_is_advertised_as_one_second() -> None:
    headers = rate_limit_headers(Decision(True, (state(period_s=0.25, reset_s=0.0),), 0.0))
    assert headers["RateLimit-Policy"].endswith(";w=1")
    assert headers["RateLimit"].endswith(";t=0")


def test_policy_names_are_escaped_as_sf_strings() -> None:
    headers = rate_limit_headers(Decision(True, (state(name='a"b\\c\u00e9\n'),), 0.0))
    assert headers["RateLimit-Policy"].startswith('"a\\"b\\\\c??";')


def test_no_limits_means_no_headers() -> None:
    assert rate_limit_headers(Decision(True, (), 0.0)) == {}


def test_degraded_refusal_without_states_still_says_when_to_retry() -> None:
    assert rate_limit_headers(Decision(False, (), 1.0, degraded=True)) == {"Retry-After": "1"}
