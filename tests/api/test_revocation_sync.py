"""Revocation reaching an instance without a broadcast (the poller), on both backends, the
broadcast message format, and the lifetime of an app's Redis subscriber."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from authsvc.app import create_app
from authsvc.clock import FrozenClock
from authsvc.db.models import Revocation
from authsvc.metrics import Metrics
from authsvc.revocation.bus import CHANNEL, RedisBus, decode, encode
from authsvc.revocation.denylist import Denylist
from authsvc.revocation.events import RevocationEvent
from authsvc.services import Services, build_services
from authsvc.settings import Settings
from tests.conftest import (
    REDIS_URL,
    assert_no_connection_left,
    connection_name,
    lifespan,
    make_settings,
    new_key,
    open_connections,
)

Client = httpx.AsyncClient


async def test_poll_applies_a_revocation_made_by_another_process(
    client: Client, admin_key: str, services: Services, settings: Settings, clock: FrozenClock
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"])
    tenant_id = key["tenant_id"]
    assert (await services.verify.check(key["key"], tenant_id=tenant_id)).code == "VALID"
    # e.g. the CLI without Redis: its own bus, nobody hears it
    other = build_services(dataclasses.replace(settings, redis_url=None), clock=clock)
    try:
        from authsvc.principal import Principal
        from authsvc.scopes import ADMIN, Grant, Scope

        admin = Principal(kind="key", id="cli", tenant_id=tenant_id, grants=(Grant(Scope(ADMIN)),))
        await other.keys.revoke(admin, key["id"])
    finally:
        await other.aclose()
    assert (await services.verify.check(key["key"], tenant_id=tenant_id)).code == "VALID"
    # Nobody told this instance; its poller finds the row (here: called directly).
    await services.poller.poll()
    assert (await services.verify.check(key["key"], tenant_id=tenant_id)).code == "REVOKED"


async def test_poll_applies_a_row_committed_after_a_higher_id(
    services: Services, clock: FrozenClock, tenant: dict[str, Any]
) -> None:
    """Sequence ids can commit out of order: id 10 may become visible after id 11."""
    tenant_id = tenant["tenant"]["id"]
    await services.poller.poll()
    now = clock.now()
    exp = now + timedelta(hours=1)
    async with services.db.begin() as session:
        session.add(
            Revocation(
                id=1011,
                tenant_id=tenant_id,
                kind="jti",
                value="late-b",
                cutoff=now,
                expires_at=exp,
                created_at=now,
            )
        )
    assert await services.poller.poll() == 1
    assert services.denylist.token_revoked(tenant_id, jti="late-b", sub=None, client_id=None, iat=0)
    async with services.db.begin() as session:  # the "slow" transaction commits now
        session.add(
            Revocation(
                id=1010,
                tenant_id=tenant_id,
                kind="jti",
                value="late-a",
                cutoff=now,
                expires_at=exp,
                created_at=now - timedelta(seconds=2),
            )
        )
    assert await services.poller.poll() == 1
    assert services.denylist.token_revoked(tenant_id, jti="late-a", sub=None, client_id=None, iat=0)
    assert await services.poller.poll() == 0  # nothing applied twice


async def test_load_restores_live_revocations_and_skips_expired_ones(
    services: Services, clock: FrozenClock, tenant: dict[str, Any], settings: Settings
) -> None:
    tenant_id = tenant["tenant"]["id"]
    now = clock.now()
    async with services.db.begin() as session:
        for value, expires in (("live", now + timedelta(hours=1)), ("dead", now - timedelta(1))):
            session.add(
                Revocation(
                    tenant_id=tenant_id,
                    kind="jti",
                    value=value,
                    cutoff=now,
                    expires_at=expires,
                    created_at=now,
                )
            )
    fresh = build_services(settings, clock=clock)  # a new instance starting
    try:
        assert await fresh.poller.load() == 1
        assert fresh.denylist.token_revoked(tenant_id, jti="live", sub=None, client_id=None, iat=0)
        assert not fresh.denylist.token_revoked(
            tenant_id, jti="dead", sub=None, client_id=None, iat=0
        )
    finally:
        await fresh.aclose()


def test_broadcast_message_round_trips_and_carries_no_secret() -> None:
    clock = FrozenClock(1_700_000_000)
    events = [
        RevocationEvent("ten_1", "key", "key_abc", clock.now()),
        RevocationEvent("ten_1", "jti", "jti_x", clock.now(), clock.now() + timedelta(hours=1)),
    ]
    payload = encode(events, "origin-1", "m-1")
    assert decode(payload) == ("origin-1", "m-1", events)
    with pytest.raises(ValueError, match="not a revocation message"):
        decode(b'{"o": "x", "e": [["t", "bogus", "v", 0, null]]}')
    with pytest.raises(ValueError, match="not a revocation message"):
        decode(b"not json")


def test_subscriber_applies_others_messages_and_ignores_its_own_and_garbage() -> None:
    seen: list[RevocationEvent] = []
    denylist = Denylist(listeners=[seen.append])
    bus = RedisBus(None, None, denylist, Metrics())  # type: ignore[arg-type]
    event = RevocationEvent("ten_1", "jti", "j1", FrozenClock(1_700_000_000).now())
    assert bus.handle(encode([event], bus.origin, "m-own")) == "m-own"  # acked, not re-applied
    assert seen == []
    assert bus.handle(b"garbage") is None
    assert bus.handle(encode([event], "someone-else", "m-2")) == "m-2"
    assert seen == [event]
    assert denylist.token_revoked("ten_1", jti="j1", sub=None, client_id=None, iat=0)


@pytest.fixture
def redis_settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    return make_settings(tmp_path, "postgres", request, broker="redis")


@pytest.mark.postgres
@pytest.mark.redis
async def test_an_app_is_subscribed_during_its_lifespan_and_leaves_no_connection_after(
    redis_settings: Settings, clock: FrozenClock
) -> None:
    """A subscriber left behind would be counted by every later PUBLISH on the shared channel,
    and each revocation would wait out the acknowledgement timeout for it."""
    settings = redis_settings
    name = connection_name(settings)
    assert name is not None
    svc = build_services(settings, clock=clock)
    try:
        async with lifespan(create_app(settings, services=svc)):
            subscribed = [c for c in await open_connections(name) if int(c["sub"]) > 0]
            assert len(subscribed) == 1, subscribed
        await assert_no_connection_left(name)  # the lifespan's end, not aclose, dropped them
    finally:
        await svc.aclose()


@pytest.mark.postgres
@pytest.mark.redis
async def test_an_app_shuts_down_while_broadcasts_of_other_instances_arrive(
    redis_settings: Settings, clock: FrozenClock
) -> None:
    svc = build_services(redis_settings, clock=clock)
    other = Redis.from_url(REDIS_URL)  # another instance revoking on the shared channel
    now = clock.now()
    try:
        for trial in range(12):
            async with lifespan(create_app(redis_settings, services=svc), shutdown_within_s=3):
                for n in range(5):
                    event = RevocationEvent("ten_elsewhere", "jti", f"j{n}", now, now)
                    await other.publish(CHANNEL, encode([event], "another-instance", f"m{n}"))
                await asyncio.sleep(trial * 0.0003)  # stop at a different moment of the work
    finally:
        await other.aclose()
        await svc.aclose()
