"""POST /v1/tokens/revoke on both backends: by jti, sub and key; persisted; later tokens live;
still in force on an instance started afterwards (a real start: services, lifespan, poller)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from authsvc.app import create_app
from authsvc.clock import FrozenClock
from authsvc.db.models import Revocation
from authsvc.revocation.poller import OVERLAP_S
from authsvc.services import Services, build_services
from authsvc.settings import Settings
from tests.api.tokens_helpers import Client, code, mint
from tests.conftest import BASE_URL, bearer, lifespan, new_key, new_tenant


@pytest.fixture
async def minter(client: Client, admin_key: str) -> dict[str, Any]:
    return await new_key(client, admin_key, ["TOKENS:CREATE", "PIPES:READ:*"], name="minter")


@pytest.fixture
async def revoker(client: Client, admin_key: str) -> str:
    return str((await new_key(client, admin_key, ["TOKENS:REVOKE"], name="revoker"))["key"])


async def revoke(client: Client, key: str, **body: str) -> dict[str, Any]:
    r = await client.post("/v1/tokens/revoke", json=body, headers=bearer(key))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_revoke_jti_refuses_that_token_only_and_is_persisted(
    client: Client, minter: dict[str, Any], revoker: str, tenant: dict[str, Any], services: Services
) -> None:
    t1 = await mint(client, minter["key"], ["PIPES:READ:a"])
    t2 = await mint(client, minter["key"], ["PIPES:READ:a"])
    out = await revoke(client, revoker, jti=t1["jti"])
    assert out["revoked"] == "jti"
    assert out["value"] == t1["jti"]
    assert await code(services, t1["token"], tenant) == "REVOKED"
    assert await code(services, t2["token"], tenant) == "VALID"
    async with services.db() as session:
        row = await session.scalar(select(Revocation).where(Revocation.value == t1["jti"]))
    assert row is not None
    assert row.kind == "jti"
    assert row.expires_at is not None
    assert row.expires_at > row.cutoff


async def test_revoke_sub_refuses_earlier_tokens_and_later_ones_stay_valid(
    client: Client,
    minter: dict[str, Any],
    revoker: str,
    tenant: dict[str, Any],
    services: Services,
    clock: FrozenClock,
) -> None:
    early = await mint(client, minter["key"], ["PIPES:READ:a"], sub="user-1")
    other = await mint(client, minter["key"], ["PIPES:READ:a"], sub="user-2")
    clock.advance(0.001)
    await revoke(client, revoker, sub="user-1")
    clock.advance(0.001)  # the next request, a millisecond later (jtis carry ms)
    later = await mint(client, minter["key"], ["PIPES:READ:a"], sub="user-1")
    assert await code(services, early["token"], tenant) == "REVOKED"
    assert await code(services, other["token"], tenant) == "VALID"
    assert await code(services, later["token"], tenant) == "VALID"


async def test_revoke_key_id_refuses_its_tokens_but_the_key_still_mints(
    client: Client,
    minter: dict[str, Any],
    admin_key: str,
    tenant: dict[str, Any],
    services: Services,
    clock: FrozenClock,
) -> None:
    before = await mint(client, minter["key"], ["PIPES:READ:a"])
    clock.advance(0.001)
    out = await revoke(client, admin_key, key_id=minter["id"])
    assert out["revoked"] == "key_id"
    clock.advance(0.001)
    after = await mint(client, minter["key"], ["PIPES:READ:a"])
    assert await code(services, before["token"], tenant) == "REVOKED"
    assert await code(services, after["token"], tenant) == "VALID"


@asynccontextmanager
async def restarted(settings: Settings, clock: FrozenClock) -> AsyncIterator[Client]:
    """A new instance on the same database, started the real way: new services, then the app's
    lifespan, whose start-up loads the live revocations through the poller."""
    fresh = build_services(settings, clock=clock)
    try:
        app = create_app(settings, services=fresh)
        async with lifespan(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
                yield c
    finally:
        await fresh.aclose()


async def verdict_code(client: Client, caller: str, credential: str) -> str:
    r = await client.post("/v1/verify", json={"token": credential}, headers=bearer(caller))
    assert r.status_code == 200, r.text
    return str(r.json()["code"])


async def test_revoked_tokens_stay_refused_by_a_restarted_instance(
    client: Client,
    minter: dict[str, Any],
    revoker: str,
    admin_key: str,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    by_sub = await mint(client, minter["key"], ["PIPES:READ:a"], sub="user-9")
    by_jti = await mint(client, minter["key"], ["PIPES:READ:a"], sub="user-8")
    kept = await mint(client, minter["key"], ["PIPES:READ:a"], sub="user-7")
    clock.advance(0.001)
    await revoke(client, revoker, sub="user-9")
    await revoke(client, revoker, jti=by_jti["jti"])
    # A later revocation, past the poller's overlap window: only the start-up load, not the
    # first poll, can bring the two above back.
    clock.advance(OVERLAP_S + 1)
    await revoke(client, revoker, sub="someone-else")
    async with restarted(settings, clock) as fresh:
        assert await verdict_code(fresh, admin_key, by_sub["token"]) == "REVOKED"
        assert await verdict_code(fresh, admin_key, by_jti["token"]) == "REVOKED"
        assert await verdict_code(fresh, admin_key, kept["token"]) == "VALID"


async def test_a_revoked_key_subtree_stays_refused_by_a_restarted_instance(
    client: Client, admin_key: str, settings: Settings, clock: FrozenClock
) -> None:
    grants = ["TOKENS:CREATE", "PIPES:READ:a"]
    parent = await new_key(client, admin_key, ["KEYS:WRITE", *grants], name="parent")
    child = await new_key(client, parent["key"], grants, name="child")  # in parent's subtree
    sibling = await new_key(client, admin_key, grants, name="sibling")
    child_token = await mint(client, child["key"], ["PIPES:READ:a"])
    sibling_token = await mint(client, sibling["key"], ["PIPES:READ:a"])
    r = await client.delete(f"/v1/keys/{parent['id']}", headers=bearer(admin_key))
    assert r.status_code == 200, r.text
    async with restarted(settings, clock) as fresh:
        assert await verdict_code(fresh, admin_key, parent["key"]) == "REVOKED"
        assert await verdict_code(fresh, admin_key, child["key"]) == "REVOKED"
        assert await verdict_code(fresh, admin_key, child_token["token"]) == "REVOKED"
        assert await verdict_code(fresh, admin_key, sibling["key"]) == "VALID"
        assert await verdict_code(fresh, admin_key, sibling_token["token"]) == "VALID"
        r = await fresh.get("/v1/keys", headers=bearer(child["key"]))
        assert r.status_code == 401


async def test_revoke_needs_exactly_one_field_and_tokens_revoke(
    client: Client, minter: dict[str, Any], revoker: str
) -> None:
    for body in ({}, {"jti": "a", "sub": "b"}, {"jti": ""}, {"what": "x"}):
        r = await client.post("/v1/tokens/revoke", json=body, headers=bearer(revoker))
        assert r.status_code == 400, body
    r = await client.post("/v1/tokens/revoke", json={"sub": "x"}, headers=bearer(minter["key"]))
    assert r.status_code == 403
    r = await client.post("/v1/tokens/revoke", json={"key_id": "key_nope"}, headers=bearer(revoker))
    assert r.status_code == 404


async def test_revoke_key_id_outside_the_callers_subtree_returns_404_and_revokes_nothing(
    client: Client, minter: dict[str, Any], revoker: str, tenant: dict[str, Any], services: Services
) -> None:
    token = await mint(client, minter["key"], ["PIPES:READ:a"])
    r = await client.post(
        "/v1/tokens/revoke", json={"key_id": minter["id"]}, headers=bearer(revoker)
    )
    assert r.status_code == 404
    assert r.json()["code"] == "NOT_FOUND"
    assert await code(services, token["token"], tenant) == "VALID"


async def test_revoke_in_one_tenant_does_not_touch_another(
    client: Client, operator_key: str, services: Services
) -> None:
    a = await new_tenant(client, operator_key, "A")
    b = await new_tenant(client, operator_key, "B")
    tb = await mint(client, b["admin_key"]["key"], ["PIPES:READ:a"], sub="shared-sub")
    await revoke(client, a["admin_key"]["key"], sub="shared-sub")
    await revoke(client, a["admin_key"]["key"], jti=tb["jti"])
    assert await code(services, tb["token"], b) == "VALID"
