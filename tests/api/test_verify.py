"""POST /v1/verify with API keys, on both backends: codes, order of checks, limits, caches."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from authsvc.clock import FrozenClock
from authsvc.services import Services
from tests.conftest import bearer, new_key, new_tenant

Client = httpx.AsyncClient
VERIFY = "/v1/verify"


async def verify(client: Client, caller: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(VERIFY, json=body, headers=bearer(caller))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


@pytest.fixture
async def verifier(client: Client, admin_key: str) -> str:
    return str((await new_key(client, admin_key, ["TOKENS:VERIFY"], name="gateway"))["key"])


async def test_verify_valid_key_returns_grants_and_matched_fixed_params(
    client: Client, admin_key: str, verifier: str, tenant: dict[str, Any]
) -> None:
    key = await new_key(
        client,
        admin_key,
        [
            {"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 42}},
            {"scope": "PIPES:READ:*", "fixed_params": {"region": "eu"}},
        ],
    )
    v = await verify(client, verifier, {"token": key["key"], "scope": "PIPES:READ:orders"})
    assert v["valid"] is True
    assert v["code"] == "VALID"
    assert v["tenant"] == tenant["tenant"]["slug"]
    assert v["tenant_id"] == tenant["tenant"]["id"]
    assert v["key_id"] == key["id"]
    assert v["fixed_params"] == {"org_id": 42}
    assert {g["scope"] for g in v["scopes"]} == {"PIPES:READ:orders", "PIPES:READ:*"}
    assert v["ratelimits"] == []
    other = await verify(client, verifier, {"token": key["key"], "scope": "pipes:read:top"})
    assert other["fixed_params"] == {"region": "eu"}


async def test_verify_without_scope_returns_valid_with_empty_fixed_params(
    client: Client, admin_key: str, verifier: str
) -> None:
    key = await new_key(
        client, admin_key, [{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 1}}]
    )
    v = await verify(client, verifier, {"token": key["key"]})
    assert (v["code"], v["fixed_params"]) == ("VALID", {})


async def test_verify_several_scopes_intersects_shared_fixed_params(
    client: Client, admin_key: str, verifier: str
) -> None:
    key = await new_key(
        client,
        admin_key,
        [
            {"scope": "PIPES:READ:a", "fixed_params": {"org": [1, 2, 3], "x": "y"}},
            {"scope": "PIPES:READ:b", "fixed_params": {"org": [2, 3, 4]}},
        ],
    )
    v = await verify(
        client, verifier, {"token": key["key"], "scopes": ["PIPES:READ:a", "PIPES:READ:b"]}
    )
    assert v["code"] == "VALID"
    assert v["fixed_params"] == {"org": [2, 3], "x": "y"}


async def test_verify_expired_key_returns_expired(
    client: Client, admin_key: str, verifier: str, clock: FrozenClock
) -> None:
    expires = (clock.now() + timedelta(seconds=60)).isoformat()
    key = await new_key(client, admin_key, ["PIPES:READ:x"], expires_at=expires)
    assert (await verify(client, verifier, {"token": key["key"]}))["code"] == "VALID"
    clock.advance(61)
    v = await verify(client, verifier, {"token": key["key"], "scope": "PIPES:READ:x"})
    assert (v["valid"], v["code"], v["key_id"]) == (False, "EXPIRED", key["id"])


async def test_verify_revoked_key_returns_revoked_on_the_next_request(
    client: Client, admin_key: str, verifier: str
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"])
    assert (await verify(client, verifier, {"token": key["key"]}))["code"] == "VALID"  # cached
    r = await client.delete(f"/v1/keys/{key['id']}", headers=bearer(admin_key))
    assert r.status_code == 200
    assert (await verify(client, verifier, {"token": key["key"]}))["code"] == "REVOKED"


async def test_verify_disabled_key_returns_disabled(
    client: Client, admin_key: str, verifier: str
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"])
    assert (await verify(client, verifier, {"token": key["key"]}))["code"] == "VALID"
    r = await client.patch(
        f"/v1/keys/{key['id']}", json={"enabled": False}, headers=bearer(admin_key)
    )
    assert r.status_code == 200
    assert (await verify(client, verifier, {"token": key["key"]}))["code"] == "DISABLED"


async def test_verify_key_of_disabled_tenant_returns_disabled(
    client: Client, services: Services, operator_key: str, tenant: dict[str, Any], admin_key: str
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"])
    tenant_id = tenant["tenant"]["id"]
    assert (await services.verify.check(key["key"], tenant_id=tenant_id)).code == "VALID"
    r = await client.delete(f"/v1/tenants/{tenant_id}", headers=bearer(operator_key))
    assert r.status_code == 200
    verdict = await services.verify.check(key["key"], tenant_id=tenant_id)
    assert verdict.code == "DISABLED"
    # Through HTTP, the tenant's own callers stop authenticating at once.
    r = await client.post(VERIFY, json={"token": key["key"]}, headers=bearer(admin_key))
    assert r.status_code == 401


async def test_verify_wrong_scope_returns_forbidden(
    client: Client, admin_key: str, verifier: str
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:orders"])
    v = await verify(client, verifier, {"token": key["key"], "scope": "PIPES:READ:users"})
    assert (v["valid"], v["code"], v["fixed_params"]) == (False, "FORBIDDEN", {})
    v = await verify(client, verifier, {"token": key["key"], "scope": "DATASOURCES:APPEND:x"})
    assert v["code"] == "FORBIDDEN"


async def test_verify_other_tenants_key_returns_not_found(
    client: Client, operator_key: str, verifier: str
) -> None:
    other = await new_tenant(client, operator_key, "Other")
    foreign = await new_key(client, other["admin_key"]["key"], ["PIPES:READ:x"])
    v = await verify(client, verifier, {"token": foreign["key"], "scope": "PIPES:READ:x"})
    assert v == {
        "valid": False,
        "code": "NOT_FOUND",
        "tenant": None,
        "tenant_id": None,
        "key_id": None,
        "sub": None,
        "scopes": [],
        "fixed_params": {},
        "expires_at": None,
        "ratelimits": [],
        "reason": v["reason"],
    }


async def test_verify_unknown_key_returns_not_found(
    client: Client, verifier: str, operator_key: str
) -> None:
    from authsvc.keys.secret import generate

    assert (await verify(client, verifier, {"token": generate("api")}))["code"] == "NOT_FOUND"
    assert (await verify(client, verifier, {"token": operator_key}))["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "ask_short", "a.b", "x" * 20_000, "Bearer ask_x"],
)
async def test_verify_malformed_token_returns_malformed(
    client: Client, verifier: str, token: str
) -> None:
    v = await verify(client, verifier, {"token": token})
    assert (v["valid"], v["code"]) == (False, "MALFORMED")


async def test_verify_mistyped_key_returns_malformed_without_lookup(
    client: Client, admin_key: str, verifier: str, services: Services
) -> None:
    key = (await new_key(client, admin_key, ["PIPES:READ:x"]))["key"]
    typo = key[:-1] + ("A" if key[-1] != "A" else "B")
    v = await verify(client, verifier, {"token": typo})
    assert v["code"] == "MALFORMED"
    assert v["reason"]
    assert key not in v["reason"]
    assert typo not in v["reason"]


@pytest.mark.parametrize(
    "body",
    [
        {"token": 1},
        {"token": "x", "cost": -1},
        {"token": "x", "cost": "1"},
        {"token": "x", "cost": 1.5},
        {"token": "x", "scope": 5},
        {"token": "x", "scopes": "PIPES:READ:x"},
        {"token": "x", "scope": "PIPES:READ:x", "scopes": ["PIPES:READ:x"]},
        {"token": "x", "scope": "not a scope"},
        {"scope": "PIPES:READ:x"},
        {"token": "x", "unknown": 1},
    ],
)
async def test_verify_malformed_request_is_400(
    client: Client, verifier: str, body: dict[str, Any]
) -> None:
    r = await client.post(VERIFY, json=body, headers=bearer(verifier))
    assert r.status_code == 400, r.text
    assert r.json()["code"] in ("INVALID_REQUEST", "INVALID_SCOPE")


async def test_verify_needs_tokens_verify_scope(client: Client, admin_key: str) -> None:
    reader = await new_key(client, admin_key, ["KEYS:READ"])
    r = await client.post(VERIFY, json={"token": "x"}, headers=bearer(reader["key"]))
    assert r.status_code == 403
    r = await client.post(VERIFY, json={"token": "x"})
    assert r.status_code == 401


LIMITED = [{"name": "per_min", "limit": 3, "period_s": 60}]


async def test_verify_over_limit_returns_rate_limited_with_states(
    client: Client, admin_key: str, verifier: str
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"], ratelimits=LIMITED)
    seen = []
    for _ in range(4):
        v = await verify(client, verifier, {"token": key["key"], "scope": "PIPES:READ:x"})
        seen.append((v["code"], v["ratelimits"][0]["remaining"]))
    assert seen == [("VALID", 2), ("VALID", 1), ("VALID", 0), ("RATE_LIMITED", 0)]
    assert v["valid"] is False
    state = v["ratelimits"][0]
    assert (state["name"], state["limit"]) == ("per_min", 3)
    assert 59 < state["reset_s"] <= 60


async def test_verify_cost_zero_peeks_without_consuming(
    client: Client, admin_key: str, verifier: str
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"], ratelimits=LIMITED)
    for _ in range(5):
        v = await verify(client, verifier, {"token": key["key"], "cost": 0})
        assert (v["code"], v["ratelimits"][0]["remaining"]) == ("VALID", 3)
    v = await verify(client, verifier, {"token": key["key"], "cost": 3})
    assert (v["code"], v["ratelimits"][0]["remaining"]) == ("VALID", 0)
    v = await verify(client, verifier, {"token": key["key"], "cost": 0})
    assert v["code"] == "VALID"  # a peek is never refused
    v = await verify(client, verifier, {"token": key["key"], "cost": 1})
    assert v["code"] == "RATE_LIMITED"


async def test_verify_limit_refills_with_time(
    client: Client, admin_key: str, verifier: str, clock: FrozenClock
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"], ratelimits=LIMITED)
    assert (await verify(client, verifier, {"token": key["key"], "cost": 3}))["code"] == "VALID"
    assert (await verify(client, verifier, {"token": key["key"]}))["code"] == "RATE_LIMITED"
    clock.advance(20)
    assert (await verify(client, verifier, {"token": key["key"]}))["code"] == "VALID"


async def test_verify_forbidden_does_not_consume_the_limit(
    client: Client, admin_key: str, verifier: str
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"], ratelimits=LIMITED)
    for _ in range(5):
        v = await verify(client, verifier, {"token": key["key"], "scope": "PIPES:READ:y"})
        assert v["code"] == "FORBIDDEN"
    v = await verify(client, verifier, {"token": key["key"], "cost": 0})
    assert v["ratelimits"][0]["remaining"] == 3


async def test_verify_identity_limit_is_shared_between_two_keys(
    client: Client, admin_key: str, verifier: str
) -> None:
    r = await client.put(
        "/v1/identities/customer-1",
        json={"ratelimits": [{"name": "shared", "limit": 4, "period_s": 60}]},
        headers=bearer(admin_key),
    )
    assert r.status_code == 200, r.text
    a = await new_key(client, admin_key, ["PIPES:READ:x"], identity="customer-1")
    b = await new_key(client, admin_key, ["PIPES:READ:x"], identity="customer-1")
    codes = []
    for key in (a, b, a, b, a, b):
        v = await verify(client, verifier, {"token": key["key"]})
        codes.append(v["code"])
    assert codes == ["VALID"] * 4 + ["RATE_LIMITED"] * 2
    assert v["ratelimits"] == [{"name": "shared", "limit": 4, "remaining": 0, "reset_s": 60.0}]
    assert v["sub"] == "customer-1"


async def test_identity_limit_change_applies_to_cached_keys(
    client: Client, admin_key: str, verifier: str
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"], identity="cust")
    v = await verify(client, verifier, {"token": key["key"]})
    assert v["ratelimits"] == []  # identity has no limits yet; record + limits now cached
    r = await client.put(
        "/v1/identities/cust",
        json={"ratelimits": [{"name": "n", "limit": 1, "period_s": 60}]},
        headers=bearer(admin_key),
    )
    assert r.status_code == 200
    assert (await verify(client, verifier, {"token": key["key"]}))["code"] == "VALID"
    assert (await verify(client, verifier, {"token": key["key"]}))["code"] == "RATE_LIMITED"


async def test_key_limit_change_keeps_counter_state(
    client: Client, admin_key: str, verifier: str, clock: FrozenClock
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"], ratelimits=LIMITED)
    assert (await verify(client, verifier, {"token": key["key"], "cost": 3}))["code"] == "VALID"
    bigger = [{"name": "per_min", "limit": 4, "period_s": 60}]
    r = await client.patch(
        f"/v1/keys/{key['id']}", json={"ratelimits": bigger}, headers=bearer(admin_key)
    )
    assert r.status_code == 200
    # Not reset: a fresh counter would admit 4 now; the used minute is still used.
    v = await verify(client, verifier, {"token": key["key"]})
    assert (v["code"], v["ratelimits"][0]["limit"]) == ("RATE_LIMITED", 4)
    clock.advance(15)  # one emission interval of the new limit
    assert (await verify(client, verifier, {"token": key["key"]}))["code"] == "VALID"


async def test_rerolled_key_old_secret_works_until_grace_ends(
    client: Client, admin_key: str, verifier: str, clock: FrozenClock
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"])
    assert (await verify(client, verifier, {"token": key["key"]}))["code"] == "VALID"
    r = await client.post(
        f"/v1/keys/{key['id']}/reroll", json={"grace_s": 30}, headers=bearer(admin_key)
    )
    new_secret = r.json()["key"]
    assert (await verify(client, verifier, {"token": key["key"]}))["code"] == "VALID"
    assert (await verify(client, verifier, {"token": new_secret}))["code"] == "VALID"
    clock.advance(31)
    assert (await verify(client, verifier, {"token": key["key"]}))["code"] == "EXPIRED"
    assert (await verify(client, verifier, {"token": new_secret}))["code"] == "VALID"


async def test_warm_verify_touches_no_database(
    client: Client, admin_key: str, verifier: str, services: Services
) -> None:
    r = await client.put(
        "/v1/identities/c",
        json={"ratelimits": [{"name": "n", "limit": 100, "period_s": 60}]},
        headers=bearer(admin_key),
    )
    assert r.status_code == 200
    limits = [{"name": "per_min", "limit": 100, "period_s": 60}]
    key = await new_key(client, admin_key, ["PIPES:READ:x"], ratelimits=limits, identity="c")
    await verify(client, verifier, {"token": key["key"], "scope": "PIPES:READ:x"})  # warm up
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engines = _engines(services)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(3):
            v = await verify(client, verifier, {"token": key["key"], "scope": "PIPES:READ:x"})
            assert v["code"] == "VALID"
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert statements == []


async def test_cold_key_burst_costs_one_statement_and_no_transaction(
    client: Client, admin_key: str, services: Services
) -> None:
    import asyncio

    key = await new_key(client, admin_key, ["PIPES:READ:x"])
    tenant_id = key["tenant_id"]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engines = _engines(services)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        verdicts = await asyncio.gather(
            *(services.verify.check(key["key"], tenant_id=tenant_id) for _ in range(20))
        )
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert {v.code for v in verdicts} == {"VALID"}
    assert len(statements) == 1  # the key, its ancestors and identities: one query
    assert "api_keys" in statements[0]
    # ... on an autocommit connection of a pool that does not ping: one round trip
    options = services.reader.engine.get_execution_options()
    assert options.get("isolation_level") == "AUTOCOMMIT" or (
        services.reader.engine.sync_engine.dialect.name == "postgresql"
        and services.reader.engine.sync_engine.pool._pre_ping is False  # type: ignore[attr-defined]
    )


def _engines(services: Services) -> list[Any]:
    """The engines whose statements a check may run (the reader's pool is its own on Postgres;
    on SQLite it is the main engine with other options, whose events are the main one's)."""
    main, reader = services.engine.sync_engine, services.reader.engine.sync_engine
    return [main] if reader.pool is main.pool else [main, reader]


async def test_management_call_over_key_limit_returns_429_with_headers(
    client: Client, admin_key: str
) -> None:
    reader = await new_key(
        client,
        admin_key,
        ["KEYS:READ"],
        ratelimits=[{"name": "mgmt", "limit": 2, "period_s": 10}],
    )
    h = bearer(reader["key"])
    first = await client.get("/v1/keys", headers=h)
    assert first.status_code == 200
    assert first.headers["RateLimit-Policy"] == '"mgmt";q=2;w=10'
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert (await client.get("/v1/keys", headers=h)).status_code == 200
    third = await client.get("/v1/keys", headers=h)
    assert third.status_code == 429
    assert third.json()["code"] == "RATE_LIMITED"
    assert third.headers["Retry-After"] == "5"
    assert third.headers["X-RateLimit-Remaining"] == "0"
    assert "RateLimit" in third.headers


async def test_unlimited_key_management_response_has_no_rate_limit_headers(
    client: Client, admin_key: str
) -> None:
    r = await client.get("/v1/keys", headers=bearer(admin_key))
    assert r.status_code == 200
    assert "RateLimit" not in r.headers
    assert "X-RateLimit-Limit" not in r.headers


async def test_revoked_key_is_refused_by_management_at_once(client: Client, admin_key: str) -> None:
    reader = await new_key(client, admin_key, ["KEYS:READ"])
    assert (await client.get("/v1/keys", headers=bearer(reader["key"]))).status_code == 200
    await client.delete(f"/v1/keys/{reader['id']}", headers=bearer(admin_key))
    assert (await client.get("/v1/keys", headers=bearer(reader["key"]))).status_code == 401


async def test_last_used_at_is_written_in_a_batch(
    client: Client, admin_key: str, verifier: str, services: Services
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"])
    await verify(client, verifier, {"token": key["key"]})
    await services.usage.flush()
    r = await client.get(f"/v1/keys/{key['id']}", headers=bearer(admin_key))
    assert r.json()["last_used_at"] is not None


async def test_metrics_count_verdicts_by_code(
    client: Client, admin_key: str, verifier: str
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"])
    await verify(client, verifier, {"token": key["key"]})
    await verify(client, verifier, {"token": "garbage"})
    r = await client.get("/metrics")
    assert r.status_code == 200
    text = r.text
    assert 'authsvc_verify_verdicts_total{code="VALID",kind="api_key"} 1.0' in text
    assert 'authsvc_verify_verdicts_total{code="MALFORMED",kind="unknown"} 1.0' in text
    assert 'authsvc_http_requests_total{method="POST",route="/v1/verify",status="200"}' in text
    assert 'authsvc_cache_lookups_total{cache="key",result="hit"}' in text
    assert key["key"] not in text
