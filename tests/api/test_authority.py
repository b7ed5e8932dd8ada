"""DESIGN §8: every operation is bounded by its caller, on both backends.

Each test is one attack an ordinary key could try (the findings of the security review), with
the refusal it must get and a check afterwards that nothing changed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from authsvc.clock import FrozenClock
from tests.api.tokens_helpers import claims_of
from tests.conftest import bearer, new_key

Client = httpx.AsyncClient

LIMITED = [{"name": "hourly", "limit": 2, "period_s": 3600}]


async def get_key(client: Client, admin_key: str, key_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/keys/{key_id}", headers=bearer(admin_key))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def verdict(client: Client, key: str, body: dict[str, Any], caller: str) -> dict[str, Any]:
    r = await client.post("/v1/verify", json={"token": key, **body}, headers=bearer(caller))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


@pytest.fixture
async def manager(client: Client, admin_key: str) -> dict[str, Any]:
    """An ordinary key that manages keys: KEYS:WRITE plus a filtered data scope."""
    return await new_key(
        client,
        admin_key,
        [
            "KEYS:WRITE",
            "TOKENS:CREATE",
            {"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 42}},
        ],
        name="manager",
    )


# --- finding 1: tenant takeover through key management -------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("POST", "/reroll", {"grace_s": 0}),
        ("PATCH", "", {"scopes": ["KEYS:READ"]}),
        ("PATCH", "", {"enabled": False}),
        ("PATCH", "", {"name": "pwned"}),
        ("DELETE", "", None),
        ("GET", "", None),
    ],
)
async def test_keys_write_key_acting_on_the_admin_key_returns_404_and_changes_nothing(
    client: Client,
    admin_key: str,
    tenant: dict[str, Any],
    manager: dict[str, Any],
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    admin_id = tenant["admin_key"]["id"]
    before = await get_key(client, admin_key, admin_id)
    r = await client.request(
        method, f"/v1/keys/{admin_id}{suffix}", json=body, headers=bearer(manager["key"])
    )
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "NOT_FOUND"
    assert admin_key not in r.text
    assert "ask_" not in r.text
    assert await get_key(client, admin_key, admin_id) == before
    assert (await client.get("/v1/keys", headers=bearer(admin_key))).status_code == 200


async def test_keys_write_key_cannot_touch_a_sibling_created_by_the_admin(
    client: Client, admin_key: str, manager: dict[str, Any]
) -> None:
    sibling = await new_key(client, admin_key, ["PIPES:READ:x"], name="sibling")
    for method, suffix, body in [
        ("PATCH", "", {"enabled": False}),
        ("POST", "/reroll", {}),
        ("DELETE", "", None),
    ]:
        r = await client.request(
            method, f"/v1/keys/{sibling['id']}{suffix}", json=body, headers=bearer(manager["key"])
        )
        assert r.status_code == 404, (method, r.text)
    info = await get_key(client, admin_key, sibling["id"])
    assert info["enabled"] is True
    assert info["revoked_at"] is None


async def test_non_admin_key_lists_and_reads_only_itself_and_its_descendants(
    client: Client, admin_key: str, tenant: dict[str, Any], manager: dict[str, Any]
) -> None:
    child = await new_key(client, manager["key"], ["KEYS:WRITE", "PIPES:READ:orders"], name="child")
    grandchild = await new_key(client, child["key"], ["PIPES:READ:orders"], name="grandchild")
    await new_key(client, admin_key, ["PIPES:READ:x"], name="other")
    r = await client.get("/v1/keys", headers=bearer(manager["key"]))
    assert {k["id"] for k in r.json()["data"]} == {manager["id"], child["id"], grandchild["id"]}
    r = await client.get("/v1/keys", headers=bearer(child["key"]))
    assert {k["id"] for k in r.json()["data"]} == {child["id"], grandchild["id"]}
    assert child["parent_id"] == manager["id"]
    assert grandchild["parent_id"] == child["id"]
    assert manager["parent_id"] is None  # created by an ADMIN key: a root
    r = await client.get(f"/v1/keys/{manager['id']}", headers=bearer(child["key"]))
    assert r.status_code == 404  # an ancestor is outside the subtree too


async def test_descendant_can_be_rerolled_by_its_ancestor_and_the_secret_is_its_own(
    client: Client, manager: dict[str, Any]
) -> None:
    child = await new_key(client, manager["key"], ["PIPES:READ:orders"], name="child")
    r = await client.post(
        f"/v1/keys/{child['id']}/reroll", json={"grace_s": 0}, headers=bearer(manager["key"])
    )
    assert r.status_code == 200
    assert r.json()["id"] == child["id"]
    assert r.json()["scopes"] == child["scopes"]


# --- finding 4: children wider than parents ------------------------------------------------


async def test_child_of_an_expiring_key_inherits_its_expiry_and_cannot_outlive_it(
    client: Client, admin_key: str
) -> None:
    expires = (datetime.now(UTC) + timedelta(days=365)).replace(microsecond=0)
    parent = await new_key(
        client,
        admin_key,
        ["KEYS:WRITE", "PIPES:READ:x"],
        expires_at=expires.isoformat(),
        ratelimits=LIMITED,
    )
    child = await new_key(client, parent["key"], ["PIPES:READ:x"], ratelimits=[])
    assert datetime.fromisoformat(child["expires_at"]) == expires
    later = (expires + timedelta(days=1)).isoformat()
    r = await client.post(
        "/v1/keys",
        json={"name": "c", "scopes": ["PIPES:READ:x"], "expires_at": later},
        headers=bearer(parent["key"]),
    )
    assert r.status_code == 403
    assert r.json()["code"] == "SCOPE_ESCALATION"
    assert "expires_at" in r.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        {"ratelimits": []},
        {"expires_at": None},
        {"ratelimits": [{"name": "hourly", "limit": 3, "period_s": 3600}]},
        {"ratelimits": [{"name": "renamed", "limit": 2, "period_s": 3600}]},
        {"scopes": ["KEYS:WRITE", "PIPES:READ:x", "PIPES:READ:y"]},
        {"scopes": ["KEYS:WRITE", {"scope": "PIPES:READ:x", "fixed_params": {"org": [1, 2, 3]}}]},
        {"identity": None},
        {"identity": "someone-else"},
    ],
)
async def test_key_loosening_itself_returns_403_naming_the_field_and_changes_nothing(
    client: Client, admin_key: str, body: dict[str, Any]
) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    key = await new_key(
        client,
        admin_key,
        ["KEYS:WRITE", {"scope": "PIPES:READ:x", "fixed_params": {"org": [1, 2]}}],
        ratelimits=LIMITED,
        expires_at=expires,
        identity="acme",
    )
    before = await get_key(client, admin_key, key["id"])
    r = await client.patch(f"/v1/keys/{key['id']}", json=body, headers=bearer(key["key"]))
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "SCOPE_ESCALATION"
    after = await get_key(client, admin_key, key["id"])
    assert after == before


async def test_key_may_narrow_itself_and_a_disabled_child_stays_disabled(
    client: Client, admin_key: str
) -> None:
    key = await new_key(
        client,
        admin_key,
        ["KEYS:WRITE", "PIPES:READ:x", "PIPES:READ:y"],
        ratelimits=[{"name": "hourly", "limit": 100, "period_s": 3600}],
    )
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = await client.patch(
        f"/v1/keys/{key['id']}",
        json={
            "scopes": ["KEYS:WRITE", {"scope": "PIPES:READ:x", "fixed_params": {"org": 1}}],
            "ratelimits": [
                {"name": "hourly", "limit": 50, "period_s": 3600},
                {"name": "minute", "limit": 10, "period_s": 60},
            ],
            "expires_at": soon,
            "name": "narrower",
        },
        headers=bearer(key["key"]),
    )
    assert r.status_code == 200, r.text
    assert [g["scope"] for g in r.json()["scopes"]] == ["KEYS:WRITE", "PIPES:READ:x"]
    child = await new_key(client, key["key"], ["PIPES:READ:x"])
    r = await client.patch(
        f"/v1/keys/{child['id']}", json={"enabled": False}, headers=bearer(key["key"])
    )
    assert r.status_code == 200
    r = await client.patch(
        f"/v1/keys/{child['id']}", json={"enabled": True}, headers=bearer(key["key"])
    )
    assert r.status_code == 403
    assert r.json()["code"] == "SCOPE_ESCALATION"
    r = await client.patch(
        f"/v1/keys/{child['id']}", json={"enabled": True}, headers=bearer(admin_key)
    )
    assert r.status_code == 200  # only ADMIN widens


async def test_keys_derive_at_most_eight_levels_deep(client: Client, admin_key: str) -> None:
    key = await new_key(client, admin_key, ["KEYS:WRITE"])
    for _ in range(7):
        key = await new_key(client, key["key"], ["KEYS:WRITE"])
    r = await client.post(
        "/v1/keys", json={"name": "deep", "scopes": ["KEYS:WRITE"]}, headers=bearer(key["key"])
    )
    assert r.status_code == 400
    assert r.json()["code"] == "KEY_TOO_DEEP"


# --- subtrees follow their root ------------------------------------------------------------


async def test_revoking_a_key_revokes_its_subtree_and_every_token_minted_from_it(
    client: Client, admin_key: str, manager: dict[str, Any]
) -> None:
    child = await new_key(client, manager["key"], ["TOKENS:CREATE", "PIPES:READ:orders"])
    r = await client.post(
        "/v1/tokens", json={"scopes": ["PIPES:READ:orders"]}, headers=bearer(child["key"])
    )
    token = r.json()["token"]
    assert (await verdict(client, token, {}, admin_key))["code"] == "VALID"
    assert (
        await client.delete(f"/v1/keys/{manager['id']}", headers=bearer(admin_key))
    ).status_code == 200
    assert (await verdict(client, child["key"], {}, admin_key))["code"] == "REVOKED"
    assert (await verdict(client, token, {}, admin_key))["code"] == "REVOKED"
    assert (await get_key(client, admin_key, child["id"]))["revoked_at"] is not None
    r = await client.get("/v1/keys", headers=bearer(child["key"]))
    assert r.status_code == 401


async def test_disabling_a_key_disables_its_subtree_until_an_admin_enables_it(
    client: Client, admin_key: str, manager: dict[str, Any]
) -> None:
    child = await new_key(client, manager["key"], ["PIPES:READ:orders"])
    r = await client.patch(
        f"/v1/keys/{manager['id']}", json={"enabled": False}, headers=bearer(admin_key)
    )
    assert r.status_code == 200
    assert (await verdict(client, child["key"], {}, admin_key))["code"] == "DISABLED"
    r = await client.patch(
        f"/v1/keys/{manager['id']}", json={"enabled": True}, headers=bearer(admin_key)
    )
    assert (await verdict(client, child["key"], {}, admin_key))["code"] == "VALID"


async def test_narrowing_a_key_narrows_its_children_and_their_tokens_at_once(
    client: Client, admin_key: str
) -> None:
    parent = await new_key(
        client,
        admin_key,
        ["KEYS:WRITE", "TOKENS:CREATE", {"scope": "PIPES:READ:*", "fixed_params": {"org": [1, 2]}}],
    )
    child = await new_key(client, parent["key"], ["TOKENS:CREATE", "PIPES:READ:a", "PIPES:READ:b"])
    token = (
        await client.post(
            "/v1/tokens", json={"scopes": ["PIPES:READ:a"]}, headers=bearer(child["key"])
        )
    ).json()["token"]
    v = await verdict(client, child["key"], {"scope": "PIPES:READ:b"}, admin_key)
    assert v["code"] == "VALID"
    assert v["fixed_params"] == {"org": [1, 2]}
    r = await client.patch(
        f"/v1/keys/{parent['id']}",
        json={
            "scopes": [
                "KEYS:WRITE",
                "TOKENS:CREATE",
                {"scope": "PIPES:READ:a", "fixed_params": {"org": 1}},
            ]
        },
        headers=bearer(parent["key"]),
    )
    assert r.status_code == 200, r.text
    v = await verdict(client, child["key"], {"scope": "PIPES:READ:b"}, admin_key)
    assert v["code"] == "FORBIDDEN"
    v = await verdict(client, child["key"], {"scope": "PIPES:READ:a"}, admin_key)
    assert v["code"] == "VALID"
    assert v["fixed_params"] == {"org": 1}
    v = await verdict(client, token, {"scope": "PIPES:READ:a"}, admin_key)
    assert v["code"] == "VALID"
    assert v["fixed_params"] == {"org": 1}
    # and the child can no longer mint what its parent lost
    r = await client.post(
        "/v1/tokens", json={"scopes": ["PIPES:READ:b"]}, headers=bearer(child["key"])
    )
    assert r.status_code == 403
    assert r.json()["code"] == "SCOPE_ESCALATION"


# --- finding 3: limits escaped by minting, and every endpoint charges ----------------------


async def test_jwt_minted_by_client_credentials_is_charged_against_the_keys_limit(
    client: Client, admin_key: str, tenant: dict[str, Any]
) -> None:
    key = await new_key(client, admin_key, ["PIPES:READ:x"], ratelimits=LIMITED)
    assert (await verdict(client, key["key"], {}, admin_key))["code"] == "VALID"  # 1 of 2
    r = await client.post(
        f"/t/{tenant['tenant']['slug']}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(key["id"], key["key"]),
    )
    assert r.status_code == 200, r.text  # 2 of 2: the token endpoint charges its client
    token = r.json()["access_token"]
    v = await verdict(client, token, {}, admin_key)
    assert v["code"] == "RATE_LIMITED"
    r = await client.post(
        f"/t/{tenant['tenant']['slug']}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(key["id"], key["key"]),
    )
    assert r.status_code == 429
    assert r.json()["error"] == "rate_limited"
    assert int(r.headers["Retry-After"]) >= 1


async def test_child_key_spends_its_parents_budget(client: Client, admin_key: str) -> None:
    parent = await new_key(
        client, admin_key, ["KEYS:WRITE", "PIPES:READ:x"], ratelimits=LIMITED
    )  # creating the child is its 1st call
    child = await new_key(client, parent["key"], ["PIPES:READ:x"])
    assert (await verdict(client, child["key"], {}, admin_key))["code"] == "VALID"  # 2nd
    v = await verdict(client, child["key"], {}, admin_key)
    assert v["code"] == "RATE_LIMITED"
    assert {s["name"] for s in v["ratelimits"]} == {"hourly"}


async def test_admin_keys_limits_throttle_only_its_own_calls(
    client: Client, operator_key: str, tenant: dict[str, Any], admin_key: str
) -> None:
    r = await client.patch(
        f"/v1/keys/{tenant['admin_key']['id']}",
        json={"ratelimits": [{"name": "admin", "limit": 3, "period_s": 3600}]},
        headers=bearer(admin_key),
    )
    assert r.status_code == 200
    minted = await client.post(
        "/v1/tokens", json={"scopes": ["PIPES:READ:x"]}, headers=bearer(admin_key)
    )
    assert minted.status_code == 201
    verifier = await new_key(client, admin_key, ["TOKENS:VERIFY"])  # 3rd call of the admin
    for _ in range(5):
        v = await verdict(client, minted.json()["token"], {}, verifier["key"])
        assert v["code"] == "VALID"


async def test_introspection_and_oauth_revocation_charge_their_caller(
    client: Client, admin_key: str, tenant: dict[str, Any]
) -> None:
    caller = await new_key(
        client,
        admin_key,
        ["TOKENS:VERIFY", "TOKENS:REVOKE", "PIPES:READ:x"],
        ratelimits=[{"name": "h", "limit": 2, "period_s": 3600}],
    )
    base = f"/t/{tenant['tenant']['slug']}/oauth2"
    for path in ("/introspect", "/revoke"):
        r = await client.post(base + path, data={"token": "x.y.z"}, headers=bearer(caller["key"]))
        assert r.status_code == 200, r.text
    r = await client.post(base + "/introspect", data={"token": "x"}, headers=bearer(caller["key"]))
    assert r.status_code == 429
    assert r.json()["error"] == "rate_limited"


async def test_token_ratelimits_limit_its_subject_on_top_of_the_key(
    client: Client, admin_key: str
) -> None:
    minter = await new_key(client, admin_key, ["TOKENS:CREATE", "PIPES:READ:x"])
    r = await client.post(
        "/v1/tokens",
        json={
            "scopes": ["PIPES:READ:x"],
            "sub": "user-1",
            "ratelimits": [{"name": "per_user", "limit": 1, "period_s": 60}],
        },
        headers=bearer(minter["key"]),
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert (await verdict(client, token, {}, admin_key))["code"] == "VALID"
    v = await verdict(client, token, {}, admin_key)
    assert v["code"] == "RATE_LIMITED"
    assert [s["name"] for s in v["ratelimits"]] == ["per_user"]


# --- finding 6: filters never fail open ----------------------------------------------------


async def test_required_scopes_with_disjoint_filters_are_forbidden_not_unfiltered(
    client: Client, admin_key: str
) -> None:
    key = await new_key(
        client,
        admin_key,
        [
            {"scope": "PIPES:READ:a", "fixed_params": {"org_id": 1}},
            {"scope": "PIPES:READ:b", "fixed_params": {"org_id": 2}},
            {"scope": "PIPES:READ:c", "fixed_params": {"org_id": [1, 3]}},
        ],
    )
    v = await verdict(client, key["key"], {"scopes": ["PIPES:READ:a", "PIPES:READ:b"]}, admin_key)
    assert v["code"] == "FORBIDDEN"
    assert v["fixed_params"] == {}
    v = await verdict(client, key["key"], {"scopes": ["PIPES:READ:a", "PIPES:READ:c"]}, admin_key)
    assert v["code"] == "VALID"
    assert v["fixed_params"] == {"org_id": 1}


# --- identities ----------------------------------------------------------------------------


async def test_non_admin_cannot_loosen_the_limits_of_its_own_identity(
    client: Client, admin_key: str
) -> None:
    r = await client.put(
        "/v1/identities/acme",
        json={"ratelimits": [{"name": "day", "limit": 10, "period_s": 86400}]},
        headers=bearer(admin_key),
    )
    assert r.status_code == 200
    key = await new_key(client, admin_key, ["KEYS:WRITE", "PIPES:READ:x"], identity="acme")
    for loosened in ([], [{"name": "day", "limit": 11, "period_s": 86400}]):
        r = await client.put(
            "/v1/identities/acme", json={"ratelimits": loosened}, headers=bearer(key["key"])
        )
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "SCOPE_ESCALATION"
    r = await client.put(
        "/v1/identities/acme",
        json={"ratelimits": [{"name": "day", "limit": 5, "period_s": 86400}]},
        headers=bearer(key["key"]),
    )
    assert r.status_code == 200  # tightening is fine
    r = await client.get("/v1/identities/acme", headers=bearer(admin_key))
    assert r.json()["ratelimits"][0]["limit"] == 5


# --- info: a token exchange cannot switch audience -----------------------------------------


async def test_token_exchange_keeps_the_subjects_audience_and_refuses_another(
    client: Client, operator_key: str, tenant: dict[str, Any], admin_key: str
) -> None:
    r = await client.patch(
        f"/v1/tenants/{tenant['tenant']['id']}",
        json={"audiences": ["https://a.example", "https://b.example"]},
        headers=bearer(operator_key),
    )
    assert r.status_code == 200
    client_key = await new_key(client, admin_key, ["TOKENS:CREATE", "PIPES:READ:x"])
    subject = (
        await client.post(
            "/v1/tokens",
            json={"scopes": ["PIPES:READ:x"], "aud": "https://a.example"},
            headers=bearer(client_key["key"]),
        )
    ).json()["token"]
    base = f"/t/{tenant['tenant']['slug']}/oauth2/token"
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": subject,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
    }
    auth = (client_key["id"], client_key["key"])
    r = await client.post(base, data={**form, "audience": "https://b.example"}, auth=auth)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_target"
    r = await client.post(base, data=form, auth=auth)
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["aud"] == "https://a.example"


# --- finding 8: revocations outlive the tokens they refuse ---------------------------------


async def test_sub_revocation_outlives_tokens_minted_under_a_higher_maximum(
    client: Client, operator_key: str, tenant: dict[str, Any], admin_key: str, clock: FrozenClock
) -> None:
    minter = await new_key(client, admin_key, ["TOKENS:CREATE", "PIPES:READ:x"])
    token = (
        await client.post(
            "/v1/tokens",
            json={"scopes": ["PIPES:READ:x"], "sub": "u1", "ttl_s": 3600},
            headers=bearer(minter["key"]),
        )
    ).json()["token"]
    r = await client.patch(
        f"/v1/tenants/{tenant['tenant']['id']}",
        json={"max_token_ttl_s": 60, "default_token_ttl_s": 60},
        headers=bearer(operator_key),
    )
    assert r.status_code == 200
    r = await client.post("/v1/tokens/revoke", json={"sub": "u1"}, headers=bearer(admin_key))
    assert r.status_code == 200
    horizon = datetime.fromisoformat(r.json()["expires_at"])
    assert horizon >= clock.now() + timedelta(seconds=3600)
    clock.advance(120)  # past now + the new maximum: the entry must still be there
    assert (await verdict(client, token, {}, admin_key))["code"] == "REVOKED"
