"""POST /v1/tokens on both backends: claims, the down-scoping rule, TTLs, verification codes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from authsvc.clock import FrozenClock
from authsvc.services import Services
from tests.api.tokens_helpers import (
    Client,
    check,
    claims_of,
    code,
    header_of,
    mint,
    mint_response,
)
from tests.conftest import bearer, new_key, new_tenant

ORDERS = {"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 42, "region": ["eu", "us"]}}


@pytest.fixture
async def issuer_key(client: Client, admin_key: str) -> dict[str, Any]:
    """A backend key: may mint tokens for orders (with RLS filters) and any event source."""
    return await new_key(
        client,
        admin_key,
        ["TOKENS:CREATE", ORDERS, "DATASOURCES:READ:*", "PIPES:READ:top_10"],
        name="backend",
    )


async def test_token_for_held_scope_returns_201_with_design_claims_and_no_store(
    client: Client, issuer_key: dict[str, Any], tenant: dict[str, Any], services: Services
) -> None:
    r = await mint_response(client, issuer_key["key"], scopes=["PIPES:READ:top_10"])
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    header, claims = header_of(body["token"]), claims_of(body["token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header["kid"]
    issuer = tenant["tenant"]["issuer"]
    assert claims["iss"] == issuer
    assert claims["aud"] == issuer
    assert claims["sub"] == issuer_key["id"]
    assert claims["client_id"] == issuer_key["id"]
    assert claims["jti"] == body["jti"]
    assert claims["exp"] - claims["iat"] == 900
    assert datetime.fromisoformat(body["expires_at"]) == datetime.fromtimestamp(claims["exp"], UTC)
    assert claims["scope"] == "PIPES:READ:top_10"
    assert claims["scopes"] == [{"type": "PIPES:READ", "resource": "top_10"}]
    verdict = await check(services, body["token"], tenant)
    assert verdict.code == "VALID"
    assert verdict.principal is not None
    assert verdict.principal.sub == issuer_key["id"]
    assert [str(g.scope) for g in verdict.principal.grants] == ["PIPES:READ:top_10"]


async def test_token_inherits_fixed_params_of_covering_grant(
    client: Client, issuer_key: dict[str, Any]
) -> None:
    token = (await mint(client, issuer_key["key"], ["PIPES:READ:orders"]))["token"]
    assert claims_of(token)["scopes"] == [
        {
            "type": "PIPES:READ",
            "resource": "orders",
            "fixed_params": {"org_id": 42, "region": ["eu", "us"]},
        }
    ]


async def test_token_narrowing_list_param_and_adding_new_param_is_accepted(
    client: Client, issuer_key: dict[str, Any]
) -> None:
    grant = {"scope": "PIPES:READ:orders", "fixed_params": {"region": ["eu"], "shop": "s1"}}
    token = (await mint(client, issuer_key["key"], [grant]))["token"]
    assert claims_of(token)["scopes"][0]["fixed_params"] == {
        "org_id": 42,
        "region": ["eu"],
        "shop": "s1",
    }


async def test_token_with_extra_claims_carries_sub_aud_name_and_limits(
    client: Client, issuer_key: dict[str, Any], tenant: dict[str, Any]
) -> None:
    token = (
        await mint(
            client,
            issuer_key["key"],
            ["DATASOURCES:READ:events"],
            sub="customer-7",
            aud=tenant["tenant"]["issuer"],
            name="dashboard",
            limits={"rps": 5},
            ttl_s=60,
        )
    )["token"]
    claims = claims_of(token)
    assert claims["sub"] == "customer-7"
    assert claims["name"] == "dashboard"
    assert claims["limits"] == {"rps": 5}
    assert claims["exp"] - claims["iat"] == 60
    assert claims["scopes"] == [{"type": "DATASOURCES:READ", "resource": "events"}]


async def test_token_with_wider_scope_returns_scope_escalation(
    client: Client, issuer_key: dict[str, Any]
) -> None:
    r = await mint_response(client, issuer_key["key"], scopes=["DATASOURCES:APPEND:events"])
    assert r.status_code == 403
    assert r.json()["code"] == "SCOPE_ESCALATION"
    assert "DATASOURCES:APPEND:events" in r.json()["error"]


async def test_token_with_wider_resource_returns_scope_escalation(
    client: Client, issuer_key: dict[str, Any]
) -> None:
    for scope in ["PIPES:READ:*", "PIPES:READ:customers"]:
        r = await mint_response(client, issuer_key["key"], scopes=["PIPES:READ:top_10", scope])
        assert r.status_code == 403, scope
        assert r.json()["code"] == "SCOPE_ESCALATION"
        assert scope in r.json()["error"]


@pytest.mark.parametrize(
    "params",
    [
        {"org_id": 43},  # another value
        {"org_id": "42"},  # same text, other type
        {"region": ["eu", "us", "asia"]},  # a wider list
        {"region": "asia"},  # a value outside the list
    ],
)
async def test_token_loosening_fixed_param_returns_scope_escalation(
    client: Client, issuer_key: dict[str, Any], params: dict[str, Any]
) -> None:
    grant = {"scope": "PIPES:READ:orders", "fixed_params": params}
    r = await mint_response(client, issuer_key["key"], scopes=[grant])
    assert r.status_code == 403
    body = r.json()
    assert body["code"] == "SCOPE_ESCALATION"
    assert "PIPES:READ:orders" in body["error"]
    assert next(iter(params)) in body["error"]


async def test_token_cannot_remove_fixed_params_by_sending_empty_ones(
    client: Client, issuer_key: dict[str, Any]
) -> None:
    grant = {"scope": "PIPES:READ:orders", "fixed_params": {}}
    token = (await mint(client, issuer_key["key"], [grant]))["token"]
    assert claims_of(token)["scopes"][0]["fixed_params"]["org_id"] == 42


@pytest.mark.parametrize("scope", ["TOKENS:CREATE", "KEYS:READ", "ADMIN"])
async def test_token_with_management_scope_returns_invalid_scope(
    client: Client, issuer_key: dict[str, Any], admin_key: str, scope: str
) -> None:
    for key in (issuer_key["key"], admin_key):
        r = await mint_response(client, key, scopes=[scope])
        assert r.status_code == 400
        assert r.json()["code"] == "INVALID_SCOPE"


async def test_token_with_malformed_or_empty_scopes_returns_400(
    client: Client, issuer_key: dict[str, Any]
) -> None:
    for scopes in ([], ["not a scope"], ["PIPES:READ:orders", "PIPES:READ:orders"]):
        r = await mint_response(client, issuer_key["key"], scopes=scopes)
        assert r.status_code == 400, scopes
        assert r.json()["code"] == "INVALID_SCOPE"


async def test_token_ttl_above_tenant_maximum_returns_ttl_too_long(
    client: Client, issuer_key: dict[str, Any]
) -> None:
    r = await mint_response(client, issuer_key["key"], scopes=["PIPES:READ:top_10"], ttl_s=3601)
    assert r.status_code == 400
    assert r.json()["code"] == "TTL_TOO_LONG"
    r = await mint_response(client, issuer_key["key"], scopes=["PIPES:READ:top_10"], ttl_s=3600)
    assert r.status_code == 201
    for bad in (0, -5):
        r = await mint_response(client, issuer_key["key"], scopes=["PIPES:READ:top_10"], ttl_s=bad)
        assert r.status_code == 400
        assert r.json()["code"] == "INVALID_TTL"


async def test_token_ttl_is_capped_at_parent_key_expiry(
    client: Client, admin_key: str, clock: FrozenClock, services: Services, tenant: dict[str, Any]
) -> None:
    expires = (clock.now() + timedelta(seconds=120)).replace(microsecond=0)
    key = await new_key(
        client, admin_key, ["TOKENS:CREATE", "PIPES:READ:x"], expires_at=expires.isoformat()
    )
    body = await mint(client, key["key"], ["PIPES:READ:x"], ttl_s=3600)
    assert claims_of(body["token"])["exp"] == int(expires.timestamp())
    assert body["expires_in"] <= 120
    clock.advance(121 + 10)  # past the key's expiry and the verification leeway
    assert await code(services, body["token"], tenant) == "EXPIRED"


async def test_token_without_tokens_create_returns_403(client: Client, admin_key: str) -> None:
    reader = await new_key(client, admin_key, ["PIPES:READ:x"])
    r = await mint_response(client, reader["key"], scopes=["PIPES:READ:x"])
    assert r.status_code == 403
    assert r.json()["code"] == "INSUFFICIENT_SCOPE"


async def test_token_from_admin_key_may_carry_any_data_scope(
    client: Client, admin_key: str, services: Services, tenant: dict[str, Any]
) -> None:
    grant = {"scope": "PIPES:READ:anything", "fixed_params": {"org_id": 1}}
    token = (await mint(client, admin_key, [grant]))["token"]
    assert claims_of(token)["scopes"][0]["fixed_params"] == {"org_id": 1}
    assert await code(services, token, tenant) == "VALID"


async def test_token_with_audience_not_of_tenant_returns_invalid_audience(
    client: Client, issuer_key: dict[str, Any], operator_key: str, tenant: dict[str, Any]
) -> None:
    r = await mint_response(
        client, issuer_key["key"], scopes=["PIPES:READ:top_10"], aud="https://elsewhere"
    )
    assert r.status_code == 400
    assert r.json()["code"] == "INVALID_AUDIENCE"
    r = await client.patch(
        f"/v1/tenants/{tenant['tenant']['id']}",
        json={"audiences": ["https://api.acme.test", "https://eu.acme.test"]},
        headers=bearer(operator_key),
    )
    assert r.status_code == 200
    token = (
        await mint(client, issuer_key["key"], ["PIPES:READ:top_10"], aud=["https://eu.acme.test"])
    )["token"]
    assert claims_of(token)["aud"] == "https://eu.acme.test"
    default = (await mint(client, issuer_key["key"], ["PIPES:READ:top_10"]))["token"]
    assert claims_of(default)["aud"] == "https://api.acme.test"


async def test_token_with_malformed_body_returns_400_not_500(
    client: Client, issuer_key: dict[str, Any]
) -> None:
    for body in (
        {"scopes": "PIPES:READ:x"},
        {"scopes": ["PIPES:READ:top_10"], "ttl_s": "long"},
        {"scopes": ["PIPES:READ:top_10"], "limits": {"rps": 0}},
        {"scopes": ["PIPES:READ:top_10"], "limits": {"burst": 1}},
        {"scopes": ["PIPES:READ:top_10"], "ratelimits": [{"name": "x"}]},
        {"scopes": ["PIPES:READ:top_10"], "ratelimits": [{"name": "x", "limit": 0, "period_s": 1}]},
        {"scopes": ["PIPES:READ:top_10"], "sub": ""},
    ):
        r = await client.post("/v1/tokens", json=body, headers=bearer(issuer_key["key"]))
        assert r.status_code == 400, (body, r.text)


# --- verification codes --------------------------------------------------------------------


async def test_token_of_another_tenant_is_not_found_never_valid(
    client: Client, operator_key: str, services: Services
) -> None:
    a = await new_tenant(client, operator_key, "A")
    b = await new_tenant(client, operator_key, "B")
    token = (await mint(client, a["admin_key"]["key"], ["PIPES:READ:x"]))["token"]
    assert (await check(services, token, a)).code == "VALID"
    verdict = await check(services, token, b)
    assert verdict.code == "NOT_FOUND"  # signed by another issuer: not one of B's credentials
    assert verdict.principal is None


async def test_token_of_disabled_tenant_is_disabled(
    client: Client, operator_key: str, admin_key: str, tenant: dict[str, Any], services: Services
) -> None:
    token = (await mint(client, admin_key, ["PIPES:READ:x"]))["token"]
    r = await client.delete(f"/v1/tenants/{tenant['tenant']['id']}", headers=bearer(operator_key))
    assert r.status_code == 200
    assert await code(services, token, tenant) == "DISABLED"


async def test_token_of_revoked_or_disabled_key_is_refused(
    client: Client,
    admin_key: str,
    issuer_key: dict[str, Any],
    tenant: dict[str, Any],
    services: Services,
) -> None:
    other = await new_key(client, admin_key, ["TOKENS:CREATE", "PIPES:READ:x"])
    t1 = (await mint(client, issuer_key["key"], ["PIPES:READ:top_10"]))["token"]
    t2 = (await mint(client, other["key"], ["PIPES:READ:x"]))["token"]
    assert await code(services, t1, tenant) == "VALID"  # warms the key-state cache
    r = await client.patch(
        f"/v1/keys/{issuer_key['id']}", json={"enabled": False}, headers=bearer(admin_key)
    )
    assert r.status_code == 200
    assert await code(services, t1, tenant) == "DISABLED"
    r = await client.delete(f"/v1/keys/{other['id']}", headers=bearer(admin_key))
    assert r.status_code == 200
    assert await code(services, t2, tenant) == "REVOKED"


async def test_token_verification_is_malformed_for_garbage_and_expired_after_exp(
    client: Client,
    issuer_key: dict[str, Any],
    tenant: dict[str, Any],
    services: Services,
    clock: FrozenClock,
) -> None:
    for garbage in ("", "abc", "a.b.c", "x" * 10_000):
        assert await code(services, garbage, tenant) == "MALFORMED"
    token = (await mint(client, issuer_key["key"], ["PIPES:READ:top_10"], ttl_s=60))["token"]
    clock.advance(60 + 5)  # within the 10 s leeway
    assert await code(services, token, tenant) == "VALID"
    clock.advance(10)
    assert await code(services, token, tenant) == "EXPIRED"


async def test_verification_of_made_up_kids_reads_keys_at_most_once_per_second(
    client: Client, issuer_key: dict[str, Any], tenant: dict[str, Any], services: Services
) -> None:
    token = (await mint(client, issuer_key["key"], ["PIPES:READ:top_10"]))["token"]
    assert await code(services, token, tenant) == "VALID"
    keyring = services.signing.keyring
    before = keyring.public_loads
    rest = token.partition(".")[2]
    for i in range(50):
        forged = (
            base64.urlsafe_b64encode(
                json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": f"madeup{i}"}).encode()
            )
            .rstrip(b"=")
            .decode()
        )
        assert await code(services, f"{forged}.{rest}", tenant) == "INVALID_SIGNATURE"
    assert keyring.public_loads - before <= 1
    assert await code(services, token, tenant) == "VALID"
