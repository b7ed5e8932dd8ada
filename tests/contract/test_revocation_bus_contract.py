"""One behavioural contract, run against both revocation buses (:mod:`authsvc.revocation.bus`).

Every bus: a published event is in force on the publishing instance when ``publish`` returns
(the very next check refuses), publishing it again changes nothing, and every event kind
reaches the denylist's listeners exactly once.

:class:`RedisBus` also (real Redis server, ``AUTHSVC_TEST_REDIS_URL``): another instance applies
the events, and ``publish`` returns only once it has acknowledged them, or once the
acknowledgement timeout has passed; garbage on the channel is ignored; a publish while Redis
is down does not raise; a cancelled subscriber leaves the channel. Each test uses a channel of
its own, so ``PUBLISH`` counts exactly the subscribers of the test. The other instance runs on
its own thread and event loop, as another process would: it can be slow while the publisher
waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from authsvc.metrics import Metrics
from authsvc.redis_clients import RedisClients, make_redis_clients
from authsvc.revocation.bus import LocalBus, RedisBus
from authsvc.revocation.denylist import Denylist
from authsvc.revocation.events import Kind, RevocationBus, RevocationEvent
from tests.server import free_port

REDIS_URL = os.environ.get("AUTHSVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NOW = datetime(2024, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
KINDS: tuple[Kind, ...] = ("jti", "sub", "key_tokens", "key", "tenant", "signing_key")


def event(kind: Kind, value: str = "v", tenant_id: str = "ten_1") -> RevocationEvent:
    return RevocationEvent(tenant_id, kind, value, NOW, LATER)


def errors(metrics: Metrics, what: str) -> float:
    value = metrics.registry.get_sample_value(
        "authsvc_revocation_sync_errors_total", {"what": what}
    )
    return value or 0.0


@dataclass
class Instance:
    """The revocation state of one instance: its denylist, what its listeners saw, its bus."""

    bus: RevocationBus
    denylist: Denylist
    metrics: Metrics
    seen: list[tuple[RevocationEvent, float]] = field(default_factory=list)
    listener_delay_s: float = 0.0

    def listen(self, e: RevocationEvent) -> None:
        time.sleep(self.listener_delay_s)  # a slow instance (only ever set on a peer's thread)
        self.seen.append((e, time.monotonic()))

    @property
    def events(self) -> list[RevocationEvent]:
        return [e for e, _ in self.seen]


def local_instance() -> Instance:
    instance = Instance(bus=None, denylist=Denylist(), metrics=Metrics())  # type: ignore[arg-type]
    instance.denylist = Denylist(listeners=[instance.listen])
    instance.bus = LocalBus(instance.denylist, instance.metrics)
    return instance


def redis_instance(clients: RedisClients, channel: str) -> Instance:
    instance = local_instance()
    instance.bus = RedisBus(
        clients.commands, clients.subscriber, instance.denylist, instance.metrics, channel=channel
    )
    return instance


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a subscriber until it is done: a cancel that arrives while it acknowledges may be
    swallowed (tests/api/test_revocation_sync.py, the app's shutdown), and these tests are not
    about that."""
    deadline = time.monotonic() + 10
    while not task.done():
        assert time.monotonic() < deadline, "the subscriber ignores cancellation"
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)


class Peer:
    """Another instance subscribed to ``channel``, on a thread and event loop of its own."""

    def __init__(self, channel: str, listener_delay_s: float = 0.0) -> None:
        self.channel = channel
        self.listener_delay_s = listener_delay_s
        self.instance: Instance | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    def start(self) -> Instance:
        self._thread.start()
        assert self._ready.wait(10), "the peer did not subscribe"
        assert self.instance is not None
        return self.instance

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), "the peer did not stop"

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        clients = make_redis_clients(REDIS_URL)
        instance = redis_instance(clients, self.channel)
        instance.listener_delay_s = self.listener_delay_s
        assert isinstance(instance.bus, RedisBus)
        task = asyncio.create_task(instance.bus.run())
        try:
            await asyncio.wait_for(instance.bus.connected.wait(), timeout=5)
            self.instance = instance
            self._ready.set()
            await self._stop.wait()
        finally:
            await stop(task)
            await clients.aclose()


