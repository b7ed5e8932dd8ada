"""Goals, Markdown table, JSON and chart of one ``bench.run_all`` run."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from bench.common import Goal, Results, Row

REFERENCE = "uvicorn 1w"
"""What ``authsvc serve`` ships by default; goals are judged on it, process for process."""
PEER = "oidc-provider 9, node 20, 1 process"
PEER_CLUSTER = "oidc-provider 9, node 20, cluster 2 processes"


def _rate(results: Results, group: str, name: str, target: str | None = None) -> float | None:
    row = results.find(group, name, target)
    return row.rate if row is not None else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt_ratio(r: float | None, digits: int = 2) -> str:
    return "n/a" if r is None else f"{r:.{digits}f}x"


def _floor(results: Results, target: str) -> float | None:
    return _rate(results, "framework", "floor: no-op GET", target)


def _targets(results: Results) -> list[str]:
    out: list[str] = []
    for row in results.rows:
        if row.group in ("framework", "authsvc") and row.target not in out:
            out.append(row.target)
    return out


@dataclass(frozen=True)
class Rule:
    """How one goal is judged: ``value`` against ``limit`` (at least, or at most)."""

    name: str
    target: str
    limit: float
    at_most: bool = False
    unit: str = "x"
    stretch: float | None = None

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value <= self.limit if self.at_most else value >= self.limit

    def fmt(self, value: float | None) -> str:
        if value is None:
            return "n/a"
        if self.unit == "x":
            return f"{value:.3f}x"
        return f"{value:,.1f} {self.unit}" if value < 100 else f"{value:,.0f} {self.unit}"

    def goal(self, value: float | None, measured: str, why: str = "") -> Goal:
        if self.stretch is not None and value is not None:
            met = value >= self.stretch
            why = "; ".join(
                x for x in (why, f"stretch {self.stretch:g}x {'met' if met else 'not met'}") if x
            )
        met = self.met(value)
        return Goal(self.name, self.target, measured, met, why, value, self.limit, self.at_most)


def _oauth_goals(results: Results, targets: list[str]) -> list[Goal]:
    g: list[Goal] = []
    for cell in ("client_credentials (JWT)", "introspection"):
        rule = Rule(
            f"{cell} vs oidc-provider",
            ">= 1x the peer (stretch 2x), 1 worker vs 1 node process",
            1.0,
            stretch=2.0,
        )
        peer = _rate(results, "peer-oauth", cell, PEER)
        mine = _rate(results, "authsvc", cell, REFERENCE)
        r = _ratio(mine, peer)
        others = ", ".join(
            f"{t}: {_fmt_ratio(_ratio(_rate(results, 'authsvc', cell, t), peer))}"
            for t in targets
            if t != REFERENCE
        )
        g.append(
            rule.goal(r, f"{rule.fmt(r)} ({mine or 0:,.0f} vs {peer or 0:,.0f} req/s); {others}")
        )
    cluster = _rate(results, "peer-oauth", "client_credentials (JWT)", PEER_CLUSTER)
    two = _rate(results, "authsvc", "client_credentials (JWT)", "uvicorn 2w")
    rule = Rule(
        "client_credentials (JWT), 2 workers vs oidc-provider cluster",
        ">= 1x, uvicorn 2 workers vs node cluster of 2 processes",
        1.0,
    )
    r = _ratio(two, cluster)
    g.append(rule.goal(r, f"{rule.fmt(r)} ({two or 0:,.0f} vs {cluster or 0:,.0f} req/s)"))
    return g


def _floor_goals(results: Results, targets: list[str]) -> list[Goal]:
    g: list[Goal] = []
    for cell, limit in (
        ("verify API key", 0.50),
        ("verify JWT (repeat)", 0.55),
        ("tokens: POST /v1/tokens", 0.40),
    ):
        rule = Rule(f"{cell} vs floor", f">= {limit:.2f}x the no-op endpoint, same server", limit)
        r = _ratio(_rate(results, "authsvc", cell, REFERENCE), _floor(results, REFERENCE))
        others = ", ".join(
            f"{t}: {_fmt_ratio(_ratio(_rate(results, 'authsvc', cell, t), _floor(results, t)))}"
            for t in targets
            if t != REFERENCE
        )
        g.append(rule.goal(r, f"{rule.fmt(r)} on {REFERENCE}; {others}"))
    row = results.find("authsvc", "verify JWT (repeat)", REFERENCE)
    p99 = None if row is None else row.p99_ms
    rule = Rule("verify JWT (repeat) p99", "<= 10 ms at c=32, uvicorn 1 worker", 10.0, True, "ms")
    g.append(rule.goal(p99, rule.fmt(p99)))
    limited = _rate(results, "authsvc", "verify API key + 1 rate limit", REFERENCE)
    child = _rate(results, "authsvc", "verify child key (parent has 1 rate limit)", REFERENCE)
    rule = Rule(
        "verify child key (parent has 1 rate limit) vs key with 1 rate limit",
        "within 10% (>= 0.90x), same server (issue 8)",
        0.90,
    )
    r = _ratio(child, limited)
    g.append(rule.goal(r, f"{rule.fmt(r)} ({child or 0:,.0f} vs {limited or 0:,.0f} req/s)"))
    return g


def _limiter_goals(results: Results) -> list[Goal]:
    g: list[Goal] = []
    lim = [r for r in results.rows if r.group == "limiter"]
    gcra = [r for r in lim if r.name.startswith("authsvc GCRA,") and "limit" in r.name and r.extra]
    if gcra:
        worst = max(abs(r.extra["round_trips_per_decision"] - 1.0) for r in gcra)
        rule = Rule(
            "limiter: round trips per decision",
            "exactly 1, whatever the number of limits",
            0.05,
            True,
            "",
        )
        g.append(
            rule.goal(
                worst,
                ", ".join(
                    f"{r.extra['limits']} limit(s): {r.extra['round_trips_per_decision']:.2f}"
                    for r in gcra
                ),
                "sequential decisions; Redis socket reads / decisions (value: largest |x - 1|)",
            )
        )
    acc = results.find("limiter", "authsvc GCRA, accuracy")
    if acc is not None and acc.extra:
        admitted, allowed = acc.extra["admitted"], acc.extra["allowed"]
        rule = Rule(
            "limiter: zero over-admission",
            "admitted <= allowed, 64 concurrent callers on one counter",
            0.0,
            True,
            "",
        )
        g.append(
            rule.goal(
                float(admitted - allowed),
                f"admitted {admitted} of {allowed}",
                "exact" if admitted == allowed else f"under-admitted by {allowed - admitted}",
            )
        )
    mine = _rate(results, "limiter", "authsvc GCRA, 1 limit")
    py_peers = [
        r for r in lim if r.name.startswith("limits ") and r.name.endswith(", 1 limit") and r.rate
    ]
    best = max(py_peers, key=lambda r: r.rate or 0, default=None)
    rlf = _rate(results, "limiter", "rate-limiter-flexible, 1 limit")
    if best is not None:
        rule = Rule(
            "limiter: decisions/s per process",
            ">= 1.5x the best Python peer (stretch: rate-limiter-flexible)",
            1.5,
        )
        r = _ratio(mine, best.rate)
        g.append(
            rule.goal(
                r,
                f"{_fmt_ratio(r)} of {best.name.split(',')[0]} ({mine or 0:,.0f} vs "
                f"{best.rate or 0:,.0f}); {_fmt_ratio(_ratio(mine, rlf))} of "
                f"rate-limiter-flexible ({rlf or 0:,.0f})",
                "stretch met" if rlf and mine and mine >= rlf else "stretch not met",
            )
        )
    return g


def _scale_goals(results: Results) -> list[Goal]:
    g: list[Goal] = []
    for kind in ("cold (first verify of a key)", "warm (cached key)"):
        a = results.find("scale", f"verify API key, {kind}, 1,000 keys in Postgres")
        b = results.find("scale", f"verify API key, {kind}, 1,000,000 keys in Postgres")
        if a is None or b is None or a.p50_ms is None or b.p50_ms is None:
            continue
        r = b.p50_ms / a.p50_ms
        rule = Rule(
            f"scale: {kind} verify, 1M vs 1k keys",
            "same within noise (p50 ratio at most 1.25)",
            1.25,
            True,
        )
        g.append(
            rule.goal(
                r,
                f"p50 {a.p50_ms:.1f} -> {b.p50_ms:.1f} ms ({r:.2f}x); "
                f"req/s {a.rate or 0:,.0f} -> {b.rate or 0:,.0f}",
            )
        )
    cold = results.find(
        "scale", "verify API key, cold (first verify of a key), 1,000,000 keys in Postgres"
    )
    if cold is not None:
        rule = Rule(
            "cold API-key verify (first sight of a key), per worker",
            ">= 2x the 740 req/s of issue 11 (>= 1,480 req/s), 1M keys, uvicorn 1 worker",
            1480.0,
            unit="req/s",
        )
        g.append(rule.goal(cold.rate, f"{rule.fmt(cold.rate)}, p50 {_ms(cold.p50_ms)} ms"))
    rss = results.find("scale", "RSS holding 100,000 cached keys")
    if rss is not None and rss.extra:
        mib = rss.extra["rss_after_bytes"] / 2**20
        rule = Rule(
            "RSS, one instance holding 100,000 cached keys",
            "<= 150 MiB (<= 600 B per cached key)",
            150.0,
            True,
            "MiB",
        )
        g.append(
            rule.goal(
                mib,
                f"{mib:.0f} MiB; ~{rss.extra['bytes_per_key']:,.0f} B per cached key "
                f"(from {rss.extra['rss_before_bytes'] / 2**20:.0f} MiB warm with 1 key)",
            )
        )
    return g


def goals(results: Results) -> list[Goal]:
    targets = _targets(results)
    return [
        *_oauth_goals(results, targets),
        *_floor_goals(results, targets),
        *_limiter_goals(results),
        *_scale_goals(results),
    ]


def _num(v: float) -> str:
    """3 significant digits for ratios and milliseconds, whole numbers for rates and sizes."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def median_goals(runs: list[list[Goal]]) -> list[Goal]:
    """One goal per name: the median of its values over the runs that measured it, judged by
    the same rule; the per-run values and the first run's detail in ``measured``."""
    names = list(dict.fromkeys(g.name for gs in runs for g in gs))
    out: list[Goal] = []
    for name in names:
        found = [g for gs in runs for g in gs if g.name == name]
        values = [g.value for g in found if g.value is not None]
        if len(found) == 1 or not values:
            out.append(found[0])
            continue
        mid = statistics.median(values)
        first = found[0]
        met_runs = [g.met for g in found]
        assert first.limit is not None
        met = mid <= first.limit if first.at_most else mid >= first.limit
        per_run = " / ".join(_num(v) for v in values)
        out.append(
            Goal(
                name,
                first.target,
                f"median {_num(mid)} of {len(values)} runs ({per_run}); run 1: {first.measured}",
                met,
                "; ".join(
                    x
                    for x in (
                        first.why,
                        f"met in {sum(1 for m in met_runs if m)} of {len(met_runs)} runs",
                    )
                    if x
                ),
                mid,
                first.limit,
                first.at_most,
            )
        )
    return out


