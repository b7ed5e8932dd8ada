"""POST /v1/verify and GET /v1/authz with JWTs, on both backends."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from authsvc.clock import FrozenClock
from authsvc.services import Services
from tests.api.tokens_helpers import mint
from tests.conftest import bearer, new_key, new_tenant

Client = httpx.AsyncClient
ORDERS = {"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 42}}


@pytest.fixture
async def verifier(client: Client, admin_key: str) -> str:
    return str((await new_key(client, admin_key, ["TOKENS:VERIFY"], name="gateway"))["key"])


@pytest.fixture
async def minter(client: Client, admin_key: str) -> dict[str, Any]:
    return await new_key(
        client, admin_key, [ORDERS, "PIPES:READ:top", "TOKENS:CREATE"], name="backend"
    )


async def verify(client: Client, caller: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/v1/verify", json=body, headers=bearer(caller))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_verify_jwt_returns_subject_minting_key_and_fixed_params(
    client: Client, verifier: str, minter: dict[str, Any], tenant: dict[str, Any]
) -> None:
    token = await mint(client, minter["key"], ["PIPES:READ:orders"], sub="user-9")
    v = await verify(client, verifier, {"token": token["token"], "scope": "PIPES:READ:orders"})
    assert (v["valid"], v["code"]) == (True, "VALID")
    assert v["sub"] == "user-9"
    assert v["key_id"] == minter["id"]
    assert v["tenant"] == tenant["tenant"]["slug"]
    assert v["fixed_params"] == {"org_id": 42}
    assert v["scopes"] == [ORDERS]
    assert v["expires_at"] is not None


async def test_verify_jwt_repeat_is_served_from_cache(
    client: Client, verifier: str, minter: dict[str, Any], services: Services
) -> None:
    token = (await mint(client, minter["key"], ["PIPES:READ:orders"]))["token"]
    calls = 0
    original = services.token_reader._read

    async def counting(tok: str, tenant: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(tok, tenant)

    services.token_reader._read = counting  # type: ignore[method-assign]
    for _ in range(5):
        assert (await verify(client, verifier, {"token": token}))["code"] == "VALID"
    assert calls == 1


async def test_verify_expired_jwt_returns_expired(
    client: Client, verifier: str, minter: dict[str, Any], clock: FrozenClock
) -> None:
    token = (await mint(client, minter["key"], ["PIPES:READ:orders"], ttl_s=60))["token"]
    assert (await verify(client, verifier, {"token": token}))["code"] == "VALID"
    clock.advance(60 + 31)
    assert (await verify(client, verifier, {"token": token}))["code"] == "EXPIRED"


@pytest.mark.parametrize("how", ["jti", "sub", "key_id", "key_delete"])
async def test_verify_revoked_jwt_returns_revoked_even_when_cached(
    client: Client,
    verifier: str,
    minter: dict[str, Any],
    admin_key: str,
    clock: FrozenClock,
    how: str,
) -> None:
    token = await mint(client, minter["key"], ["PIPES:READ:orders"], sub="user-1")
    assert (await verify(client, verifier, {"token": token["token"]}))["code"] == "VALID"
    clock.advance(1)
    if how == "key_delete":
        r = await client.delete(f"/v1/keys/{minter['id']}", headers=bearer(admin_key))
    else:
        body = {"jti": token["jti"], "sub": "user-1", "key_id": minter["id"]}
        r = await client.post("/v1/tokens/revoke", json={how: body[how]}, headers=bearer(admin_key))
    assert r.status_code == 200, r.text
    assert (await verify(client, verifier, {"token": token["token"]}))["code"] == "REVOKED"


async def test_verify_jwt_of_other_tenant_returns_not_found(
    client: Client, verifier: str, operator_key: str
) -> None:
    other = await new_tenant(client, operator_key, "Other")
    foreign_key = await new_key(
        client, other["admin_key"]["key"], ["PIPES:READ:orders", "TOKENS:CREATE"]
    )
    token = (await mint(client, foreign_key["key"], ["PIPES:READ:orders"]))["token"]
    v = await verify(client, verifier, {"token": token, "scope": "PIPES:READ:orders"})
    assert (v["code"], v["tenant"], v["sub"]) == ("NOT_FOUND", None, None)


async def test_verify_tampered_jwt_returns_invalid_signature(
    client: Client, verifier: str, minter: dict[str, Any]
) -> None:
    token = (await mint(client, minter["key"], ["PIPES:READ:orders"]))["token"]
    head, payload, sig = token.split(".")
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BA")
    v = await verify(client, verifier, {"token": f"{head}.{payload}.{flipped}"})
    assert v["code"] == "INVALID_SIGNATURE"
    v = await verify(client, verifier, {"token": "eyJ.e30.x"})
    assert v["code"] == "MALFORMED"


async def test_verify_jwt_without_the_scope_returns_forbidden(
    client: Client, verifier: str, minter: dict[str, Any]
) -> None:
    token = (await mint(client, minter["key"], ["PIPES:READ:orders"]))["token"]
    v = await verify(client, verifier, {"token": token, "scope": "PIPES:READ:top"})
    assert v["code"] == "FORBIDDEN"
    v = await verify(client, verifier, {"token": token, "scope": "TOKENS:VERIFY"})
    assert v["code"] == "FORBIDDEN"


async def test_verify_jwt_for_another_audience_returns_malformed(
    client: Client, verifier: str, minter: dict[str, Any]
) -> None:
    token = (await mint(client, minter["key"], ["PIPES:READ:orders"]))["token"]
    v = await verify(client, verifier, {"token": token, "audience": "https://elsewhere.example"})
    assert v["code"] == "MALFORMED"


async def test_verify_jwt_rps_limit_is_keyed_by_subject(
    client: Client, verifier: str, minter: dict[str, Any]
) -> None:
    a = await mint(client, minter["key"], ["PIPES:READ:orders"], sub="u", limits={"rps": 2})
    b = await mint(client, minter["key"], ["PIPES:READ:orders"], sub="u", limits={"rps": 2})
    codes = [(await verify(client, verifier, {"token": t["token"]}))["code"] for t in (a, b, a)]
    assert codes == ["VALID", "VALID", "RATE_LIMITED"]
    v = await verify(client, verifier, {"token": b["token"]})
    assert v["ratelimits"][0]["name"] == "rps"
    assert (v["ratelimits"][0]["limit"], v["ratelimits"][0]["remaining"]) == (2, 0)
    other = await mint(client, minter["key"], ["PIPES:READ:orders"], sub="v", limits={"rps": 2})
    assert (await verify(client, verifier, {"token": other["token"]}))["code"] == "VALID"


async def test_verify_jwt_of_disabled_tenant_returns_disabled(
    client: Client,
    services: Services,
    minter: dict[str, Any],
    operator_key: str,
    tenant: dict[str, Any],
) -> None:
    token = (await mint(client, minter["key"], ["PIPES:READ:orders"]))["token"]
    tenant_id = tenant["tenant"]["id"]
    assert (await services.verify.check(token, tenant_id=tenant_id)).code == "VALID"
    r = await client.delete(f"/v1/tenants/{tenant_id}", headers=bearer(operator_key))
    assert r.status_code == 200
    assert (await services.verify.check(token, tenant_id=tenant_id)).code == "DISABLED"


async def test_authz_accepts_jwt_from_header_and_from_query_when_allowed(
    client: Client,
    verifier: str,
    minter: dict[str, Any],
    operator_key: str,
    tenant: dict[str, Any],
) -> None:
    token = (await mint(client, minter["key"], ["PIPES:READ:orders"], sub="user-3"))["token"]
    gw = {"X-Authsvc-Key": verifier, "X-Original-URI": "/v0/pipes/orders.json"}
    r = await client.get("/v1/authz", headers={**gw, **bearer(token)})
    assert r.status_code == 200
    assert r.headers["X-Authsvc-Sub"] == "user-3"
    assert json.loads(r.headers["X-Authsvc-Fixed-Params"]) == {"org_id": 42}
    query = {"X-Authsvc-Key": verifier, "X-Original-URI": f"/v0/pipes/orders.json?token={token}"}
    assert (await client.get("/v1/authz", headers=query)).status_code == 401
    r = await client.patch(
        f"/v1/tenants/{tenant['tenant']['id']}",
        json={"allow_query_token": True},
        headers=bearer(operator_key),
    )
    assert r.status_code == 200
    r = await client.get("/v1/authz", headers=query)
    assert r.status_code == 200
    assert r.headers["X-Authsvc-Sub"] == "user-3"
