"""bench/report.py judges the issue #5 goals from a run's rows (no load is generated here)."""

from __future__ import annotations

from pathlib import Path

from bench.common import Results, Row, percentile
from bench.report import PEER, embed, goals, markdown, median_goals


def _results() -> Results:
    r = Results("now", "test machine")
    r.rows += [
        Row("framework", "floor: no-op GET", "uvicorn 1w", 10_000.0, p50_ms=1.0, p99_ms=2.0),
        Row("authsvc", "verify API key", "uvicorn 1w", 6_000.0, p50_ms=2.0, p99_ms=4.0),
        Row("authsvc", "verify JWT (repeat)", "uvicorn 1w", 4_000.0, p50_ms=2.0, p99_ms=4.0),
        Row("authsvc", "client_credentials (JWT)", "uvicorn 1w", 3_000.0, p50_ms=5.0, p99_ms=9.0),
        Row("authsvc", "introspection", "uvicorn 1w", note="n/a (endpoint missing)"),
        Row("peer-oauth", "client_credentials (JWT)", PEER, 2_000.0, p50_ms=5.0, p99_ms=9.0),
        Row("peer-oauth", "introspection", PEER, 5_000.0, p50_ms=5.0, p99_ms=9.0),
        Row(
            "limiter",
            "authsvc GCRA, 1 limit",
            "x",
            30_000.0,
            unit="decisions/s",
            extra={"limits": 1, "round_trips_per_decision": 1.0},
        ),
        Row(
            "limiter",
            "authsvc GCRA, 3 limits",
            "x",
            20_000.0,
            unit="decisions/s",
            extra={"limits": 3, "round_trips_per_decision": 1.0},
        ),
        Row("limiter", "authsvc GCRA, accuracy", "x", extra={"admitted": 1001, "allowed": 1000}),
        Row("limiter", "limits moving window, 1 limit", "y", 12_000.0, unit="decisions/s"),
        Row("limiter", "limits fixed window, 1 limit", "y", 25_000.0, unit="decisions/s"),
    ]
    return r


def _goal(results: Results, name: str) -> bool | None:
    return next(g.met for g in goals(results) if g.name == name)


def test_goals_compare_ratios_measured_in_the_same_run() -> None:
    r = _results()
    assert _goal(r, "client_credentials (JWT) vs oidc-provider") is True
    assert _goal(r, "verify API key vs floor") is True
    assert _goal(r, "verify JWT (repeat) vs floor") is False
    assert _goal(r, "limiter: round trips per decision") is True


def test_a_missing_endpoint_is_not_judged() -> None:
    assert _goal(_results(), "introspection vs oidc-provider") is None


def test_over_admission_and_a_faster_python_peer_are_missed() -> None:
    r = _results()
    assert _goal(r, "limiter: zero over-admission") is False
    assert _goal(r, "limiter: decisions/s per process") is False  # 30k < 1.5 x 25k


def test_markdown_says_missed_and_embeds_between_markers(tmp_path: Path) -> None:
    r = _results()
    r.goals = goals(r)
    md = markdown(r)
    assert "**MISSED**" in md
    assert "n/a (endpoint missing)" in md
    doc = tmp_path / "benchmarks.md"
    doc.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\noutro\n")
    assert embed(doc, md)
    text = doc.read_text()
    assert "old" not in text
    assert text.startswith("intro\n")
    assert text.endswith("outro\n")
    assert "### Goals" in text


def test_percentile_is_nearest_rank() -> None:
    values = [float(x) for x in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0


def test_child_key_goal_compares_with_the_limited_key_of_the_same_server() -> None:
    r = _results()
    r.rows += [
        Row("authsvc", "verify API key + 1 rate limit", "uvicorn 1w", 5_000.0),
        Row("authsvc", "verify child key (parent has 1 rate limit)", "uvicorn 1w", 4_400.0),
    ]
    assert _goal(r, "verify child key (parent has 1 rate limit) vs key with 1 rate limit") is False
    r.rows[-1] = Row("authsvc", "verify child key (parent has 1 rate limit)", "uvicorn 1w", 4_600.0)
    assert _goal(r, "verify child key (parent has 1 rate limit) vs key with 1 rate limit") is True


def test_median_goal_judges_the_middle_run_not_the_best() -> None:
    runs = []
    for floor_rate in (10_000.0, 20_000.0, 11_000.0):  # ratios 0.6, 0.3, 0.545
        r = _results()
        r.rows[0] = Row("framework", "floor: no-op GET", "uvicorn 1w", floor_rate)
        runs.append(goals(r))
    goal = next(g for g in median_goals(runs) if g.name == "verify API key vs floor")
    assert goal.value is not None
    assert abs(goal.value - 6_000 / 11_000) < 1e-9
    assert goal.met is True
