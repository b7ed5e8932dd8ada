"""Throughput and latency of the rate limiters (one process, one event loop).

    .venv/bin/python bench/ratelimit_bench.py [--redis-url URL] [--seconds 3] [--uvloop]

For each backend x number of limits per decision x concurrency, N tasks call ``check``
in a loop for a fixed time on distinct counters; it prints decisions/s and p50/p99
latency. With one Python process the client side (redis-py parsing, the event loop) is
usually the bottleneck, not Redis; run several processes to load Redis itself.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from redis.asyncio import Redis

from authsvc.clock import SystemClock
from authsvc.ratelimit import Limiter, LimitSpec, MemoryLimiter, RedisLimiter


async def run_one(limiter: Limiter, n_limits: int, concurrency: int, seconds: float) -> str:
    specs = [LimitSpec(f"k{i}", f"l{i}", 10**6, 1.0, 10**6) for i in range(n_limits)]
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    count = 0
    degraded = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal count, degraded
        scope = f"bench-{run}-{w}"
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            decision = await limiter.check(scope, specs)
            degraded += decision.degraded
            latencies.append(time.perf_counter() - t0)
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    line = f"{count / elapsed:>10,.0f}/s   p50 {q[49] * 1e3:6.2f} ms   p99 {q[98] * 1e3:6.2f} ms"
    return line + (f"   DEGRADED {degraded / count:.0%}" if degraded else "")


async def main(args: argparse.Namespace) -> None:
    client = Redis.from_url(args.redis_url)
    await client.ping()
    backends: list[tuple[str, Limiter]] = [
        ("memory", MemoryLimiter(SystemClock())),
        ("redis coalesced", RedisLimiter(client, coalesce=True)),
        ("redis direct", RedisLimiter(client, coalesce=False)),
    ]
    for name, limiter in backends:
        for n_limits in (1, 3):
            for concurrency in args.concurrency:
                line = await run_one(limiter, n_limits, concurrency, args.seconds)
                print(f"{name:16} limits={n_limits} conc={concurrency:<4} {line}", flush=True)
    await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--uvloop", action="store_true")
    ns = parser.parse_args()
    if ns.uvloop:
        import uvloop

        uvloop.run(main(ns))
    else:
        asyncio.run(main(ns))
