"""Operator API: tenants (both backends)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import bearer, new_key, new_tenant

Client = httpx.AsyncClient


async def test_create_tenant_returns_tenant_and_admin_key_once(
    client: Client, operator_key: str
) -> None:
    body = await new_tenant(client, operator_key, "Acme Analytics")
    assert body["tenant"]["slug"] == "acme-analytics"
    assert body["tenant"]["issuer"].endswith("/t/acme-analytics")
    assert body["admin_key"]["key"].startswith("ask_")
    r = await client.get(
        f"/v1/keys/{body['admin_key']['id']}", headers=bearer(body["admin_key"]["key"])
    )
    assert r.status_code == 200
    assert "key" not in r.json()
    assert r.json()["scopes"] == [{"scope": "ADMIN", "fixed_params": {}}]


async def test_duplicate_explicit_slug_returns_conflict(client: Client, operator_key: str) -> None:
    h = bearer(operator_key)
    assert (
        await client.post("/v1/tenants", json={"name": "A", "slug": "same"}, headers=h)
    ).status_code == 201
    r = await client.post("/v1/tenants", json={"name": "B", "slug": "same"}, headers=h)
    assert r.status_code == 409
    assert r.json()["code"] == "SLUG_TAKEN"


async def test_derived_slug_collision_gets_a_suffix(client: Client, operator_key: str) -> None:
    a = await new_tenant(client, operator_key, "Same Name")
    b = await new_tenant(client, operator_key, "Same Name")
    assert a["tenant"]["slug"] == "same-name"
    assert b["tenant"]["slug"].startswith("same-name-")


async def test_tenant_routes_refuse_tenant_keys_and_missing_credentials(
    client: Client, admin_key: str
) -> None:
    r = await client.get("/v1/tenants")
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    r = await client.get("/v1/tenants", headers=bearer(admin_key))
    assert r.status_code == 403
    assert r.json()["code"] == "INSUFFICIENT_SCOPE"


async def test_list_tenants_pages_with_cursor(client: Client, operator_key: str) -> None:
    for i in range(5):
        await new_tenant(client, operator_key, f"T{i}")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        r = await client.get("/v1/tenants", params=params, headers=bearer(operator_key))
        assert r.status_code == 200
        page = r.json()
        assert len(page["data"]) <= 2
        seen += [t["id"] for t in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5
    assert seen == sorted(seen)


async def test_invalid_limit_returns_400_with_code(client: Client, operator_key: str) -> None:
    r = await client.get("/v1/tenants", params={"limit": 0}, headers=bearer(operator_key))
    assert r.status_code == 400
    assert r.json()["code"] == "INVALID_LIMIT"


async def test_patch_tenant_validates_ttls(
    client: Client, operator_key: str, tenant: dict[str, Any]
) -> None:
    tid, h = tenant["tenant"]["id"], bearer(operator_key)
    r = await client.patch(f"/v1/tenants/{tid}", json={"max_token_ttl_s": 60}, headers=h)
    assert r.status_code == 400
    assert r.json()["code"] == "INVALID_TTL"
    r = await client.patch(
        f"/v1/tenants/{tid}",
        json={"max_token_ttl_s": 7200, "audiences": ["https://api.example"]},
        headers=h,
    )
    assert r.status_code == 200
    assert r.json()["max_token_ttl_s"] == 7200
    assert r.json()["audiences"] == ["https://api.example"]


async def test_deleted_tenant_stops_every_key_at_once(
    client: Client, operator_key: str, tenant: dict[str, Any], admin_key: str
) -> None:
    child = await new_key(client, admin_key, ["KEYS:READ"])
    assert (await client.get("/v1/keys", headers=bearer(child["key"]))).status_code == 200
    r = await client.delete(f"/v1/tenants/{tenant['tenant']['id']}", headers=bearer(operator_key))
    assert r.status_code == 200
    assert r.json()["enabled"] is False
    for key in (admin_key, child["key"]):
        r = await client.get("/v1/keys", headers=bearer(key))
        assert r.status_code == 401
        assert r.json()["code"] == "UNAUTHENTICATED"


async def test_unknown_tenant_is_404(client: Client, operator_key: str) -> None:
    r = await client.get("/v1/tenants/ten_nope", headers=bearer(operator_key))
    assert r.status_code == 404
    assert r.json() == {"error": "No such tenant.", "code": "NOT_FOUND"}


async def test_tenant_create_is_audited_without_secrets(
    client: Client, operator_key: str, tenant: dict[str, Any], admin_key: str
) -> None:
    r = await client.get("/v1/audit-log", headers=bearer(admin_key))
    assert r.status_code == 200
    entries = r.json()["data"]
    assert entries[0]["action"] == "tenant.create"
    assert entries[0]["actor"].startswith("operator:")
    assert admin_key not in r.text
    assert operator_key not in r.text
