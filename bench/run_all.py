"""Every benchmark of issue #5 in one run, side by side, on this machine.

    .venv/bin/python -m bench.run_all [--seconds 4] [--skip scale,limiter,...]

Writes ``docs/benchmarks/results.md``, ``results.json`` and ``chart.png``. Needs ``wrk``,
``redis-server``/``redis-benchmark``, a local Postgres (``AUTHSVC_BENCH_PG_ADMIN_URL``,
default ``postgresql://postgres@127.0.0.1:5432/postgres``), node + ``npm ci`` in
``bench/peers/oidc`` and ``bench/peers/rlf``, and the ``bench`` extra
(``pip install -e '.[dev,bench]'``). Everything it starts it stops; all traffic is loopback.

Order: authsvc HTTP matrix (uvicorn/granian x 1/2 workers), the peer OAuth server (one node
process, then node's cluster of 2), the rate limiters, revocation across 3 instances, then the
scale check (1k vs 1M keys) and the RSS of one instance holding 100,000 cached keys (``rss``).

``--runs 3`` (the default) then repeats what the goals are judged on: the HTTP cells on
uvicorn 1 and 2 workers, the peer and the scale/RSS cells; each goal reports the median of
its 3 values (within a run, each HTTP cell is already the best of 2 passes). The tables show
the first, complete run.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import endpoints, limiter, peers, report, revocation, scale, servers
from bench.common import ROOT, RedisServer, Results, machine_summary, temp_dir

OUT = ROOT / "docs" / "benchmarks"
GROUPS = ("http", "peers", "limiter", "revocation", "scale", "rss")
SERVERS = (("uvicorn", 1), ("uvicorn", 2), ("granian", 1), ("granian", 2))


def code_version() -> str:
    """The commit measured, and whether authsvc/ had uncommitted changes at the time."""
    import subprocess

    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30
        )
        return proc.stdout.strip()

    dirty = [line for line in git("status", "--porcelain", "--", "authsvc").splitlines() if line]
    state = f" + {len(dirty)} uncommitted change(s) under authsvc/" if dirty else ""
    return f"code: {git('rev-parse', '--short', 'HEAD')}{state}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="measured seconds per cell and pass"
    )
    parser.add_argument("--skip", default="", help=f"comma-separated groups of {GROUPS}")
    parser.add_argument(
        "--servers",
        default=",".join(f"{k}:{w}" for k, w in SERVERS),
        help="server configurations for the HTTP matrix, e.g. uvicorn:1,granian:1",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--runs", type=int, default=3, help="runs of the goal cells; goals report the median"
    )
    args = parser.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    configs = [(k, int(w)) for k, w in (s.split(":") for s in args.servers.split(",") if s)]

    started = time.monotonic()
    version = code_version()
    results = Results(datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), machine_summary())
    repeats: list[Results] = []
    with RedisServer() as redis, temp_dir() as tmp:
        _goal_cells(redis, tmp, results, args.seconds, configs, skip)
        if "limiter" not in skip:
            limiter.run(redis, results, seconds=max(2.0, args.seconds - 1))
        if "revocation" not in skip:
            with servers.stack(redis) as st:
                revocation.run(st, results)
        again = [(k, w) for k, w in configs if k == "uvicorn"]
        for n in range(2, args.runs + 1):
            print(f"== run {n} of {args.runs}: the goal cells", flush=True)
            repeat = Results(results.started, results.machine)
            _goal_cells(redis, tmp, repeat, args.seconds, again, skip)
            repeats.append(repeat)
    results.notes.append(version)
    results.notes.append(f"whole run: {time.monotonic() - started:.0f} s")
    if repeats:
        results.notes.append(
            f"goals: median of {len(repeats) + 1} runs (HTTP: uvicorn 1 and 2 workers, peer, "
            "scale and RSS repeated; each HTTP cell the best of 2 passes within its run)"
        )
    report.write(results, args.out, repeats)
    print(
        f"wrote {args.out}/results.md, results.json, chart.png "
        f"in {time.monotonic() - started:.0f} s"
    )
    return 0


def _goal_cells(
    redis: RedisServer,
    tmp: Path,
    results: Results,
    seconds: float,
    configs: list[tuple[str, int]],
    skip: set[str],
) -> None:
    if "http" not in skip:
        with servers.stack(redis) as st:
            fx = None
            for kind, workers in configs:
                with servers.serve(st.env, kind, workers) as srv:
                    fx = fx or servers.bootstrap(st.env, srv.base)
                    endpoints.run(srv, fx, results, seconds, tmp)
    if "peers" not in skip:
        peers.run(results, seconds)
    if "scale" not in skip:
        with (
            servers.stack(redis, "authsvc_scale1k") as small,
            servers.stack(redis, "authsvc_scale1m") as big,
        ):
            scale.run(small, big, results, tmp, seconds, rss="rss" not in skip)


if __name__ == "__main__":
    raise SystemExit(main())