async def subscribers(channel: str) -> int:
    admin = Redis.from_url(REDIS_URL)
    try:
        counts = await admin.pubsub_numsub(channel)
        return int(counts[0][1])
    finally:
        await admin.aclose()


async def wait_for_subscribers(channel: str, count: int) -> None:
    deadline = time.monotonic() + 5
    while (found := await subscribers(channel)) != count:
        assert time.monotonic() < deadline, f"{found} subscribers on the channel, not {count}"
        await asyncio.sleep(0.01)


@dataclass
class RedisWorld:
    """The instance under test (this loop) and its peer (another thread), on one channel."""

    channel: str
    me: Instance
    peer: Instance
    subscriber: asyncio.Task[None]

    @property
    def bus(self) -> RedisBus:
        assert isinstance(self.me.bus, RedisBus)
        return self.me.bus


@contextlib.asynccontextmanager
async def redis_world(peer_delay_s: float = 0.0) -> AsyncIterator[RedisWorld]:
    channel = f"authsvc:test:revocations:{uuid.uuid4().hex}"
    clients = make_redis_clients(REDIS_URL)
    me = redis_instance(clients, channel)
    assert isinstance(me.bus, RedisBus)
    task = asyncio.create_task(me.bus.run())
    peer = Peer(channel, peer_delay_s)
    try:
        await asyncio.wait_for(me.bus.connected.wait(), timeout=5)
        peer_instance = peer.start()
        await wait_for_subscribers(channel, 2)
        yield RedisWorld(channel, me, peer_instance, task)
    finally:
        peer.stop()
        await stop(task)
        await clients.aclose()


# --- the contract of every bus -----------------------------------------------------------------


@dataclass
class World:
    me: Instance
    peer: Instance | None  # another instance that must learn every event (Redis only)


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    if request.param == "local":
        yield World(local_instance(), None)
        return
    async with redis_world() as redis:
        yield World(redis.me, redis.peer)


def revoked(
    denylist: Denylist, *, jti: str = "j", sub: str | None = None, client: str = ""
) -> bool:
    issued = (NOW - timedelta(minutes=1)).timestamp()
    return denylist.token_revoked("ten_1", jti=jti, sub=sub, client_id=client or None, iat=issued)


async def test_published_events_refuse_on_the_very_next_check(world: World) -> None:
    assert not revoked(world.me.denylist, jti="j1")
    assert not revoked(world.me.denylist, sub="user-1")
    assert not revoked(world.me.denylist, client="key_1")
    await world.me.bus.publish([event("jti", "j1"), event("sub", "user-1")])
    await world.me.bus.publish([event("key_tokens", "key_1")])
    assert revoked(world.me.denylist, jti="j1")
    assert revoked(world.me.denylist, sub="user-1")
    assert revoked(world.me.denylist, client="key_1")
    assert not revoked(world.me.denylist, jti="j2", sub="user-2", client="key_2")
    if world.peer is not None:  # returned after the acknowledgements: in force there too
        assert revoked(world.peer.denylist, jti="j1")
        assert revoked(world.peer.denylist, sub="user-1")
        assert revoked(world.peer.denylist, client="key_1")


async def test_publishing_the_same_events_again_changes_nothing(world: World) -> None:
    events = [event("jti", "j1"), event("sub", "user-1"), event("key_tokens", "key_1")]
    await world.me.bus.publish(events)
    size = len(world.me.denylist)
    await world.me.bus.publish(events)
    await world.me.bus.publish(events[:1])
    assert len(world.me.denylist) == size == 3
    assert revoked(world.me.denylist, jti="j1")
    assert revoked(world.me.denylist, sub="user-1")
    assert not revoked(world.me.denylist, jti="j2", sub="user-2")
    if world.peer is not None:
        assert len(world.peer.denylist) == 3
        assert revoked(world.peer.denylist, sub="user-1")


async def test_every_kind_reaches_the_listeners_once_in_order(world: World) -> None:
    events = [event(kind, f"value-{kind}") for kind in KINDS]
    await world.me.bus.publish(events)
    # The publisher hears its own broadcast too (and acknowledges it): it must not apply it
    # a second time.
    assert world.me.events == events
    if world.peer is not None:
        assert world.peer.events == events


