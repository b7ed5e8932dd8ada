"""Signing keys on both backends: lifecycle, JWKS, rotation (manual and automatic), removal,
algorithm changes, encryption at rest."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from authsvc.clock import FrozenClock
from authsvc.db.models import Revocation, SigningKey
from authsvc.services import Services
from authsvc.signing import crypto
from authsvc.signing.service import RETIRE_MARGIN_S
from tests.api.tokens_helpers import Client, code, header_of, mint
from tests.conftest import TEST_SECRET, bearer, new_key


async def signing_keys(client: Client, admin_key: str) -> list[dict[str, Any]]:
    r = await client.get("/v1/signing-keys", headers=bearer(admin_key))
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def jwks_kids(client: Client, tenant: dict[str, Any]) -> list[str]:
    r = await client.get(f"/t/{tenant['tenant']['slug']}/.well-known/jwks.json")
    assert r.status_code == 200
    return [k["kid"] for k in r.json()["keys"]]


def by_state(keys: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    return [k for k in keys if k["state"] == state]


async def rotate(client: Client, admin_key: str) -> list[dict[str, Any]]:
    r = await client.post("/v1/signing-keys/rotate", headers=bearer(admin_key))
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def test_new_tenant_has_active_and_next_es256_keys_without_private_material(
    client: Client, admin_key: str
) -> None:
    keys = await signing_keys(client, admin_key)
    assert [k["state"] for k in keys] == ["active", "next"]
    assert {k["alg"] for k in keys} == {"ES256"}
    for k in keys:
        assert set(k["public_jwk"]) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
        assert "private_key_enc" not in k
        assert k["master_key_version"] == crypto.master_key_version(TEST_SECRET.encode())


async def test_signing_key_routes_need_admin(client: Client, admin_key: str) -> None:
    creator = await new_key(client, admin_key, ["TOKENS:CREATE", "KEYS:WRITE"])
    for method, path in (("GET", "/v1/signing-keys"), ("POST", "/v1/signing-keys/rotate")):
        r = await client.request(method, path, headers=bearer(creator["key"]))
        assert r.status_code == 403
        r = await client.request(method, path)
        assert r.status_code == 401


async def test_jwks_publishes_active_and_next_public_keys_with_max_age(
    client: Client, admin_key: str, tenant: dict[str, Any]
) -> None:
    r = await client.get(f"/t/{tenant['tenant']['slug']}/.well-known/jwks.json")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=300"
    keys = r.json()["keys"]
    assert {k["kid"] for k in keys} == {k["kid"] for k in await signing_keys(client, admin_key)}
    for k in keys:
        assert k["kty"] in ("EC", "RSA", "OKP")  # never "oct" (HMAC)
        assert "d" not in k
        assert "k" not in k
        assert k["use"] == "sig"


async def test_jwks_and_metadata_of_unknown_or_disabled_tenant_are_404(
    client: Client, operator_key: str, tenant: dict[str, Any]
) -> None:
    assert (await client.get("/t/nope/.well-known/jwks.json")).status_code == 404
    r = await client.delete(f"/v1/tenants/{tenant['tenant']['id']}", headers=bearer(operator_key))
    assert r.status_code == 200
    slug = tenant["tenant"]["slug"]
    assert (await client.get(f"/t/{slug}/.well-known/jwks.json")).status_code == 404


async def test_rotation_publishes_next_key_before_it_signs_and_keeps_old_tokens_valid(
    client: Client, admin_key: str, tenant: dict[str, Any], services: Services
) -> None:
    before = await signing_keys(client, admin_key)
    published_before = await jwks_kids(client, tenant)
    old = (await mint(client, admin_key, ["PIPES:READ:x"]))["token"]
    assert header_of(old)["kid"] == by_state(before, "active")[0]["kid"]

    after = await rotate(client, admin_key)
    assert by_state(after, "active")[0]["kid"] == by_state(before, "next")[0]["kid"]
    assert by_state(after, "retired")[0]["kid"] == by_state(before, "active")[0]["kid"]
    assert by_state(after, "retired")[0]["remove_after"] is not None
    new = (await mint(client, admin_key, ["PIPES:READ:x"]))["token"]
    assert header_of(new)["kid"] in published_before  # was in the JWKS before it signed
    assert await code(services, old, tenant) == "VALID"  # retired key still verifies
    assert await code(services, new, tenant) == "VALID"
    assert set(await jwks_kids(client, tenant)) == {k["kid"] for k in after}


async def test_removed_key_fails_its_tokens_and_leaves_the_jwks(
    client: Client, admin_key: str, tenant: dict[str, Any], services: Services, clock: FrozenClock
) -> None:
    old = await mint(client, admin_key, ["PIPES:READ:x"], ttl_s=3600)
    old_kid = header_of(old["token"])["kid"]
    await rotate(client, admin_key)
    clock.advance(3600 - 60)
    assert await code(services, old["token"], tenant) == "VALID"
    assert (await services.rotation.run_once()).removed == []
    clock.advance(60 + RETIRE_MARGIN_S)
    report = await services.rotation.run_once()
    assert report.removed == [old_kid]
    assert old_kid not in await jwks_kids(client, tenant)
    assert [k["state"] for k in await signing_keys(client, admin_key)] == ["active", "next"]
    assert await code(services, old["token"], tenant) == "INVALID_SIGNATURE"
    async with services.db() as session:
        row = await session.scalar(select(Revocation).where(Revocation.value == old_kid))
    assert row is not None
    assert row.kind == "signing_key"


async def test_retired_key_is_refused_from_remove_after_even_before_deletion(
    client: Client, admin_key: str, tenant: dict[str, Any], services: Services, clock: FrozenClock
) -> None:
    old = (await mint(client, admin_key, ["PIPES:READ:x"], ttl_s=60))["token"]
    assert await code(services, old, tenant) == "VALID"
    await rotate(client, admin_key)
    clock.advance(3600 + RETIRE_MARGIN_S + 1)
    assert await code(services, old, tenant) == "INVALID_SIGNATURE"


async def test_automatic_rotation_rotates_due_tenants_exactly_once(
    client: Client,
    admin_key: str,
    operator_key: str,
    tenant: dict[str, Any],
    services: Services,
    clock: FrozenClock,
) -> None:
    r = await client.patch(
        f"/v1/tenants/{tenant['tenant']['id']}",
        json={"signing_key_rotation_s": 3600},
        headers=bearer(operator_key),
    )
    assert r.status_code == 200
    before = await signing_keys(client, admin_key)
    assert (await services.rotation.run_once()).rotated == []
    clock.advance(3601)
    reports = await asyncio.gather(services.rotation.run_once(), services.rotation.run_once())
    assert sum(len(rep.rotated) for rep in reports) == 1
    after = await signing_keys(client, admin_key)
    assert by_state(after, "active")[0]["kid"] == by_state(before, "next")[0]["kid"]
    assert len(by_state(after, "retired")) == 1
    assert (await services.rotation.run_once()).rotated == []


async def test_tenant_without_keys_gets_them_from_the_rotation_task(
    client: Client, admin_key: str, tenant: dict[str, Any], services: Services
) -> None:
    async with services.db.begin() as session:
        for row in (await session.scalars(select(SigningKey))).all():
            await session.delete(row)
    services.signing.keyring.invalidate(tenant["tenant"]["id"])
    report = await services.rotation.run_once()
    assert report.created == [tenant["tenant"]["id"]]
    assert [k["state"] for k in await signing_keys(client, admin_key)] == ["active", "next"]
    token = (await mint(client, admin_key, ["PIPES:READ:x"]))["token"]
    assert await code(services, token, tenant) == "VALID"


@pytest.mark.parametrize(("alg", "kty"), [("RS256", "RSA"), ("EdDSA", "OKP")])
async def test_changing_signing_alg_replaces_next_key_and_signs_from_next_rotation(
    client: Client,
    admin_key: str,
    operator_key: str,
    tenant: dict[str, Any],
    services: Services,
    alg: str,
    kty: str,
) -> None:
    before = await signing_keys(client, admin_key)
    r = await client.patch(
        f"/v1/tenants/{tenant['tenant']['id']}",
        json={"signing_alg": alg},
        headers=bearer(operator_key),
    )
    assert r.status_code == 200, r.text
    keys = await signing_keys(client, admin_key)
    assert by_state(keys, "active")[0]["kid"] == by_state(before, "active")[0]["kid"]
    nxt = by_state(keys, "next")[0]
    assert nxt["alg"] == alg
    assert nxt["public_jwk"]["kty"] == kty
    assert nxt["kid"] in await jwks_kids(client, tenant)
    assert header_of((await mint(client, admin_key, ["PIPES:READ:x"]))["token"])["alg"] == "ES256"
    await rotate(client, admin_key)
    token = (await mint(client, admin_key, ["PIPES:READ:x"]))["token"]
    assert header_of(token)["alg"] == alg
    assert header_of(token)["kid"] == nxt["kid"]
    assert await code(services, token, tenant) == "VALID"


async def test_private_keys_are_encrypted_at_rest_and_bound_to_their_row(
    client: Client, admin_key: str, tenant: dict[str, Any], services: Services
) -> None:
    async with services.db() as session:
        rows = (await session.scalars(select(SigningKey))).all()
    assert len(rows) == 2
    masters = crypto.master_secret_map(TEST_SECRET.encode())
    for row in rows:
        assert b"PRIVATE KEY" not in row.private_key_enc
        aad = f"authsvc signing key|{row.tenant_id}|{row.kid}".encode()
        pem = crypto.decrypt_private_key(row.private_key_enc, master_secrets=masters, aad=aad)
        assert crypto.public_jwk(pem, kid=row.kid, alg="ES256") == row.public_jwk
        with pytest.raises(crypto.DecryptionError):
            crypto.decrypt_private_key(
                row.private_key_enc, master_secrets=masters, aad=aad + b"other"
            )


async def test_jwks_requests_read_the_database_at_most_once_a_second_per_tenant(
    client: Client, tenant: dict[str, Any], services: Services
) -> None:
    await jwks_kids(client, tenant)
    before = services.signing.keyring.public_loads
    for _ in range(20):
        await jwks_kids(client, tenant)
    assert services.signing.keyring.public_loads - before <= 1
