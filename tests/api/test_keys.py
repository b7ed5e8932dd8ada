"""Tenant API: API keys (both backends)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from authsvc.clock import FrozenClock
from tests.conftest import bearer, new_key, new_tenant

Client = httpx.AsyncClient


async def test_create_key_returns_secret_once_and_stores_only_hash(
    client: Client, admin_key: str, services: Any
) -> None:
    created = await new_key(client, admin_key, ["KEYS:READ", "PIPES:READ:orders"], name="backend")
    assert created["key"].startswith("ask_")
    assert created["start"] == created["key"][:10]
    r = await client.get(f"/v1/keys/{created['id']}", headers=bearer(admin_key))
    assert "key" not in r.json()
    from sqlalchemy import text

    async with services.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM api_keys"))).all()
    assert all(created["key"] not in str(tuple(row)) for row in rows)


async def test_scoped_key_lists_only_itself_and_keys_of_its_tenant_for_admin(
    client: Client, operator_key: str
) -> None:
    a = await new_tenant(client, operator_key, "A")
    b = await new_tenant(client, operator_key, "B")
    reader_a = await new_key(client, a["admin_key"]["key"], ["KEYS:READ"])
    await new_key(client, b["admin_key"]["key"], ["KEYS:READ"])
    r = await client.get("/v1/keys", headers=bearer(reader_a["key"]))
    assert r.status_code == 200
    assert {k["id"] for k in r.json()["data"]} == {reader_a["id"]}  # DESIGN §8: its subtree
    r = await client.get("/v1/keys", headers=bearer(a["admin_key"]["key"]))
    ids = {k["id"] for k in r.json()["data"]}
    assert ids == {a["admin_key"]["id"], reader_a["id"]}
    assert all(k["tenant_id"] == a["tenant"]["id"] for k in r.json()["data"])


async def test_key_of_other_tenant_is_404_for_every_operation(
    client: Client, operator_key: str
) -> None:
    a = await new_tenant(client, operator_key, "A")
    b = await new_tenant(client, operator_key, "B")
    victim = await new_key(client, b["admin_key"]["key"], ["KEYS:READ"])
    h = bearer(a["admin_key"]["key"])
    vid = victim["id"]
    for method, path, body in [
        ("GET", f"/v1/keys/{vid}", None),
        ("PATCH", f"/v1/keys/{vid}", {"name": "pwned"}),
        ("DELETE", f"/v1/keys/{vid}", None),
        ("POST", f"/v1/keys/{vid}/reroll", {"grace_s": 0}),
    ]:
        r = await client.request(method, path, json=body, headers=h)
        assert r.status_code == 404, (method, r.text)
        assert r.json()["code"] == "NOT_FOUND"
    # the victim key still works
    assert (await client.get("/v1/keys", headers=bearer(victim["key"]))).status_code == 200


async def test_revoked_key_is_refused_on_the_next_call(client: Client, admin_key: str) -> None:
    k = await new_key(client, admin_key, ["KEYS:READ"])
    assert (await client.get("/v1/keys", headers=bearer(k["key"]))).status_code == 200
    r = await client.delete(f"/v1/keys/{k['id']}", headers=bearer(admin_key))
    assert r.status_code == 200
    assert r.json()["revoked_at"] is not None
    r = await client.get("/v1/keys", headers=bearer(k["key"]))
    assert r.status_code == 401
    assert "revoked" in r.json()["error"]


async def test_key_without_keys_write_cannot_create_keys(client: Client, admin_key: str) -> None:
    reader = await new_key(client, admin_key, ["KEYS:READ"])
    r = await client.post(
        "/v1/keys", json={"name": "x", "scopes": ["KEYS:READ"]}, headers=bearer(reader["key"])
    )
    assert r.status_code == 403
    assert r.json()["code"] == "INSUFFICIENT_SCOPE"
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("requested", "offending"),
    [
        (["PIPES:READ:other"], "PIPES:READ:other"),
        (["PIPES:READ:*"], "PIPES:READ:*"),
        ([{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 7}}], "PIPES:READ:orders"),
        (["ADMIN"], "ADMIN"),
        (["TOKENS:CREATE"], "TOKENS:CREATE"),
    ],
)
async def test_key_creation_cannot_escalate(
    client: Client, admin_key: str, requested: list[Any], offending: str
) -> None:
    writer = await new_key(
        client,
        admin_key,
        ["KEYS:WRITE", {"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 42}}],
    )
    r = await client.post(
        "/v1/keys", json={"name": "x", "scopes": requested}, headers=bearer(writer["key"])
    )
    assert r.status_code == 403
    assert r.json()["code"] == "SCOPE_ESCALATION"
    assert offending in r.json()["error"]


async def test_child_key_inherits_fixed_params(client: Client, admin_key: str) -> None:
    writer = await new_key(
        client,
        admin_key,
        ["KEYS:WRITE", {"scope": "PIPES:READ:*", "fixed_params": {"org_id": [1, 2]}}],
    )
    child = await new_key(client, writer["key"], ["PIPES:READ:orders"])
    assert child["scopes"] == [{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": [1, 2]}}]
    assert child["created_by"] == writer["id"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "x", "scopes": []}, "INVALID_SCOPE"),
        ({"name": "x", "scopes": ["NOT A SCOPE"]}, "INVALID_SCOPE"),
        (
            {"name": "x", "scopes": [{"scope": "PIPES:READ:a", "fixed_params": {"x": {"y": 1}}}]},
            "INVALID_FIXED_PARAMS",
        ),
        (
            {
                "name": "x",
                "scopes": ["PIPES:READ:a"],
                "ratelimits": [{"name": "r", "limit": 0, "period_s": 1}],
            },
            "INVALID_RATELIMIT",
        ),
        (
            {"name": "x", "scopes": ["PIPES:READ:a"], "expires_at": "2001-01-01T00:00:00Z"},
            "INVALID_EXPIRY",
        ),
        (
            {"name": "x", "scopes": ["PIPES:READ:a"], "expires_at": "2099-01-01T00:00:00"},
            "INVALID_REQUEST",
        ),
        ({"name": "", "scopes": ["PIPES:READ:a"]}, "INVALID_REQUEST"),
        ({"name": "x", "scopes": "PIPES:READ:a"}, "INVALID_REQUEST"),
        ({"name": "x", "scope": ["PIPES:READ:a"]}, "INVALID_REQUEST"),
        (
            {"name": "x", "scopes": ["PIPES:READ:a"], "metadata": {"big": "x" * 9000}},
            "INVALID_METADATA",
        ),
    ],
)
async def test_bad_key_bodies_return_400_with_code(
    client: Client, admin_key: str, body: dict[str, Any], code: str
) -> None:
    r = await client.post("/v1/keys", json=body, headers=bearer(admin_key))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code


@pytest.mark.parametrize(
    "raw",
    [
        b"{bad",
        b"",
        b"[]",
        b"null",
        b'{"name": "x", "scopes": ["PIPES:READ:a"]',
        "\udcff".encode("utf-8", "surrogatepass"),
    ],
)
async def test_malformed_json_returns_400_never_500(
    client: Client, admin_key: str, raw: bytes
) -> None:
    r = await client.post(
        "/v1/keys", content=raw, headers={**bearer(admin_key), "Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error", "code"}


async def test_oversized_body_returns_413(client: Client, admin_key: str) -> None:
    body = b'{"name": "' + b"x" * 200_000 + b'"}'
    r = await client.post(
        "/v1/keys", content=body, headers={**bearer(admin_key), "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["code"] == "PAYLOAD_TOO_LARGE"


async def test_overlong_uri_returns_414(client: Client, admin_key: str) -> None:
    r = await client.get("/v1/keys/" + "k" * 9000, headers=bearer(admin_key))
    assert r.status_code == 414


@pytest.mark.parametrize(("over", "status"), [(0, 200), (1, 431), (48 * 1024, 431)])
async def test_header_block_over_16_kib_returns_431_headers_too_large(
    client: Client, over: int, status: int
) -> None:
    def wire_bytes(request: httpx.Request) -> int:
        return sum(
            len(name) + len(b": ") + len(value) + len(b"\r\n")
            for name, value in request.headers.raw
        )

    def padded(pad: int) -> httpx.Request:
        return client.build_request("GET", "/healthz", headers={"X-Pad": "p" * pad})

    request = padded(16 * 1024 - wire_bytes(padded(0)) + over)
    assert wire_bytes(request) == 16 * 1024 + over
    r = await client.send(request)
    assert r.status_code == status
    if status == 431:
        assert r.json() == {
            "error": "The request header fields are too large.",
            "code": "HEADERS_TOO_LARGE",
        }


async def test_patch_changes_fields_and_can_clear_expiry(client: Client, admin_key: str) -> None:
    k = await new_key(client, admin_key, ["PIPES:READ:a"], expires_at="2099-01-01T00:00:00Z")
    r = await client.patch(
        f"/v1/keys/{k['id']}",
        json={
            "name": "renamed",
            "expires_at": None,
            "identity": "cust-1",
            "metadata": {"team": "x"},
        },
        headers=bearer(admin_key),
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["name"], out["expires_at"], out["identity"], out["metadata"]) == (
        "renamed",
        None,
        "cust-1",
        {"team": "x"},
    )


async def test_disabled_key_is_refused_and_reenabled_key_works(
    client: Client, admin_key: str
) -> None:
    k = await new_key(client, admin_key, ["KEYS:READ"])
    await client.patch(f"/v1/keys/{k['id']}", json={"enabled": False}, headers=bearer(admin_key))
    assert (await client.get("/v1/keys", headers=bearer(k["key"]))).status_code == 401
    await client.patch(f"/v1/keys/{k['id']}", json={"enabled": True}, headers=bearer(admin_key))
    assert (await client.get("/v1/keys", headers=bearer(k["key"]))).status_code == 200


async def test_expired_key_is_refused(client: Client, admin_key: str, clock: FrozenClock) -> None:
    expires = (clock.now() + timedelta(seconds=60)).isoformat()
    k = await new_key(client, admin_key, ["KEYS:READ"], expires_at=expires)
    assert (await client.get("/v1/keys", headers=bearer(k["key"]))).status_code == 200
    clock.advance(61)
    r = await client.get("/v1/keys", headers=bearer(k["key"]))
    assert r.status_code == 401
    assert "expired" in r.json()["error"]


async def test_reroll_keeps_old_secret_during_grace_only(
    client: Client, admin_key: str, clock: FrozenClock
) -> None:
    k = await new_key(client, admin_key, ["KEYS:READ"])
    r = await client.post(
        f"/v1/keys/{k['id']}/reroll", json={"grace_s": 30}, headers=bearer(admin_key)
    )
    assert r.status_code == 200
    new = r.json()["key"]
    assert new != k["key"]
    assert r.json()["id"] == k["id"]
    assert (await client.get("/v1/keys", headers=bearer(new))).status_code == 200
    assert (await client.get("/v1/keys", headers=bearer(k["key"]))).status_code == 200
    clock.advance(31)
    assert (await client.get("/v1/keys", headers=bearer(k["key"]))).status_code == 401
    assert (await client.get("/v1/keys", headers=bearer(new))).status_code == 200


async def test_reroll_without_grace_stops_old_secret_now(client: Client, admin_key: str) -> None:
    k = await new_key(client, admin_key, ["KEYS:READ"])
    r = await client.post(
        f"/v1/keys/{k['id']}/reroll", json={"grace_s": 0}, headers=bearer(admin_key)
    )
    assert (await client.get("/v1/keys", headers=bearer(k["key"]))).status_code == 401
    assert (await client.get("/v1/keys", headers=bearer(r.json()["key"]))).status_code == 200


async def test_malformed_and_unknown_keys_are_401(client: Client) -> None:
    from authsvc.keys import secret

    for token in ["garbage", "ask_short", secret.generate()]:
        r = await client.get("/v1/keys", headers=bearer(token))
        assert r.status_code == 401
        assert token not in r.text


async def test_identity_put_and_get(client: Client, admin_key: str) -> None:
    body = {
        "ratelimits": [{"name": "rps", "limit": 10, "period_s": 1}],
        "metadata": {"plan": "pro"},
    }
    r = await client.put("/v1/identities/org-42", json=body, headers=bearer(admin_key))
    assert r.status_code == 200, r.text
    assert r.json()["ratelimits"] == [{"name": "rps", "limit": 10, "period_s": 1.0, "burst": 10}]
    r = await client.get("/v1/identities/org-42", headers=bearer(admin_key))
    assert r.json()["metadata"] == {"plan": "pro"}
    assert (await client.get("/v1/identities/nope", headers=bearer(admin_key))).status_code == 404


async def test_management_actions_are_audited(client: Client, admin_key: str) -> None:
    k = await new_key(client, admin_key, ["KEYS:READ"])
    await client.patch(f"/v1/keys/{k['id']}", json={"name": "n"}, headers=bearer(admin_key))
    await client.post(f"/v1/keys/{k['id']}/reroll", json={"grace_s": 0}, headers=bearer(admin_key))
    await client.delete(f"/v1/keys/{k['id']}", headers=bearer(admin_key))
    r = await client.get("/v1/audit-log", params={"limit": 50}, headers=bearer(admin_key))
    actions = [e["action"] for e in r.json()["data"] if e["target_id"] == k["id"]]
    assert actions == ["key.create", "key.update", "key.reroll", "key.revoke"]
    assert k["key"] not in r.text


async def test_audit_log_needs_admin(client: Client, admin_key: str) -> None:
    k = await new_key(client, admin_key, ["KEYS:WRITE"])
    r = await client.get("/v1/audit-log", headers=bearer(k["key"]))
    assert r.status_code == 403


async def test_unknown_route_and_method_have_codes(client: Client, admin_key: str) -> None:
    r = await client.get("/v1/nope", headers=bearer(admin_key))
    assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND")
    r = await client.put("/v1/keys", headers=bearer(admin_key))
    assert (r.status_code, r.json()["code"]) == (405, "METHOD_NOT_ALLOWED")


async def test_health_and_schema(client: Client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"]["database"] == "ok"
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/v1/keys" in schema["paths"]
    assert "/v1/tenants" in schema["paths"]
