"""RedisLimiter against real Redis servers: concurrency, round trips, outages, expiry.

The shared server (AUTHSVC_TEST_REDIS_URL, default 127.0.0.1:6379) is used where the test
only needs isolation by scope; a private ``redis-server`` on a free port is started where
the test kills it, flushes its scripts or reads its global statistics.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

from authsvc.ratelimit import LimitSpec, RedisLimiter
from authsvc.ratelimit.redis import redis_key
from tests.server import require_binary

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("AUTHSVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class PrivateRedis:
    """A throwaway redis-server process that a test may kill and restart on the same port."""

    def __init__(self) -> None:
        self.binary = require_binary(
            shutil.which("redis-server"), "redis-server", "apt-get install redis-server"
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
async def shared_client() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


def fast_failing_client(port: int, **kwargs: Any) -> Redis:
    # What production should configure too: fail in milliseconds, not after redis-py's
    # default backoff, so fail-open/closed decisions are quick while Redis is down.
    return Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 1),
        **kwargs,
    )


class Wire:
    """Counts what crosses the socket, across every connection of one pool."""

    sends = 0


def counting_pool(port: int, wire: Wire) -> ConnectionPool:
    class CountingConnection(Connection):
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            wire.sends += 1
            await super().send_packed_command(command, check_health)

    return ConnectionPool(host="127.0.0.1", port=port, connection_class=CountingConnection)


def specs(n: int, limit: int = 100, period_s: float = 60.0) -> list[LimitSpec]:
    return [LimitSpec(f"k{i}", f"l{i}", limit, period_s, limit) for i in range(n)]


# -- exactness under real concurrency --------------------------------------------------


@pytest.mark.parametrize(
    ("coalesce", "max_inflight"),
    [(True, 8), (True, 1), (False, 8)],
    ids=["coalesced", "coalesced-one-batch-in-flight", "uncoalesced"],
)
async def test_64_concurrent_callers_get_exactly_the_limit_admitted(
    shared_client: Redis, coalesce: bool, max_inflight: int
) -> None:
    name = f"rl-conc-{uuid.uuid4().hex[:12]}"
    client = Redis.from_url(REDIS_URL, client_name=name)
    limiter = RedisLimiter(client, coalesce=coalesce, max_inflight_batches=max_inflight)
    # 50 per 600 s: T = 12 s, so no unit can legitimately come back during the test.
    limit = [LimitSpec("hammer", "hammer", 50, 600.0, 50)]
    scope = f"conc-{uuid.uuid4().hex}"

    async def caller() -> int:
        admitted = 0
        for _ in range(8):
            admitted += (await limiter.check(scope, limit)).allowed  # real Redis TIME
            await asyncio.sleep(0)
        return admitted

    started = time.monotonic()
    results = await asyncio.gather(*(caller() for _ in range(64)))
    assert time.monotonic() - started < 12
    assert sum(results) == 50
    connections = [c for c in await shared_client.client_list() if c["name"] == name]
    if coalesce:
        assert len(connections) <= max_inflight  # coalescing bounds pool usage
    await limiter.aclose()
    await client.aclose()


async def test_concurrent_limiters_on_separate_connections_never_over_admit(
    shared_client: Redis,
) -> None:
    # Four "instances", each with its own client and pool, racing on one counter.
    clients = [Redis.from_url(REDIS_URL) for _ in range(4)]
    limiters = [RedisLimiter(c) for c in clients]
    limit = [LimitSpec("shared", "shared", 30, 600.0, 30)]
    scope = f"multi-{uuid.uuid4().hex}"
    decisions = await asyncio.gather(*(limiters[i % 4].check(scope, limit) for i in range(200)))
    assert sum(d.allowed for d in decisions) == 30
    for client in clients:
        await client.aclose()


# -- round trips -----------------------------------------------------------------------


async def test_one_decision_with_three_limits_is_one_round_trip(
    private_redis: PrivateRedis,
) -> None:
    wire = Wire()
    client = Redis(connection_pool=counting_pool(private_redis.port, wire))
    stats = Redis(host="127.0.0.1", port=private_redis.port)
    limiter = RedisLimiter(client)
    await limiter.check("warm", specs(1))  # connects and loads the script
    before = await stats.info("commandstats")
    wire.sends = 0

    decision = await limiter.check("rt", specs(3))

    assert decision.allowed
    assert len(decision.states) == 3
    assert wire.sends == 1
    after = await stats.info("commandstats")
    assert after["cmdstat_evalsha"]["calls"] - before["cmdstat_evalsha"]["calls"] == 1
    assert after.get("cmdstat_eval", {}).get("calls", 0) == before.get("cmdstat_eval", {}).get(
        "calls", 0
    )
    await client.aclose()
    await stats.aclose()


@pytest.mark.parametrize(("coalesce", "expected_sends"), [(True, 1), (False, 32)])
async def test_coalescing_sends_one_tick_of_decisions_in_one_round_trip(
    private_redis: PrivateRedis, coalesce: bool, expected_sends: int
) -> None:
    wire = Wire()
    client = Redis(connection_pool=counting_pool(private_redis.port, wire))
    limiter = RedisLimiter(client, coalesce=coalesce)
    # Warm up as many connections as the uncoalesced run will need, so connection
    # handshakes do not count.
    await asyncio.gather(*(limiter.check(f"w{i}", specs(1)) for i in range(32)))
    await asyncio.gather(*(client.ping() for _ in range(32)))
    wire.sends = 0

    decisions = await asyncio.gather(*(limiter.check(f"s{i}", specs(3)) for i in range(32)))

    assert all(d.allowed and len(d.states) == 3 for d in decisions)
    assert wire.sends == expected_sends
    await limiter.aclose()
    await client.aclose()


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "uncoalesced"])
async def test_flushed_script_cache_falls_back_to_eval_transparently(
    private_redis: PrivateRedis, coalesce: bool
) -> None:
    client = Redis(host="127.0.0.1", port=private_redis.port)
    limiter = RedisLimiter(client, coalesce=coalesce)
    limit = [LimitSpec("k", "k", 3, 60.0, 3)]
    assert (await limiter.check("s", limit)).allowed
    await client.script_flush()
    decisions = await asyncio.gather(*(limiter.check("s", limit) for _ in range(4)))
    assert [d.allowed for d in decisions].count(True) == 2
    assert not any(d.degraded for d in decisions)
    await limiter.aclose()
    await client.aclose()


# -- outages -----------------------------------------------------------------------------


@pytest.mark.parametrize("fail_open", [True, False], ids=["fail-open", "fail-closed"])
@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "uncoalesced"])
async def test_outage_is_decided_by_policy_and_counted_then_recovers_by_itself(
    private_redis: PrivateRedis, fail_open: bool, coalesce: bool
) -> None:
    client = fast_failing_client(private_redis.port)
    limiter = RedisLimiter(client, fail_open=fail_open, coalesce=coalesce)
    limit = [LimitSpec("k", "k", 2, 600.0, 2)]
    healthy = await limiter.check("s", limit)
    assert healthy.allowed
    assert not healthy.degraded

    private_redis.kill()
    started = time.monotonic()
    during = await asyncio.gather(*(limiter.check("s", limit) for _ in range(3)))
    assert time.monotonic() - started < 5
    for decision in during:
        assert decision.degraded
        assert decision.allowed is fail_open
        assert decision.states == ()
        assert decision.retry_after_s == (0.0 if fail_open else 1.0)
    assert limiter.failures == 3

    private_redis.start()  # same port, empty dataset, empty script cache
    after = await limiter.check("s", limit)
    assert not after.degraded
    assert after.allowed
    assert after.states[0].remaining == 1  # state was lost with the process: fresh counter
    assert limiter.failures == 3
    await limiter.aclose()
    await client.aclose()


async def test_other_redis_errors_are_raised_not_swallowed(private_redis: PrivateRedis) -> None:
    client = Redis(host="127.0.0.1", port=private_redis.port)
    limiter = RedisLimiter(client)
    limit = [LimitSpec("k", "k", 2, 600.0, 2)]
    await client.rpush(redis_key("s", "k"), "x")  # WRONGTYPE inside the script
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await limiter.check("s", limit)
    assert limiter.failures == 0
    await limiter.aclose()
    await client.aclose()


# -- state in Redis ---------------------------------------------------------------------


async def test_counter_expires_when_it_no_longer_matters(shared_client: Redis) -> None:
    limiter = RedisLimiter(shared_client)
    scope = f"ttl-{uuid.uuid4().hex}"
    await limiter.check(scope, [LimitSpec("k", "k", 10, 1.0, 10)], cost=3)  # 300 ms of debt
    ttl_ms = await shared_client.pttl(redis_key(scope, "k"))
    assert 0 < ttl_ms <= 300  # expires when the 300 ms of debt has drained, not later
    await asyncio.sleep(0.35)
    assert await shared_client.exists(redis_key(scope, "k")) == 0
    fresh = await limiter.check(scope, [LimitSpec("k", "k", 10, 1.0, 10)], cost=0)
    assert fresh.states[0].remaining == 10


async def test_peek_and_refusal_write_nothing(shared_client: Redis) -> None:
    limiter = RedisLimiter(shared_client)
    scope = f"nowrite-{uuid.uuid4().hex}"
    roomy = LimitSpec("roomy", "roomy", 10, 60.0, 10)
    await limiter.check(scope, [roomy], cost=0)
    assert await shared_client.exists(redis_key(scope, "roomy")) == 0
    refused = await limiter.check(scope, [roomy, LimitSpec("zero", "zero", 1, 60.0, 1)], cost=2)
    assert not refused.allowed
    assert await shared_client.exists(redis_key(scope, "roomy"), redis_key(scope, "zero")) == 0


async def test_every_key_of_a_decision_carries_the_scope_hash_tag(shared_client: Redis) -> None:
    limiter = RedisLimiter(shared_client)
    scope = f"tag-{uuid.uuid4().hex}"
    await limiter.check(scope, specs(3))
    keys = sorted([k.decode() async for k in shared_client.scan_iter(match=f"*{scope}*")])
    assert keys == [f"authsvc:rl:{{{scope}}}:k{i}" for i in range(3)]
