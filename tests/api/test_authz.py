"""GET /v1/authz forward-auth with API keys, on both backends."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from authsvc.verify.authz import header_value
from authsvc.verify.uri import Refused, required_scope
from tests.conftest import bearer, new_key

Client = httpx.AsyncClient
AUTHZ = "/v1/authz"


@pytest.fixture
async def gateway(client: Client, admin_key: str) -> str:
    return str((await new_key(client, admin_key, ["TOKENS:VERIFY"], name="nginx"))["key"])


@pytest.fixture
async def reader(client: Client, admin_key: str) -> dict[str, Any]:
    return await new_key(
        client,
        admin_key,
        [{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 42, "region": ["eu", "us"]}}],
        ratelimits=[{"name": "per_min", "limit": 2, "period_s": 60}],
        identity="customer-7",
    )


def gw(gateway: str, uri: str = "/v0/pipes/orders.json", **extra: str) -> dict[str, str]:
    return {"X-Authsvc-Key": gateway, "X-Original-URI": uri, **extra}


async def test_authz_allowed_request_returns_identity_and_fixed_params(
    client: Client, gateway: str, reader: dict[str, Any], tenant: dict[str, Any]
) -> None:
    r = await client.get(AUTHZ, headers={**gw(gateway), **bearer(reader["key"])})
    assert r.status_code == 200, r.text
    assert r.headers["X-Authsvc-Tenant"] == tenant["tenant"]["slug"]
    assert r.headers["X-Authsvc-Tenant-Id"] == tenant["tenant"]["id"]
    assert r.headers["X-Authsvc-Sub"] == "customer-7"
    assert r.headers["X-Authsvc-Key-Id"] == reader["id"]
    assert json.loads(r.headers["X-Authsvc-Fixed-Params"]) == {
        "org_id": 42,
        "region": ["eu", "us"],
    }
    assert r.headers["RateLimit-Policy"] == '"per_min";q=2;w=60'
    assert r.headers["X-RateLimit-Remaining"] == "1"


async def test_authz_missing_token_returns_401_with_challenge(client: Client, gateway: str) -> None:
    r = await client.get(AUTHZ, headers=gw(gateway))
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


@pytest.mark.parametrize("token", ["garbage", "ask_" + "A" * 28])
async def test_authz_invalid_token_returns_401(client: Client, gateway: str, token: str) -> None:
    r = await client.get(AUTHZ, headers={**gw(gateway), **bearer(token)})
    assert r.status_code == 401
    assert r.headers["X-Authsvc-Code"] == "MALFORMED"
    assert token not in r.text


async def test_authz_revoked_key_returns_401(
    client: Client, gateway: str, reader: dict[str, Any], admin_key: str
) -> None:
    headers = {**gw(gateway), **bearer(reader["key"])}
    assert (await client.get(AUTHZ, headers=headers)).status_code == 200
    await client.delete(f"/v1/keys/{reader['id']}", headers=bearer(admin_key))
    r = await client.get(AUTHZ, headers=headers)
    assert r.status_code == 401
    assert r.headers["X-Authsvc-Code"] == "REVOKED"


async def test_authz_wrong_scope_returns_403(
    client: Client, gateway: str, reader: dict[str, Any]
) -> None:
    r = await client.get(
        AUTHZ, headers={**gw(gateway, "/v0/pipes/users.csv?q=1"), **bearer(reader["key"])}
    )
    assert r.status_code == 403
    assert r.headers["X-Authsvc-Code"] == "FORBIDDEN"
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


async def test_authz_explicit_scope_header_wins_over_uri(
    client: Client, gateway: str, reader: dict[str, Any]
) -> None:
    headers = {**gw(gateway, "/anything"), **bearer(reader["key"])}
    r = await client.get(AUTHZ, headers={**headers, "X-Authsvc-Scope": "PIPES:READ:orders"})
    assert r.status_code == 200
    r = await client.get(AUTHZ, headers={**headers, "X-Authsvc-Scope": "PIPES:READ:users"})
    assert r.status_code == 403


async def test_authz_without_derivable_scope_returns_403(
    client: Client, gateway: str, reader: dict[str, Any]
) -> None:
    r = await client.get(AUTHZ, headers={**gw(gateway, "/v0/sql"), **bearer(reader["key"])})
    assert r.status_code == 403


async def test_authz_over_limit_returns_403_marker_or_429_on_request(
    client: Client, gateway: str, reader: dict[str, Any]
) -> None:
    headers = {**gw(gateway), **bearer(reader["key"])}
    for _ in range(2):
        assert (await client.get(AUTHZ, headers=headers)).status_code == 200
    r = await client.get(AUTHZ, headers=headers)
    assert r.status_code == 403
    assert r.headers["X-Authsvc-Code"] == "RATE_LIMITED"
    assert r.headers["Retry-After"] == "30"
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert "WWW-Authenticate" not in r.headers
    r = await client.get(AUTHZ, headers={**headers, "X-Authsvc-Limit-Status": "429"})
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "30"


async def test_authz_envoy_path_prefix_form_derives_scope_from_path(
    client: Client, gateway: str, reader: dict[str, Any]
) -> None:
    headers = {"X-Authsvc-Key": gateway, **bearer(reader["key"])}
    r = await client.get(AUTHZ + "/v0/pipes/orders.json?limit=1", headers=headers)
    assert r.status_code == 200
    r = await client.post(AUTHZ + "/v0/pipes/other.json", headers=headers)
    assert r.status_code == 403


async def test_authz_head_request_is_answered_without_body(
    client: Client, gateway: str, reader: dict[str, Any]
) -> None:
    r = await client.head(AUTHZ, headers={**gw(gateway), **bearer(reader["key"])})
    assert r.status_code == 200
    assert r.content == b""


async def test_authz_bad_gateway_key_returns_401_and_unscoped_one_403(
    client: Client, admin_key: str, reader: dict[str, Any]
) -> None:
    r = await client.get(AUTHZ, headers={**gw("nope"), **bearer(reader["key"])})
    assert (r.status_code, r.headers["X-Authsvc-Code"]) == (401, "GATEWAY_UNAUTHENTICATED")
    r = await client.get(AUTHZ, headers={**gw(reader["key"]), **bearer(reader["key"])})
    assert (r.status_code, r.headers["X-Authsvc-Code"]) == (403, "GATEWAY_FORBIDDEN")


async def test_authz_query_token_refused_unless_tenant_allows_and_never_for_api_keys(
    client: Client, gateway: str, reader: dict[str, Any], operator_key: str, tenant: dict[str, Any]
) -> None:
    uri = f"/v0/pipes/orders.json?token={reader['key']}"
    r = await client.get(AUTHZ, headers=gw(gateway, uri))
    assert r.status_code == 401
    r = await client.patch(
        f"/v1/tenants/{tenant['tenant']['id']}",
        json={"allow_query_token": True},
        headers=bearer(operator_key),
    )
    assert r.status_code == 200
    r = await client.get(AUTHZ, headers=gw(gateway, uri))
    assert r.status_code == 401  # API keys never travel in URLs, even when allowed
    assert reader["key"] not in r.text


async def test_authz_key_of_other_tenant_returns_401(
    client: Client, gateway: str, operator_key: str
) -> None:
    from tests.conftest import new_tenant

    other = await new_tenant(client, operator_key, "Other")
    foreign = await new_key(client, other["admin_key"]["key"], ["PIPES:READ:orders"])
    r = await client.get(AUTHZ, headers={**gw(gateway), **bearer(foreign["key"])})
    assert (r.status_code, r.headers["X-Authsvc-Code"]) == (401, "NOT_FOUND")


@pytest.mark.parametrize(
    ("uri", "scope"),
    [
        ("/v0/pipes/top_10.json", "PIPES:READ:top_10"),
        ("/v0/pipes/top_10.csv?token=x&q=1", "PIPES:READ:top_10"),
        ("/v0/pipes/a.b.ndjson", "refused"),  # which dot ends the name? ambiguous: refused
        ("/v0/pipes/top%5F10.parquet", "PIPES:READ:top_10"),
        ("/v0/pipes/top_10", None),
        ("/v0/pipes/../x.json", "refused"),
        ("/v0/sql?q=select", None),
        ("", None),
    ],
)
def test_required_scope_maps_pipe_endpoints_only(uri: str, scope: str | None) -> None:
    found = required_scope(uri)
    shown = "refused" if isinstance(found, Refused) else str(found) if found else None
    assert shown == scope


def test_header_value_escapes_non_printable_subjects() -> None:
    assert header_value("user-1") == "user-1"
    assert header_value("Zoë\n") == "Zo\\u00eb\\n"
