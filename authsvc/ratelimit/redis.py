"""Shared GCRA limiter on Redis: one Lua script call, one round trip, per decision.

Algorithm: GCRA (see :mod:`authsvc.ratelimit.types`). Each counter is one Redis string
holding its theoretical arrival time (TAT) in whole microseconds, with a PX expiry at the
moment the TAT passes (after which "absent" and "stored" decide identically).

Why a script: reading every counter, deciding, and writing only if *all* limits admit the
request must be atomic, or two instances could each see room for the last request. A Lua
script runs atomically on the server, touches all the counters in one round trip, and reads
the time from Redis ``TIME`` so app servers with skewed clocks agree on "now". All keys of
one decision are ``authsvc:rl:{<scope>}:<key>``: the ``{scope}`` hash tag puts them in one
slot, so the same script works unchanged on Redis Cluster.

Consistency trade-offs (Unkey-style honesty):

* Exact, not approximate: every decision is serialised by Redis, so concurrent callers
  across any number of instances never over-admit. The price is one round trip to the
  primary on every limited request (no local caching of counters).
* Counters live on one primary. Redis replication is asynchronous, so a failover can lose
  the last few milliseconds of increments: clients may get up to one extra burst then.
* Retries: a client-level retry of a script whose reply was lost may apply it twice. That
  errs on the strict side (a request counted twice), never on the lenient side.
* Redis down: the limiter does not raise. It returns a ``degraded`` decision, allowed or
  refused per ``fail_open`` (the ``AUTHSVC_RATELIMIT_FAIL_OPEN`` setting), and counts it in
  :attr:`RedisLimiter.failures`. redis-py reconnects by itself on a later call, so the
  limiter recovers without being recreated. How long a call takes to fail is the
  client's retry/timeout configuration: keep retries short (e.g. ``Retry(NoBackoff(), 1)``,
  ``socket_timeout=0.25``), or every request waits out redis-py's default backoff
  (10 retries up to 1 s each) during an outage.

Coalescing: with ``coalesce=True`` (the default) the ``check`` calls that arrive in the
same event-loop iteration are sent as one pipeline of ``EVALSHA`` calls. Each decision is
still its own script (its own atomic unit); they merely share a network round trip and a
pooled connection. At most ``max_inflight_batches`` pipelines are in flight; calls that
arrive meanwhile wait and leave together as the next batch. Under concurrency that roughly
doubles throughput (bench/ratelimit_bench.py) and, as important, bounds the connections
the limiter takes from the pool. Without coalescing every concurrent call holds its own
connection, and redis-py's pool (100 by default) raises ``MaxConnectionsError`` (a
``ConnectionError``) when exhausted, which this limiter must then treat like an outage.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from authsvc.clock import Clock
from authsvc.ratelimit.types import (
    ALLOWED_NO_LIMITS,
    Decision,
    LimitSpec,
    build_decision,
    gcra_params,
    to_us,
    validate_call,
)

__all__ = ["KEY_PREFIX", "RedisLimiter", "redis_key"]

log = logging.getLogger(__name__)

KEY_PREFIX = "authsvc:rl:"
SCRIPT = resources.files(__package__).joinpath("gcra.lua").read_text(encoding="utf-8")
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode("utf-8"), usedforsecurity=False).hexdigest()

# When a test injects a clock, Redis' expiry clock and the limiter's clock disagree, so a
# key must not expire on Redis' schedule while the injected clock still needs it.
_INJECTED_CLOCK_MIN_TTL_MS = 3_600_000

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)

_Call = tuple[list[str], list[int | str]]


def redis_key(scope: str, key: str) -> str:
    return f"{KEY_PREFIX}{{{scope}}}:{key}"


class RedisLimiter:
    """GCRA limiter on Redis (exact across instances). See the module docstring.

    The client belongs to the caller: :meth:`aclose` waits for in-flight decisions but
    does not close it.
    """

    failures: int
    """Decisions taken by the fail-open/closed policy because Redis was unreachable."""

    def __init__(
        self,
        client: Redis,
        *,
        fail_open: bool = True,
        clock: Clock | None = None,
        coalesce: bool = True,
        max_inflight_batches: int = 8,
    ) -> None:
        if max_inflight_batches < 1:
            raise ValueError("max_inflight_batches must be >= 1")
        self._client = client
        self._fail_open = fail_open
        self._clock = clock
        self._coalesce = coalesce
        self._min_ttl_ms = 0 if clock is None else _INJECTED_CLOCK_MIN_TTL_MS
        self.failures = 0
        self._down = False
        self._max_inflight = max_inflight_batches
        self._pending: list[tuple[_Call, asyncio.Future[list[int]]]] = []
        self._flush_scheduled = False
        self._batches: set[asyncio.Task[None]] = set()

    async def check(self, scope: str, specs: Sequence[LimitSpec], cost: int = 1) -> Decision:
        validate_call(scope, cost)
        if not specs:
            return ALLOWED_NO_LIMITS
        params = [gcra_params(spec) for spec in specs]
        keys = [redis_key(scope, spec.key) for spec in specs]
        now_arg: int | str = "" if self._clock is None else to_us(self._clock.time())
        args: list[int | str] = [now_arg, cost, self._min_ttl_ms]
        for interval, tau in params:
            args += (interval, tau)
        try:
            if self._coalesce:
                raw = await self._enqueue((keys, args))
            else:
                raw = await self._call((keys, args))
        except _UNAVAILABLE as exc:
            return self._degraded(exc)
        if self._down:
            self._down = False
            log.warning("Redis is reachable again; rate limiting is exact again.")
        allowed, now, *bases = (int(v) for v in raw)
        return build_decision(allowed == 1, now, cost, specs, params, bases)

    async def aclose(self) -> None:
        while self._batches or self._pending:
            if self._batches:
                await asyncio.gather(*self._batches, return_exceptions=True)
            else:
                await asyncio.sleep(0)

    def _degraded(self, exc: Exception) -> Decision:
        self.failures += 1
        if not self._down:
            self._down = True
            log.warning(
                "Redis unreachable (%s: %s); rate limiting fails %s until it is back.",
                type(exc).__name__,
                exc,
                "open" if self._fail_open else "closed",
            )
        return Decision(
            allowed=self._fail_open,
            states=(),
            retry_after_s=0.0 if self._fail_open else 1.0,
            degraded=True,
        )

    async def _call(self, call: _Call) -> list[int]:
        keys, args = call
        try:
            raw = await self._client.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
        except NoScriptError:
            # Fresh server, restart or SCRIPT FLUSH: EVAL runs it and caches it again.
            raw = await self._client.eval(SCRIPT, len(keys), *keys, *args)
        return list(raw)

    def _enqueue(self, call: _Call) -> asyncio.Future[list[int]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        self._pending.append((call, future))
        self._schedule_flush(loop)
        return future

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._flush_scheduled and len(self._batches) < self._max_inflight:
            self._flush_scheduled = True
            # call_soon runs after every task already ready in this loop iteration had
            # its chance to enqueue, so they all share one round trip.
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._pending or len(self._batches) >= self._max_inflight:
            return
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._run_batch(batch))
        self._batches.add(task)
        task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._batches.discard(task)
        # Requests that piled up while every batch slot was busy go out now, as one batch.
        if self._pending:
            self._schedule_flush(task.get_loop())

    async def _run_batch(self, batch: list[tuple[_Call, asyncio.Future[list[int]]]]) -> None:
        results: list[Any]
        try:
            if len(batch) == 1:
                results = [await self._call(batch[0][0])]
            else:
                async with self._client.pipeline(transaction=False) as pipe:
                    for (keys, args), _ in batch:
                        pipe.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
                    results = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (call, future), result in zip(batch, results, strict=True):
            if isinstance(result, NoScriptError):
                try:
                    result = await self._call(call)
                except Exception as exc:
                    result = exc
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(list(result))