# --- Markdown ------------------------------------------------------------------------------


def _ms(x: float | None) -> str:
    return "" if x is None else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _met(m: bool | None) -> str:
    return "n/a" if m is None else "**met**" if m else "**MISSED**"


def _http_table(results: Results) -> list[str]:
    peer = {(r.name, r.target): r.rate for r in results.rows if r.group == "peer-oauth" and r.rate}
    floors = {
        r.target: r.rate for r in results.rows if r.group == "framework" and r.rate is not None
    }
    lines = [
        "| cell | server | req/s | p50 ms | p99 ms | vs floor | vs peer | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results.rows:
        if r.group not in ("framework", "authsvc", "peer-oauth"):
            continue
        if not r.available:
            lines.append(f"| {r.name} | {r.target} | {r.note} | | | | | |")
            continue
        vs_floor = _fmt_ratio(_ratio(r.rate, floors.get(r.target))) if r.group == "authsvc" else ""
        vs_peer = ""
        # 2 workers against node's cluster of 2 when measured, else against one node process
        theirs = peer.get((r.name, PEER_CLUSTER)) if r.target.endswith("2w") else None
        theirs = theirs or peer.get((r.name, PEER))
        if r.group == "authsvc" and theirs:
            vs_peer = _fmt_ratio(_ratio(r.rate, theirs))
        lines.append(
            f"| {r.name} | {r.target} | {r.rate or 0:,.0f} | {_ms(r.p50_ms)} | {_ms(r.p99_ms)} "
            f"| {vs_floor} | {vs_peer} | {r.note} |"
        )
    return lines


def _limiter_table(results: Results) -> list[str]:
    lines = [
        "| limiter | how | decisions/s | p50 ms | p99 ms | round trips / decision (sequential) "
        "| scripts / decision | round trips / decision (64 concurrent) | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results.rows:
        if r.group != "limiter":
            continue
        e = r.extra or {}
        if r.rate is None:
            lines.append(f"| {r.name} | {r.target} | | | | | | | {r.note} |")
            continue
        rt = e.get("round_trips_per_decision")
        sc = e.get("scripts_per_decision")
        ul = e.get("round_trips_per_decision_under_load")
        note = r.note if rt is None else ""
        lines.append(
            f"| {r.name} | {r.target} | {r.rate:,.0f} {'' if r.unit == 'decisions/s' else r.unit} "
            f"| {_ms(r.p50_ms)} | {_ms(r.p99_ms)} "
            f"| {'' if rt is None else f'{rt:.2f}'} | {'' if sc is None else f'{sc:.2f}'} "
            f"| {'' if ul is None else f'{ul:.3f}'} | {note} |"
        )
    return lines


def _plain_table(results: Results, group: str, rate_label: str = "req/s") -> list[str]:
    lines = [
        f"| cell | target | {rate_label} | p50 ms | p99 ms | note |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in results.rows:
        if r.group == group:
            rate = "" if r.rate is None else f"{r.rate:,.0f}"
            lines.append(
                f"| {r.name} | {r.target} | {rate} | {_ms(r.p50_ms)} | {_ms(r.p99_ms)} | {r.note} |"
            )
    return lines


def markdown(results: Results) -> str:
    out = [
        "# Benchmark results",
        "",
        f"Run {results.started} on {results.machine}. Generated by `python -m bench.run_all`; "
        "do not edit by hand.",
        "",
        "HTTP cells: `wrk -t2 -c32`, a 1 s warm-up, then two measured passes (the second "
        "after all the other cells of that server), the better one reported; the load tool "
        "shares the 2 cores with the servers. authsvc runs production-shaped: a fresh "
        "Postgres database and a private Redis (rate limiter + revocation bus). The machine "
        "is shared and noisy: compare ratios within this run, not absolute figures across "
        "runs. Goals are judged on uvicorn 1 worker (what `authsvc serve` runs by default), "
        "process for process against the single node process of the peer (and uvicorn 2 "
        "workers against node's cluster of 2); each goal is the median of the runs named in "
        "the notes, with every run's value.",
        "",
        "## Goals",
        "",
        "| goal | target | measured | result | note |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| {g.name} | {g.target} | {g.measured} | {_met(g.met)} | {g.why} |" for g in results.goals
    ]
    out += ["", "## HTTP: authsvc, framework floor and peer OAuth server", ""]
    out += _http_table(results)
    out += ["", "## Rate limiters (one process, 64 concurrent callers, one private Redis)", ""]
    out += _limiter_table(results)
    acc = [r for r in results.rows if r.group == "limiter" and r.name.endswith("accuracy")]
    if acc:
        out += [
            "",
            "Accuracy (64 concurrent callers, one counter allowing 1,000 per hour, 2 s):",
            "",
        ]
        out += [f"- {r.name.removesuffix(', accuracy')}: {r.note}" for r in acc]
    out += ["", "## Revocation propagation (3 instances, Postgres + Redis)", ""]
    out += _plain_table(results, "revocation", "")
    out += ["", "## Scale", ""]
    out += _plain_table(results, "scale")
    if results.notes:
        out += ["", *[f"- {n}" for n in results.notes]]
    return "\n".join(out) + "\n"


# --- chart ---------------------------------------------------------------------------------


def chart(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    http = [r for r in results.rows if r.group in ("framework", "authsvc") and r.rate]
    names = list(dict.fromkeys(r.name for r in http))
    targets = _targets(results)
    peer = {
        r.name: r.rate
        for r in results.rows
        if r.group == "peer-oauth" and r.rate and r.target == PEER
    }
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(16, 8), gridspec_kw={"width_ratios": [3, 2]}, layout="constrained"
    )
    series = [*targets, PEER]
    height = 0.8 / max(1, len(series))
    colors = plt.get_cmap("tab10")
    for j, t in enumerate(series):
        ys, xs = [], []
        for i, n in enumerate(names):
            v = (
                peer.get(n)
                if t == PEER
                else next((r.rate for r in http if r.name == n and r.target == t), None)
            )
            if v:
                ys.append(i + (j - (len(series) - 1) / 2) * height)
                xs.append(v)
        label = "oidc-provider (peer)" if t == PEER else t
        ax1.barh(ys, xs, height=height, label=label, color=colors(j))
    ax1.set_yticks(range(len(names)), names)
    ax1.invert_yaxis()
    kilo = FuncFormatter(lambda x, _pos: f"{x / 1000:g}k")
    ax1.xaxis.set_major_formatter(kilo)
    ax1.set_xlabel("requests/s (wrk -t2 -c32, higher is better)")
    ax1.set_title("HTTP endpoints (Postgres + Redis)")
    ax1.legend(loc="lower right")
    ax1.grid(axis="x", alpha=0.3)

    lim = [
        r
        for r in results.rows
        if r.group == "limiter" and r.rate and ("1 limit" in r.name or r.name.startswith("Redis"))
    ]
    labels = [r.name.replace(", 1 limit", "") for r in lim]
    bar_colors = [
        colors(3)
        if r.name.startswith("authsvc")
        else colors(7)
        if r.name.startswith("Redis")
        else colors(1)
        for r in lim
    ]
    ax2.barh(range(len(lim)), [r.rate or 0 for r in lim], color=bar_colors)
    ax2.set_yticks(range(len(lim)), labels)
    ax2.invert_yaxis()
    ax2.set_xlim(0, max((r.rate or 0) for r in lim) * 1.18 if lim else 1)
    ax2.xaxis.set_major_formatter(kilo)
    ax2.set_xlabel("decisions/s (Redis: ops/s), one process, 64 concurrent callers")
    ax2.set_title("Rate limiters, 1 limit per decision (grey: Redis ceiling)")
    ax2.grid(axis="x", alpha=0.3)
    for i, r in enumerate(lim):
        ax2.text((r.rate or 0) * 1.01, i, f"{r.rate or 0:,.0f}", va="center", fontsize=8)
    fig.suptitle(f"authsvc benchmarks, {results.started}, {results.machine}", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


START, END = "<!-- results:start -->", "<!-- results:end -->"


def embed(doc: Path, md: str) -> bool:
    """Replace the text between the results markers of ``doc`` with ``md`` (title dropped)."""
    if not doc.exists():
        return False
    text = doc.read_text()
    if START not in text or END not in text:
        return False
    body = md.split("\n", 1)[1].strip().replace("\n## ", "\n### ")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    doc.write_text(f"{head}{START}\n{body}\n{END}{tail}")
    return True


def write(results: Results, out: Path, others: list[Results] | None = None) -> None:
    """results.json, results.md and chart.png into ``out``; and the table into the doc
    ``out/../benchmarks.md`` (between its markers) when ``out`` is ``docs/benchmarks``.

    The tables show ``results`` (the first run); the goals are the median over it and
    ``others`` (the repeated runs of the goal cells). Goals already in ``results`` (a
    re-render from results.json) are kept."""
    if others is not None or not results.goals:
        results.goals = median_goals([goals(r) for r in [results, *(others or [])]])
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results.to_json(), indent=1) + "\n")
    md = markdown(results)
    (out / "results.md").write_text(md)
    chart(results, out / "chart.png")
    if out.name == "benchmarks":
        embed(out.parent / "benchmarks.md", md)


def rows_from_json(path: Path) -> Results:
    """Rebuild a :class:`Results` from ``results.json`` (to re-render without re-running)."""
    data = json.loads(path.read_text())
    res = Results(data["started"], data["machine"], notes=data.get("notes", []))
    res.rows = [Row(**r) for r in data["rows"]]
    res.goals = [Goal(**g) for g in data.get("goals", [])]
    return res


if __name__ == "__main__":
    import sys

    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/benchmarks/results.json")
    write(rows_from_json(src), src.parent)
