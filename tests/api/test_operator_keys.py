"""Operator keys: list, revoke (both backends)."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from sqlalchemy import select

from authsvc.clock import FrozenClock
from authsvc.db.models import AuditEntry, OperatorKey
from authsvc.errors import NotFound
from authsvc.keys.secret import KeyHasher, key_hash
from authsvc.master import MasterSecrets
from authsvc.operators import OperatorService
from authsvc.services import Services
from tests.conftest import TEST_SECRET, bearer

Client = httpx.AsyncClient


async def test_list_keys_shows_id_start_and_dates_never_the_hash(services: Services) -> None:
    first = await services.operators.create_key(actor="test")
    second = await services.operators.create_key(actor="test")
    listed = await services.operators.list_keys()
    assert [k.id for k in listed] == [first.id, second.id]
    assert {f.name for f in dataclasses.fields(listed[0])} == {
        "id",
        "start",
        "created_at",
        "revoked_at",
    }
    assert [k.start for k in listed] == [first.key[:10], second.key[:10]]
    async with services.db() as session:
        hashes = set(await session.scalars(select(OperatorKey.key_hash)))
    shown = repr(listed)
    assert not any(h in shown for h in hashes)
    assert first.key not in shown
    assert second.key not in shown


async def test_revoke_is_idempotent_and_audited_once(
    services: Services, clock: FrozenClock
) -> None:
    created = await services.operators.create_key(actor="test")
    revoked = await services.operators.revoke(created.id, actor="ops")
    assert revoked.revoked_at == clock.now()
    clock.advance(60)
    again = await services.operators.revoke(created.id, actor="ops")
    assert again == revoked
    assert await services.operators.authenticate(created.key) is None
    async with services.db() as session:
        audited = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "operator_key.revoke")
            )
        )
    assert [(a.actor, a.target_id, a.tenant_id) for a in audited] == [("ops", created.id, None)]


async def test_revoking_an_unknown_operator_key_is_not_found(services: Services) -> None:
    with pytest.raises(NotFound):
        await services.operators.revoke("opk_nope", actor="test")


async def test_revoked_operator_key_is_refused_on_its_next_request(
    client: Client, services: Services
) -> None:
    created = await services.operators.create_key(actor="test")
    h = bearer(created.key)
    assert (await client.post("/v1/tenants", json={"name": "A"}, headers=h)).status_code == 201
    await services.operators.revoke(created.id, actor="test")
    r = await client.post("/v1/tenants", json={"name": "B"}, headers=h)
    assert r.status_code == 401
    assert r.json()["code"] == "UNAUTHENTICATED"


SECRET_B = "second-master-secret-" + "b" * 32


def restarted(services: Services, current: str, *previous: str) -> OperatorService:
    """The operator service a restart with these master secrets builds, on the same database."""
    subkeys = MasterSecrets(current.encode(), tuple(p.encode() for p in previous)).key_hash_secrets
    return OperatorService(services.db, services.clock, KeyHasher(subkeys[0], subkeys[1:]))


async def stored_hash(services: Services, key_id: str) -> str | None:
    async with services.db() as session:
        return await session.scalar(select(OperatorKey.key_hash).where(OperatorKey.id == key_id))


async def test_operator_key_under_previous_secret_authenticates_and_is_rehashed(
    services: Services,
) -> None:
    created = await services.operators.create_key(actor="test")  # under TEST_SECRET (A)
    under_a = MasterSecrets(TEST_SECRET.encode()).key_hash_secret
    under_b = MasterSecrets(SECRET_B.encode()).key_hash_secret
    assert await stored_hash(services, created.id) == key_hash(created.key, under_a)
    assert await restarted(services, SECRET_B).authenticate(created.key) is None
    assert await restarted(services, SECRET_B, TEST_SECRET).authenticate(created.key) == created.id
    assert await stored_hash(services, created.id) == key_hash(created.key, under_b)
    assert await restarted(services, SECRET_B).authenticate(created.key) == created.id
    assert await restarted(services, TEST_SECRET).authenticate(created.key) is None


async def test_revoked_operator_key_under_previous_secret_is_refused_and_kept(
    services: Services,
) -> None:
    created = await services.operators.create_key(actor="test")
    await services.operators.revoke(created.id, actor="test")
    before = await stored_hash(services, created.id)
    assert await restarted(services, SECRET_B, TEST_SECRET).authenticate(created.key) is None
    assert await stored_hash(services, created.id) == before