async def test_publishing_no_event_tells_nobody(world: World) -> None:
    await world.me.bus.publish([])
    assert world.me.events == []
    if world.peer is not None:
        await world.me.bus.publish([event("jti", "marker")])  # ordered after any stray message
        assert world.peer.events == [event("jti", "marker")]


# --- Redis only --------------------------------------------------------------------------------


@pytest.mark.redis
async def test_publish_returns_only_after_a_slow_instance_acknowledged() -> None:
    async with redis_world(peer_delay_s=0.15) as redis:
        redis.bus.ack_timeout_s = 5.0
        started = time.monotonic()
        await redis.bus.publish([event("jti", "j1")])
        returned = time.monotonic()
        assert len(redis.peer.seen) == 1, "publish returned before the other instance applied it"
        applied_at = redis.peer.seen[0][1]
        assert started + 0.15 <= applied_at <= returned
        assert errors(redis.me.metrics, "ack_timeout") == 0


@pytest.mark.redis
async def test_publish_gives_up_waiting_after_the_ack_timeout() -> None:
    async with redis_world(peer_delay_s=0.6) as redis:
        redis.bus.ack_timeout_s = 0.1
        started = time.monotonic()
        await redis.bus.publish([event("jti", "j1")])
        took = time.monotonic() - started
        assert 0.1 <= took < 0.6, took
        assert redis.peer.seen == []  # still applying
        assert errors(redis.me.metrics, "ack_timeout") == 1
        assert revoked(redis.me.denylist, jti="j1")
        deadline = time.monotonic() + 5
        while not redis.peer.seen and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert redis.peer.events == [event("jti", "j1")]  # late, but applied


@pytest.mark.redis
async def test_malformed_messages_on_the_channel_are_ignored_and_the_subscriber_goes_on() -> None:
    garbage = [
        b"not json",
        b"[]",
        b'{"o": "x"}',
        b'{"o": "x", "m": "m1", "e": [["ten_1", "bogus", "v", 0, null]]}',
        b'{"o": "x", "m": "m2", "e": [["ten_1", "jti", 7, 0, null]]}',
        b'{"o": "x", "m": "m3", "e": [["ten_1", "jti", "v", "not a time", null]]}',
        b'{"o": "x", "m": "m4", "e": [["ten_1", "jti"]]}',
        b"\xff\xfe",
    ]
    async with redis_world() as redis:
        admin = Redis.from_url(REDIS_URL)
        try:
            for payload in garbage:
                assert await admin.publish(redis.channel, payload) == 2
        finally:
            await admin.aclose()
        await redis.bus.publish([event("jti", "after-garbage")])
        assert redis.peer.events == [event("jti", "after-garbage")]
        assert redis.me.events == [event("jti", "after-garbage")]
        assert len(redis.peer.denylist) == 1
        for instance in (redis.me, redis.peer):
            assert errors(instance.metrics, "subscriber") == 0  # no reconnect: it went on
        assert not redis.subscriber.done()


@pytest.mark.redis
async def test_publish_while_redis_is_down_applies_locally_and_does_not_raise() -> None:
    clients = make_redis_clients(f"redis://127.0.0.1:{free_port()}/0")  # nobody listens there
    me = redis_instance(clients, f"authsvc:test:revocations:{uuid.uuid4().hex}")
    try:
        started = time.monotonic()
        await me.bus.publish([event("jti", "j1"), event("key", "key_1")])
        assert time.monotonic() - started < 2.0
        assert revoked(me.denylist, jti="j1")
        assert me.events == [event("jti", "j1"), event("key", "key_1")]
        assert errors(me.metrics, "publish") == 1
    finally:
        await clients.aclose()


@pytest.mark.redis
async def test_a_cancelled_subscriber_leaves_the_channel() -> None:
    async with redis_world() as redis:
        assert await subscribers(redis.channel) == 2
        await stop(redis.subscriber)
        await wait_for_subscribers(redis.channel, 1)
        # Only the peer receives now: the publish waits for one acknowledgement, not two.
        redis.bus.ack_timeout_s = 5.0
        started = time.monotonic()
        await redis.bus.publish([event("jti", "j1")])
        assert time.monotonic() - started < 1.0
        assert errors(redis.me.metrics, "ack_timeout") == 0
        assert redis.peer.events == [event("jti", "j1")]
