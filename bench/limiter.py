"""Rate limiters against one private Redis: authsvc's GCRA limiter, Python ``limits`` and node
``rate-limiter-flexible``, with Redis ``PING`` / ``EVALSHA`` (redis-benchmark) as the
physical ceiling.

Per limiter:

* **decisions/s** of one process: 64 concurrent callers, each on its own counter (nothing
  refused), for a fixed time; p50/p99 of one decision as the caller sees it;
* **round trips per decision**: one caller, decisions one after another, and the Redis
  server's ``total_reads_processed`` (socket reads = request batches it received) divided by
  the number of decisions; also Lua script calls per decision. With 1 and 3 limits;
* **accuracy**: 64 concurrent callers on ONE counter allowing 1,000 per hour for 2 s, so the
  exact answer is 1,000 admitted (no refill during the run for any of the algorithms).

Python limiters run on the asyncio loop, like the server (``authsvc serve``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.common import ROOT, RedisServer, Results, Row, percentile

RLF_DIR = ROOT / "bench" / "peers" / "rlf"
CONCURRENCY = 64
ACCURACY_LIMIT = 1000
ACCURACY_PERIOD_S = 3600

Decide = Callable[[str], Awaitable[bool]]


@dataclass
class Throughput:
    decisions: int
    admitted: int
    seconds: float
    p50_ms: float
    p99_ms: float
    reads: int
    commands: int

    @property
    def rate(self) -> float:
        return self.decisions / self.seconds


async def _hammer(
    decide: Decide, concurrency: int, seconds: float, key_of: Callable[[int], str]
) -> tuple[int, int, float, list[float]]:
    lat: list[float] = []
    counts = [0, 0]
    stop = time.perf_counter() + seconds

    async def caller(w: int) -> None:
        key = key_of(w)
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            ok = await decide(key)
            lat.append(time.perf_counter() - t0)
            counts[0] += 1
            counts[1] += ok

    started = time.perf_counter()
    await asyncio.gather(*(caller(w) for w in range(concurrency)))
    return counts[0], counts[1], time.perf_counter() - started, lat


def _scripts(c: dict[str, int]) -> int:
    return c.get("evalsha", 0) + c.get("eval", 0)


def _delta(redis: RedisServer, before: dict[str, int]) -> tuple[int, int]:
    """(socket reads, script calls) since ``before``: the INFO calls themselves cost 2 reads."""
    after = redis.counters()
    return after["reads"] - before["reads"] - 2, _scripts(after) - _scripts(before)


async def _throughput(redis: RedisServer, decide: Decide, seconds: float) -> Throughput:
    before = redis.counters()
    n, ok, secs, lat = await _hammer(decide, CONCURRENCY, seconds, lambda w: f"w{w}")
    reads, commands = _delta(redis, before)
    return Throughput(
        n, ok, secs, percentile(lat, 50) * 1e3, percentile(lat, 99) * 1e3, reads, commands
    )


async def _sequential(redis: RedisServer, decide: Decide, count: int = 2000) -> tuple[float, float]:
    """(socket reads, script calls) per decision, one decision at a time."""
    await decide("seq")  # warm: script loaded, connection open
    before = redis.counters()
    for _ in range(count):
        await decide("seq")
    reads, commands = _delta(redis, before)
    return reads / count, commands / count


async def _accuracy(decide: Decide, seconds: float = 2.0) -> int:
    _, admitted, _, _ = await _hammer(decide, CONCURRENCY, seconds, lambda w: "shared")
    return admitted


# --- the Python limiters ---------------------------------------------------------------------


async def _authsvc_decider(
    redis_url: str, n_limits: int, limit: int, period_s: float, coalesce: bool = True
) -> tuple[Decide, Callable[[], Awaitable[None]]]:
    from redis.asyncio import Redis

    from authsvc.ratelimit import LimitSpec, RedisLimiter

    client = Redis.from_url(redis_url)
    limiter = RedisLimiter(client, coalesce=coalesce)
    run = uuid.uuid4().hex[:8]

    async def decide(key: str) -> bool:
        specs = [LimitSpec(f"{key}:{i}", f"l{i}", limit, period_s, limit) for i in range(n_limits)]
        return (await limiter.check(f"bench-{run}", specs)).allowed

    async def close() -> None:
        await limiter.aclose()
        await client.aclose()

    return decide, close


async def _limits_decider(
    redis_url: str, strategy: str, n_limits: int, limit: int, period_s: int
) -> tuple[Decide, Callable[[], Awaitable[None]]]:
    from limits import RateLimitItemPerSecond
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    storage = RedisStorage(
        redis_url.replace("redis://", "async+redis://", 1), implementation="redispy"
    )
    cls = MovingWindowRateLimiter if strategy == "moving" else FixedWindowRateLimiter
    limiter = cls(storage)
    items = [
        RateLimitItemPerSecond(limit, period_s, namespace=f"b{uuid.uuid4().hex[:6]}{i}")
        for i in range(n_limits)
    ]

    async def decide(key: str) -> bool:
        # the usual way to apply several limits with `limits` (e.g. slowapi): one hit each,
        # stopping at the first refusal (not atomic: earlier limits stay consumed)
        for item in items:
            if not await limiter.hit(item, key):
                return False
        return True

    async def close() -> None:
        pass

    return decide, close


async def _python_cells(
    redis: RedisServer,
    name: str,
    make: Callable[..., Awaitable[tuple[Decide, Callable[[], Awaitable[None]]]]],
    seconds: float,
    results: Results,
    target: str,
) -> None:
    for n_limits in (1, 3):
        decide, close = await make(n_limits, 10**9, 3600)
        try:
            tp = await _throughput(redis, decide, seconds)
            rt, cmds = await _sequential(redis, decide)
        finally:
            await close()
        results.add(
            Row(
                "limiter",
                f"{name}, {n_limits} limit{'s' if n_limits > 1 else ''}",
                target,
                rate=tp.rate,
                unit="decisions/s",
                p50_ms=tp.p50_ms,
                p99_ms=tp.p99_ms,
                note=f"{rt:.2f} round trips and {cmds:.2f} scripts per decision "
                f"({tp.reads / tp.decisions:.3f} round trips under load)",
                extra={
                    "round_trips_per_decision": rt,
                    "scripts_per_decision": cmds,
                    "round_trips_per_decision_under_load": tp.reads / tp.decisions,
                    "limits": n_limits,
                    "concurrency": CONCURRENCY,
                },
            )
        )
    decide, close = await make(1, ACCURACY_LIMIT, ACCURACY_PERIOD_S)
    try:
        admitted = await _accuracy(decide)
    finally:
        await close()
    results.add(
        Row(
            "limiter",
            f"{name}, accuracy",
            target,
            note=f"admitted {admitted} of {ACCURACY_LIMIT} allowed "
            f"({CONCURRENCY} concurrent callers)",
            extra={"admitted": admitted, "allowed": ACCURACY_LIMIT},
        )
    )


# --- rate-limiter-flexible ------------------------------------------------------------------


def _rlf(redis: RedisServer, **env: str | int | float) -> dict[str, float]:
    run_env = dict(os.environ)
    run_env.update({k: str(v) for k, v in env.items()})
    run_env["REDIS_URL"] = redis.url
    proc = subprocess.run(
        ["node", "bench.js"],
        cwd=RLF_DIR,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"rate-limiter-flexible bench failed: {proc.stderr[-800:]}")
    data: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def _rlf_cells(redis: RedisServer, seconds: float, results: Results) -> None:
    if not (RLF_DIR / "node_modules").is_dir():
        results.add(
            Row(
                "limiter",
                "rate-limiter-flexible",
                "node",
                note="n/a (run npm ci in bench/peers/rlf)",
            )
        )
        return
    for n_limits in (1, 3):
        before = redis.counters()
        tp = _rlf(
            redis, MODE="throughput", SECONDS=seconds, LIMITS=n_limits, CONCURRENCY=CONCURRENCY
        )
        reads, _ = _delta(redis, before)
        before = redis.counters()
        seq = _rlf(redis, MODE="sequential", LIMITS=n_limits, COUNT=2000)
        seq_reads, seq_cmds = _delta(redis, before)
        # the sequential run also pays one PING and one script load: negligible over 2000
        rt = seq_reads / seq["decisions"]
        cmds = seq_cmds / seq["decisions"]
        results.add(
            Row(
                "limiter",
                f"rate-limiter-flexible, {n_limits} limit{'s' if n_limits > 1 else ''}",
                "node 20, ioredis auto-pipelining",
                rate=tp["rate"],
                unit="decisions/s",
                p50_ms=tp["p50_ms"],
                p99_ms=tp["p99_ms"],
                note=f"{rt:.2f} round trips and {cmds:.2f} scripts per decision "
                f"({reads / tp['decisions']:.3f} round trips under load)",
                extra={
                    "round_trips_per_decision": rt,
                    "scripts_per_decision": cmds,
                    "round_trips_per_decision_under_load": reads / tp["decisions"],
                    "limits": n_limits,
                    "concurrency": CONCURRENCY,
                },
            )
        )
    acc = _rlf(
        redis,
        MODE="accuracy",
        SECONDS=2,
        POINTS=ACCURACY_LIMIT,
        DURATION=ACCURACY_PERIOD_S,
        CONCURRENCY=CONCURRENCY,
    )
    results.add(
        Row(
            "limiter",
            "rate-limiter-flexible, accuracy",
            "node 20, ioredis auto-pipelining",
            note=f"admitted {int(acc['admitted'])} of {ACCURACY_LIMIT} allowed "
            f"({CONCURRENCY} concurrent callers)",
            extra={"admitted": int(acc["admitted"]), "allowed": ACCURACY_LIMIT},
        )
    )


# --- Redis itself ---------------------------------------------------------------------------


def _redis_benchmark(
    redis: RedisServer, *command: str, pipeline: int = 1
) -> tuple[float, float, float]:
    """(ops/s, p50 ms, p99 ms) of ``command`` from redis-benchmark, 64 clients."""
    proc = subprocess.run(
        [
            "redis-benchmark",
            "-p",
            str(redis.port),
            "-c",
            str(CONCURRENCY),
            "-n",
            str(200_000 if pipeline == 1 else 1_000_000),
            "-P",
            str(pipeline),
            "-r",
            "100000",
            "--csv",
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",...
    rows = [r for r in proc.stdout.splitlines() if r and not r.startswith('"test"')]
    if proc.returncode != 0 or not rows:
        raise RuntimeError(f"redis-benchmark failed: {proc.stdout} {proc.stderr}")
    cols = [c.strip('"') for c in re.split(r",(?=\")", rows[-1])]
    return float(cols[1]), float(cols[4]), float(cols[6])


def _redis_cells(redis: RedisServer, results: Results) -> None:
    from authsvc.ratelimit.redis import SCRIPT, SCRIPT_SHA

    redis.cli("SCRIPT", "LOAD", SCRIPT)
    gcra = [
        "EVALSHA",
        SCRIPT_SHA,
        "1",
        "authsvc:rl:{bench}:k__rand_int__",
        "",
        "1",
        "0",
        "1",
        "1000000000",
    ]
    for label, cmd, pipeline in (
        ("Redis PING", ["PING"], 1),
        ("Redis EVALSHA (authsvc GCRA, 1 limit)", gcra, 1),
        ("Redis EVALSHA (authsvc GCRA, 1 limit), pipeline 16", gcra, 16),
    ):
        ops, p50, p99 = _redis_benchmark(redis, *cmd, pipeline=pipeline)
        results.add(
            Row(
                "limiter",
                label,
                "redis-benchmark, 64 clients",
                rate=ops,
                unit="ops/s",
                p50_ms=p50,
                p99_ms=p99,
                note="physical ceiling of one Redis on these cores",
            )
        )


# --- entry point ----------------------------------------------------------------------------


def run(redis: RedisServer, results: Results, seconds: float = 3.0) -> None:
    _redis_cells(redis, results)

    async def python_side() -> None:
        async def authsvc_make(
            n: int, limit: int, period: float
        ) -> tuple[Decide, Callable[[], Awaitable[None]]]:
            return await _authsvc_decider(redis.url, n, limit, period)

        async def authsvc_direct(
            n: int, limit: int, period: float
        ) -> tuple[Decide, Callable[[], Awaitable[None]]]:
            return await _authsvc_decider(redis.url, n, limit, period, coalesce=False)

        async def moving(
            n: int, limit: int, period: int
        ) -> tuple[Decide, Callable[[], Awaitable[None]]]:
            return await _limits_decider(redis.url, "moving", n, limit, int(period))

        async def fixed(
            n: int, limit: int, period: int
        ) -> tuple[Decide, Callable[[], Awaitable[None]]]:
            return await _limits_decider(redis.url, "fixed", n, limit, int(period))

        await _python_cells(
            redis, "authsvc GCRA", authsvc_make, seconds, results, "RedisLimiter, coalesced"
        )
        await _python_cells(
            redis,
            "authsvc GCRA (no coalescing)",
            authsvc_direct,
            seconds,
            results,
            "RedisLimiter, direct",
        )
        await _python_cells(
            redis, "limits moving window", moving, seconds, results, "limits 5.8 async, redis-py"
        )
        await _python_cells(
            redis, "limits fixed window", fixed, seconds, results, "limits 5.8 async, redis-py"
        )

    asyncio.run(python_side())
    _rlf_cells(redis, seconds, results)
