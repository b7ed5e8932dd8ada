"""OAuth 2.0 endpoints of a tenant on both backends: token (client credentials, RFC 8693
exchange), RFC 7662 introspection, RFC 7009 revocation, RFC 8414 metadata, RFC 6749 errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from authsvc.clock import FrozenClock
from authsvc.services import Services
from tests.api.tokens_helpers import Client, claims_of, code, mint
from tests.conftest import bearer, new_key, new_tenant

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
ORDERS = {"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 42}}


def base(tenant: dict[str, Any]) -> str:
    return f"/t/{tenant['tenant']['slug']}/oauth2"


@pytest.fixture
async def app_client(client: Client, admin_key: str) -> dict[str, Any]:
    """An OAuth client: an API key holding two data scopes (one with RLS filters)."""
    return await new_key(client, admin_key, [ORDERS, "DATASOURCES:READ:events"], name="app")


@pytest.fixture
async def gateway(client: Client, admin_key: str) -> dict[str, Any]:
    return await new_key(
        client, admin_key, ["TOKENS:CREATE", "TOKENS:VERIFY", "TOKENS:REVOKE"], name="gateway"
    )


async def token(
    client: Client, tenant: dict[str, Any], form: dict[str, str], **kw: Any
) -> httpx.Response:
    return await client.post(f"{base(tenant)}/token", data=form, **kw)


def assert_oauth_error(r: httpx.Response, status: int, error: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"] == error
    assert isinstance(r.json()["error_description"], str)
    assert r.headers["cache-control"] == "no-store"


# --- metadata --------------------------------------------------------------------------------


async def test_metadata_is_served_at_both_well_known_locations(
    client: Client, tenant: dict[str, Any]
) -> None:
    slug, issuer = tenant["tenant"]["slug"], tenant["tenant"]["issuer"]
    a = await client.get(f"/.well-known/oauth-authorization-server/t/{slug}")
    b = await client.get(f"/t/{slug}/.well-known/oauth-authorization-server")
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()
    doc = a.json()
    assert doc["issuer"] == issuer
    assert doc["token_endpoint"] == f"{issuer}/oauth2/token"
    assert doc["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert doc["introspection_endpoint"] == f"{issuer}/oauth2/introspect"
    assert doc["revocation_endpoint"] == f"{issuer}/oauth2/revoke"
    assert set(doc["grant_types_supported"]) == {"client_credentials", EXCHANGE}
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert "max-age" in a.headers["cache-control"]
    assert (await client.get("/.well-known/oauth-authorization-server/t/nope")).status_code == 404


# --- client credentials ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_client_credentials_returns_token_of_all_data_scopes_of_the_key(
    client: Client,
    tenant: dict[str, Any],
    app_client: dict[str, Any],
    services: Services,
    method: str,
) -> None:
    form = {"grant_type": "client_credentials"}
    if method == "client_secret_basic":
        r = await token(client, tenant, form, auth=(app_client["id"], app_client["key"]))
    else:
        form |= {"client_id": app_client["id"], "client_secret": app_client["key"]}
        r = await token(client, tenant, form)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "PIPES:READ:orders DATASOURCES:READ:events"
    claims = claims_of(body["access_token"])
    assert claims["sub"] == claims["client_id"] == app_client["id"]
    assert claims["scopes"][0]["fixed_params"] == {"org_id": 42}
    assert await code(services, body["access_token"], tenant) == "VALID"


async def test_client_credentials_scope_parameter_down_scopes(
    client: Client, tenant: dict[str, Any], app_client: dict[str, Any]
) -> None:
    auth = (app_client["id"], app_client["key"])
    r = await token(
        client,
        tenant,
        {"grant_type": "client_credentials", "scope": "PIPES:READ:orders"},
        auth=auth,
    )
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["scopes"] == [
        {"type": "PIPES:READ", "resource": "orders", "fixed_params": {"org_id": 42}}
    ]
    for scope in ("PIPES:READ:customers", "PIPES:READ:*", "TOKENS:CREATE", "bad scope!"):
        r = await token(
            client, tenant, {"grant_type": "client_credentials", "scope": scope}, auth=auth
        )
        assert_oauth_error(r, 400, "invalid_scope")


async def test_client_credentials_with_bad_credentials_returns_invalid_client_with_basic_challenge(
    client: Client, tenant: dict[str, Any], app_client: dict[str, Any], operator_key: str
) -> None:
    other = await new_tenant(client, operator_key, "Other")
    form = {"grant_type": "client_credentials"}
    for auth in (
        (app_client["id"], app_client["key"][:-1] + ("A" if app_client["key"][-1] != "A" else "B")),
        ("key_someone_else", app_client["key"]),
        (other["admin_key"]["id"], other["admin_key"]["key"]),  # a client of another tenant
    ):
        r = await token(client, tenant, form, auth=auth)
        assert_oauth_error(r, 401, "invalid_client")
        assert r.headers["www-authenticate"].startswith("Basic ")
        assert app_client["key"] not in r.text
    r = await token(client, tenant, form)  # no client authentication at all
    assert_oauth_error(r, 401, "invalid_client")
    r = await token(
        client,
        tenant,
        form | {"client_id": app_client["id"], "client_secret": "ask_wrong"},
    )
    assert_oauth_error(r, 401, "invalid_client")


async def test_revoked_client_cannot_get_tokens(
    client: Client, tenant: dict[str, Any], app_client: dict[str, Any], admin_key: str
) -> None:
    r = await client.delete(f"/v1/keys/{app_client['id']}", headers=bearer(admin_key))
    assert r.status_code == 200
    r = await token(
        client,
        tenant,
        {"grant_type": "client_credentials"},
        auth=(app_client["id"], app_client["key"]),
    )
    assert_oauth_error(r, 401, "invalid_client")


async def test_token_endpoint_malformed_requests_return_rfc6749_errors(
    client: Client, tenant: dict[str, Any], app_client: dict[str, Any]
) -> None:
    auth = (app_client["id"], app_client["key"])
    r = await token(client, tenant, {}, auth=auth)
    assert_oauth_error(r, 400, "invalid_request")
    r = await token(client, tenant, {"grant_type": "password"}, auth=auth)
    assert_oauth_error(r, 400, "unsupported_grant_type")
    r = await client.post(
        f"{base(tenant)}/token", json={"grant_type": "client_credentials"}, auth=auth
    )
    assert_oauth_error(r, 400, "invalid_request")
    r = await client.post(
        f"{base(tenant)}/token",
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=auth,
    )
    assert_oauth_error(r, 400, "invalid_request")
    r = await token(  # two authentication methods at once
        client,
        tenant,
        {"grant_type": "client_credentials", "client_secret": app_client["key"]},
        auth=auth,
    )
    assert_oauth_error(r, 400, "invalid_request")
    r = await client.post("/t/nope/oauth2/token", data={"grant_type": "client_credentials"})
    assert_oauth_error(r, 404, "invalid_request")
    assert (await client.get(f"{base(tenant)}/token")).status_code == 405


# --- token exchange --------------------------------------------------------------------------


async def exchange(
    client: Client, tenant: dict[str, Any], gateway: dict[str, Any], subject: str, **form: str
) -> httpx.Response:
    body = {
        "grant_type": EXCHANGE,
        "subject_token": subject,
        "subject_token_type": ACCESS,
        **form,
    }
    return await token(client, tenant, body, auth=(gateway["id"], gateway["key"]))


async def test_token_exchange_narrows_a_jwt_and_never_outlives_it(
    client: Client,
    tenant: dict[str, Any],
    gateway: dict[str, Any],
    admin_key: str,
    services: Services,
) -> None:
    minter = await new_key(client, admin_key, ["TOKENS:CREATE", ORDERS, "PIPES:READ:top"])
    subject = (
        await mint(
            client, minter["key"], ["PIPES:READ:orders", "PIPES:READ:top"], sub="u1", ttl_s=120
        )
    )["token"]
    r = await exchange(client, tenant, gateway, subject, scope="PIPES:READ:orders")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["issued_token_type"] == ACCESS
    assert body["token_type"] == "Bearer"
    claims, parent = claims_of(body["access_token"]), claims_of(subject)
    assert claims["scopes"] == [
        {"type": "PIPES:READ", "resource": "orders", "fixed_params": {"org_id": 42}}
    ]
    assert claims["exp"] <= parent["exp"]
    assert claims["sub"] == "u1"
    assert claims["client_id"] == minter["id"]
    assert claims["act"] == {"sub": gateway["id"]}
    assert claims["parent_jtis"] == [parent["jti"]]
    assert await code(services, body["access_token"], tenant) == "VALID"


async def test_token_exchange_with_wider_scope_returns_invalid_scope(
    client: Client, tenant: dict[str, Any], gateway: dict[str, Any], admin_key: str
) -> None:
    subject = (await mint(client, admin_key, [ORDERS]))["token"]
    r = await exchange(client, tenant, gateway, subject, scope="PIPES:READ:top")
    assert_oauth_error(r, 400, "invalid_scope")
    assert "PIPES:READ:top" in r.json()["error_description"]


async def test_token_exchange_of_revoked_subject_and_cascade_of_jti_revocation(
    client: Client,
    tenant: dict[str, Any],
    gateway: dict[str, Any],
    admin_key: str,
    services: Services,
) -> None:
    subject = await mint(client, admin_key, ["PIPES:READ:x"])
    child = (await exchange(client, tenant, gateway, subject["token"])).json()["access_token"]
    grandchild = (await exchange(client, tenant, gateway, child)).json()["access_token"]
    assert await code(services, grandchild, tenant) == "VALID"
    r = await client.post(
        "/v1/tokens/revoke", json={"jti": subject["jti"]}, headers=bearer(admin_key)
    )
    assert r.status_code == 200
    assert await code(services, child, tenant) == "REVOKED"
    assert await code(services, grandchild, tenant) == "REVOKED"
    r = await exchange(client, tenant, gateway, subject["token"])
    assert_oauth_error(r, 400, "invalid_request")


async def test_token_exchange_of_api_key_subject_down_scopes_from_the_key(
    client: Client, tenant: dict[str, Any], gateway: dict[str, Any], app_client: dict[str, Any]
) -> None:
    r = await exchange(client, tenant, gateway, app_client["key"], scope="PIPES:READ:orders")
    assert r.status_code == 200, r.text
    claims = claims_of(r.json()["access_token"])
    assert claims["client_id"] == claims["sub"] == app_client["id"]
    assert claims["scopes"][0]["fixed_params"] == {"org_id": 42}
    r = await exchange(client, tenant, gateway, app_client["key"], subject_token_type=JWT)
    assert_oauth_error(r, 400, "invalid_request")


async def test_token_exchange_refusals(
    client: Client,
    tenant: dict[str, Any],
    gateway: dict[str, Any],
    app_client: dict[str, Any],
    admin_key: str,
    operator_key: str,
) -> None:
    subject = (await mint(client, admin_key, ["PIPES:READ:x"]))["token"]
    other = await new_tenant(client, operator_key, "Other")
    foreign = (await mint(client, other["admin_key"]["key"], ["PIPES:READ:x"]))["token"]
    r = await exchange(client, tenant, gateway, foreign)
    assert_oauth_error(r, 400, "invalid_request")
    r = await exchange(client, tenant, gateway, "not-a-token")
    assert_oauth_error(r, 400, "invalid_request")
    r = await exchange(client, tenant, gateway, subject, subject_token_type="urn:x")
    assert_oauth_error(r, 400, "invalid_request")
    r = await exchange(client, tenant, gateway, subject, audience="https://elsewhere")
    assert_oauth_error(r, 400, "invalid_target")
    r = await exchange(client, tenant, gateway, subject, actor_token=subject)
    assert_oauth_error(r, 400, "invalid_request")
    r = await exchange(client, tenant, app_client, subject)  # client lacks TOKENS:CREATE
    assert_oauth_error(r, 400, "unauthorized_client")


# --- introspection ---------------------------------------------------------------------------


async def introspect(
    client: Client, tenant: dict[str, Any], caller: dict[str, Any], tok: str
) -> httpx.Response:
    return await client.post(
        f"{base(tenant)}/introspect", data={"token": tok}, auth=(caller["id"], caller["key"])
    )


async def test_introspection_of_valid_jwt_returns_active_claims(
    client: Client, tenant: dict[str, Any], gateway: dict[str, Any], admin_key: str
) -> None:
    minted = await mint(client, admin_key, [ORDERS], sub="u1", name="n")
    r = await introspect(client, tenant, gateway, minted["token"])
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["active"] is True
    assert body["sub"] == "u1"
    assert body["jti"] == minted["jti"]
    assert body["scope"] == "PIPES:READ:orders"
    assert body["iss"] == tenant["tenant"]["issuer"]
    assert body["token_type"] == "Bearer"
    assert body["scopes"][0]["fixed_params"] == {"org_id": 42}
    # a Bearer API key is accepted as the caller's credential too
    r = await client.post(
        f"{base(tenant)}/introspect",
        data={"token": minted["token"]},
        headers=bearer(gateway["key"]),
    )
    assert r.json()["active"] is True


async def test_introspection_of_invalid_revoked_expired_or_foreign_token_is_inactive(
    client: Client,
    tenant: dict[str, Any],
    gateway: dict[str, Any],
    admin_key: str,
    operator_key: str,
    clock: FrozenClock,
) -> None:
    other = await new_tenant(client, operator_key, "Other")
    foreign = (await mint(client, other["admin_key"]["key"], ["PIPES:READ:x"]))["token"]
    revoked = await mint(client, admin_key, ["PIPES:READ:x"])
    r = await client.post(
        "/v1/tokens/revoke", json={"jti": revoked["jti"]}, headers=bearer(admin_key)
    )
    assert r.status_code == 200
    short = (await mint(client, admin_key, ["PIPES:READ:x"], ttl_s=1))["token"]
    clock.advance(30)
    for tok in (foreign, revoked["token"], short, "garbage", other["admin_key"]["key"]):
        r = await introspect(client, tenant, gateway, tok)
        assert r.status_code == 200
        assert r.json() == {"active": False}


async def test_introspection_of_api_key_of_the_tenant_is_active(
    client: Client, tenant: dict[str, Any], gateway: dict[str, Any], app_client: dict[str, Any]
) -> None:
    body = (await introspect(client, tenant, gateway, app_client["key"])).json()
    assert body["active"] is True
    assert body["client_id"] == app_client["id"]
    assert body["token_type"] == "api_key"


async def test_introspection_needs_an_authenticated_caller_with_tokens_verify(
    client: Client, tenant: dict[str, Any], app_client: dict[str, Any], admin_key: str
) -> None:
    tok = (await mint(client, admin_key, ["PIPES:READ:x"]))["token"]
    r = await client.post(f"{base(tenant)}/introspect", data={"token": tok})
    assert_oauth_error(r, 401, "invalid_client")
    r = await introspect(client, tenant, app_client, tok)
    assert_oauth_error(r, 403, "insufficient_scope")
    r = await client.post(
        f"{base(tenant)}/introspect", data={"token": tok}, headers=bearer("ask_not_a_key")
    )
    assert_oauth_error(r, 401, "invalid_token")
    assert "Bearer" in r.headers["www-authenticate"]


# --- revocation ------------------------------------------------------------------------------


async def test_revocation_endpoint_revokes_a_jwt_and_accepts_unknown_tokens(
    client: Client,
    tenant: dict[str, Any],
    gateway: dict[str, Any],
    admin_key: str,
    services: Services,
) -> None:
    tok = (await mint(client, admin_key, ["PIPES:READ:x"]))["token"]
    auth = (gateway["id"], gateway["key"])
    r = await client.post(f"{base(tenant)}/revoke", data={"token": tok}, auth=auth)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert await code(services, tok, tenant) == "REVOKED"
    assert (await introspect(client, tenant, gateway, tok)).json() == {"active": False}
    for unknown in ("garbage", tok, "a.b.c"):
        r = await client.post(f"{base(tenant)}/revoke", data={"token": unknown}, auth=auth)
        assert r.status_code == 200


async def test_revocation_endpoint_lets_a_client_revoke_its_own_tokens_only(
    client: Client,
    tenant: dict[str, Any],
    app_client: dict[str, Any],
    admin_key: str,
    services: Services,
) -> None:
    auth = (app_client["id"], app_client["key"])
    own = await token(client, tenant, {"grant_type": "client_credentials"}, auth=auth)
    own_token = own.json()["access_token"]
    r = await client.post(f"{base(tenant)}/revoke", data={"token": own_token}, auth=auth)
    assert r.status_code == 200
    assert await code(services, own_token, tenant) == "REVOKED"
    theirs = (await mint(client, admin_key, ["PIPES:READ:x"]))["token"]
    r = await client.post(f"{base(tenant)}/revoke", data={"token": theirs}, auth=auth)
    assert_oauth_error(r, 400, "unauthorized_client")
    assert await code(services, theirs, tenant) == "VALID"


async def test_revocation_endpoint_refuses_api_keys_as_unsupported_token_type(
    client: Client, tenant: dict[str, Any], gateway: dict[str, Any], app_client: dict[str, Any]
) -> None:
    r = await client.post(
        f"{base(tenant)}/revoke",
        data={"token": app_client["key"]},
        auth=(gateway["id"], gateway["key"]),
    )
    assert_oauth_error(r, 400, "unsupported_token_type")
    assert app_client["key"] not in r.text
    r = await client.post(f"{base(tenant)}/revoke", data={"token": "x"})
    assert_oauth_error(r, 401, "invalid_client")
