"""DESIGN §8 "secrets rotate": API and operator keys keep working across a master-secret rotation
(``AUTHSVC_PREVIOUS_SECRET_KEYS``), are re-hashed under the new secret on first use, and then
need the old secret no more. Through the real start-up path (``build_services``), both backends.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
from sqlalchemy import select

from authsvc.app import create_app
from authsvc.clock import FrozenClock
from authsvc.db.models import ApiKey
from authsvc.keys.secret import key_hash
from authsvc.master import MasterSecrets
from authsvc.services import Services, build_services
from authsvc.settings import Settings
from tests.conftest import BASE_URL, TEST_SECRET, bearer, lifespan, prepare_database

SECRET_B = "second-master-secret-" + "b" * 32


async def _verify(services: Services, settings: Settings, key: str, caller: str) -> Any:
    app = create_app(settings, services=services)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
            r = await c.post("/v1/verify", json={"token": key}, headers=bearer(caller))
            return r.status_code, r.json()


async def test_keys_survive_a_master_secret_rotation_and_are_rehashed_on_use(
    settings: Settings, clock: FrozenClock
) -> None:
    before = build_services(settings, clock=clock)
    try:
        await prepare_database(before)
        operator = await before.operators.create_key(actor="test")
        tenant, admin = await before.tenants.create(name="Acme", slug="acme", actor="test")
    finally:
        await before.aclose()

    rotated = dataclasses.replace(
        settings, secret_key=SECRET_B, previous_secret_keys=(TEST_SECRET,)
    )
    after = build_services(rotated, clock=clock)
    try:
        assert await after.operators.authenticate(operator.key) == operator.id
        status, body = await _verify(after, rotated, admin.key, admin.key)
        assert status == 200
        assert body["code"] == "VALID"
        async with after.db() as session:
            stored = await session.scalar(select(ApiKey.key_hash).where(ApiKey.id == admin.info.id))
        subkey = MasterSecrets(SECRET_B.encode()).key_hash_secret
        assert stored == key_hash(admin.key, subkey)  # re-hashed under the new secret
    finally:
        await after.aclose()

    only_b = dataclasses.replace(rotated, previous_secret_keys=())
    final = build_services(only_b, clock=clock)
    try:
        assert await final.operators.authenticate(operator.key) == operator.id
        status, body = await _verify(final, only_b, admin.key, admin.key)
        assert (status, body["code"]) == (200, "VALID")
        assert tenant.slug == "acme"
    finally:
        await final.aclose()


async def test_a_key_never_used_during_the_rotation_needs_the_old_secret(
    settings: Settings, clock: FrozenClock
) -> None:
    before = build_services(settings, clock=clock)
    try:
        await prepare_database(before)
        _, admin = await before.tenants.create(name="Acme", slug="acme", actor="test")
    finally:
        await before.aclose()
    only_b = dataclasses.replace(settings, secret_key=SECRET_B)
    after = build_services(only_b, clock=clock)
    try:
        status, body = await _verify(after, only_b, admin.key, admin.key)
        assert status == 401
        assert body["code"] == "UNAUTHENTICATED"
    finally:
        await after.aclose()
