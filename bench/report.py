"""Goals, Markdown table, JSON and chart of one ``bench.run_all`` run."""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import Goal, Results, Row

REFERENCE = "uvicorn 1w"
"""What ``authsvc serve`` ships by default; goals are judged on it, process for process."""
PEER = "oidc-provider 9, node 20, 1 process"


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


def goals(results: Results) -> list[Goal]:
    g: list[Goal] = []
    targets = _targets(results)

    # OAuth vs the peer, process for process (1 worker vs 1 node process)
    for ours, theirs in (
        ("client_credentials (JWT)", "client_credentials (JWT)"),
        ("introspection", "introspection"),
    ):
        peer = _rate(results, "peer-oauth", theirs)
        mine = _rate(results, "authsvc", ours, REFERENCE)
        r = _ratio(mine, peer)
        others = ", ".join(
            f"{t}: {_fmt_ratio(_ratio(_rate(results, 'authsvc', ours, t), peer))}"
            for t in targets
            if t != REFERENCE
        )
        g.append(
            Goal(
                f"{ours} vs oidc-provider",
                ">= 1x the peer (stretch 2x), 1 worker vs 1 node process",
                f"{_fmt_ratio(r, 3)} ({mine or 0:,.0f} vs {peer or 0:,.0f} req/s); {others}",
                None if r is None else r >= 1.0,
                "" if r is None else ("stretch 2x met" if r >= 2 else "stretch 2x not met"),
            )
        )

    # warm verify vs the floor, same server configuration
    for cell in ("verify API key", "verify JWT (repeat)"):
        floor = _rate(results, "framework", "floor: no-op GET", REFERENCE)
        mine = _rate(results, "authsvc", cell, REFERENCE)
        r = _ratio(mine, floor)
        others = ", ".join(
            f"{t}: {_fmt_ratio(_ratio(_rate(results, 'authsvc', cell, t), _floor(results, t)))}"
            for t in targets
            if t != REFERENCE
        )
        g.append(
            Goal(
                f"warm {cell} vs floor",
                ">= 50% of the no-op endpoint, same server",
                f"{_fmt_ratio(r, 3)} on {REFERENCE}; {others}",
                None if r is None else r >= 0.5,
            )
        )

    # limiter
    lim = [r for r in results.rows if r.group == "limiter"]
    gcra = [r for r in lim if r.name.startswith("authsvc GCRA,") and "limit" in r.name]
    rts = [r.extra.get("round_trips_per_decision") for r in gcra if r.extra]
    rts_f = [x for x in rts if isinstance(x, float)]
    g.append(
        Goal(
            "limiter: round trips per decision",
            "exactly 1, whatever the number of limits",
            ", ".join(
                f"{r.extra['limits']} limit(s): {r.extra['round_trips_per_decision']:.2f}"
                for r in gcra
                if r.extra
            ),
            None if not rts_f else all(0.95 <= x <= 1.05 for x in rts_f),
            "sequential decisions; Redis socket reads / decisions",
        )
    )
    acc = results.find("limiter", "authsvc GCRA, accuracy")
    if acc is not None and acc.extra:
        admitted, allowed = acc.extra["admitted"], acc.extra["allowed"]
        g.append(
            Goal(
                "limiter: zero over-admission",
                "admitted <= allowed, 64 concurrent callers on one counter",
                f"admitted {admitted} of {allowed}",
                admitted <= allowed,
                "exact" if admitted == allowed else f"under-admitted by {allowed - admitted}",
            )
        )
    mine_rate = _rate(results, "limiter", "authsvc GCRA, 1 limit")
    py_peers = [
        r for r in lim if r.name.startswith("limits ") and r.name.endswith(", 1 limit") and r.rate
    ]
    best = max(py_peers, key=lambda r: r.rate or 0, default=None)
    rlf = _rate(results, "limiter", "rate-limiter-flexible, 1 limit")
    if best is not None:
        r = _ratio(mine_rate, best.rate)
        g.append(
            Goal(
                "limiter: decisions/s per process",
                ">= 1.5x the best Python peer (stretch: rate-limiter-flexible)",
                f"{_fmt_ratio(r)} of {best.name.split(',')[0]} ({mine_rate or 0:,.0f} vs "
                f"{best.rate or 0:,.0f}); {_fmt_ratio(_ratio(mine_rate, rlf))} of "
                f"rate-limiter-flexible ({rlf or 0:,.0f})",
                None if r is None else r >= 1.5,
                "stretch met" if rlf and mine_rate and mine_rate >= rlf else "stretch not met",
            )
        )

    # scale
    for kind in ("cold (first verify of a key)", "warm (cached key)"):
        a = results.find("scale", f"verify API key, {kind}, 1,000 keys in Postgres")
        b = results.find("scale", f"verify API key, {kind}, 1,000,000 keys in Postgres")
        if a is None or b is None or a.p50_ms is None or b.p50_ms is None:
            continue
        r = b.p50_ms / a.p50_ms
        g.append(
            Goal(
                f"scale: {kind} verify, 1M vs 1k keys",
                "same within noise (p50 ratio within 0.8-1.25)",
                f"p50 {a.p50_ms:.1f} -> {b.p50_ms:.1f} ms ({r:.2f}x); "
                f"req/s {a.rate or 0:,.0f} -> {b.rate or 0:,.0f}",
                0.8 <= r <= 1.25,
            )
        )
    return g


# --- Markdown ------------------------------------------------------------------------------


def _ms(x: float | None) -> str:
    return "" if x is None else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _met(m: bool | None) -> str:
    return "n/a" if m is None else "**met**" if m else "**MISSED**"


def _http_table(results: Results) -> list[str]:
    peer = {r.name: r.rate for r in results.rows if r.group == "peer-oauth"}
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
        if r.group == "authsvc" and r.name in peer:
            vs_peer = _fmt_ratio(_ratio(r.rate, peer[r.name]))
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
        "process for process against the single node process of the peer.",
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
    peer = {r.name: r.rate for r in results.rows if r.group == "peer-oauth" and r.rate}
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


def write(results: Results, out: Path) -> None:
    """results.json, results.md and chart.png into ``out``; and the table into the doc
    ``out/../benchmarks.md`` (between its markers) when ``out`` is ``docs/benchmarks``."""
    results.goals = goals(results)
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
    return res


if __name__ == "__main__":
    import sys

    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/benchmarks/results.json")
    write(rows_from_json(src), src.parent)
