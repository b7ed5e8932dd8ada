"""DESIGN §9 on both backends: trusted issuers, the public-client token exchange, CORS on the
token endpoint, limits, revocation of exchanged tokens, and the browser module.

The identity provider is a real HTTP server on loopback (``tests/idp.py``) serving OIDC
discovery and a JWKS; ``AUTHSVC_ALLOW_PRIVATE_ISSUERS`` lets the tenant trust it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from authsvc.errors import InvalidRequest
from authsvc.issuers.service import IssuerService
from authsvc.principal import Principal
from authsvc.scopes import ADMIN, Grant, Scope
from authsvc.services import Services
from authsvc.settings import Settings
from tests.api.tokens_helpers import claims_of
from tests.conftest import bearer, make_settings, new_key
from tests.idp import IdpServer, Keys, Reply, serve, sign

Client = httpx.AsyncClient
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
PAGE = "https://app.example"
AUD = "urn:example:data"


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    return make_settings(
        tmp_path, backend, request, allow_private_issuers=True, exchange_subject_per_minute=5
    )


@pytest.fixture(scope="module")
def idp_keys() -> Keys:
    return Keys()


@pytest.fixture
def idp(idp_keys: Keys) -> Iterator[IdpServer]:
    with serve() as server:
        issuer = server.url()
        server.routes["/.well-known/openid-configuration"] = Reply.json(
            {"issuer": issuer, "jwks_uri": server.url("/jwks")}
        )
        server.routes["/jwks"] = Reply.json(
            idp_keys.jwks(), headers={"Cache-Control": "max-age=600"}
        )
        yield server


def idp_token(idp: IdpServer, keys: Keys, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": idp.url(),
        "sub": "alice",
        "aud": AUD,
        "iat": now,
        "exp": now + 600,
        "org_id": 42,
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None or k == "org_id"}
    return sign({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}, payload, keys.rsa, "RS256")


@pytest.fixture
async def issuer(client: Client, admin_key: str, idp: IdpServer) -> dict[str, Any]:
    r = await client.post(
        "/v1/trusted-issuers",
        json={
            "issuer": idp.url(),
            "audiences": [AUD],
            "algorithms": ["RS256", "ES256"],
            "grants": [
                {"scope": "PIPES:READ:orders", "fixed_params": {"org_id": {"claim": "org_id"}}},
                {"scope": "PIPES:READ:top", "fixed_params": {"region": "eu"}},
            ],
            "allowed_origins": [PAGE],
        },
        headers=bearer(admin_key),
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def exchange(
    client: Client, tenant: dict[str, Any], subject: str, origin: str | None = PAGE, **form: str
) -> httpx.Response:
    headers = {} if origin is None else {"Origin": origin}
    return await client.post(
        f"/t/{tenant['tenant']['slug']}/oauth2/token",
        data={
            "grant_type": EXCHANGE,
            "subject_token": subject,
            "subject_token_type": JWT_TYPE,
            **form,
        },
        headers=headers,
    )


async def verify(client: Client, admin_key: str, token: str, **body: Any) -> dict[str, Any]:
    r = await client.post("/v1/verify", json={"token": token, **body}, headers=bearer(admin_key))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


# --- the exchange --------------------------------------------------------------------------


async def test_exchange_maps_the_idp_claim_into_the_filter_and_names_the_subject(
    client: Client,
    tenant: dict[str, Any],
    admin_key: str,
    issuer: dict[str, Any],
    idp: IdpServer,
    idp_keys: Keys,
) -> None:
    r = await exchange(client, tenant, idp_token(idp, idp_keys), scope="PIPES:READ:orders")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "PIPES:READ:orders"
    assert r.headers["Access-Control-Allow-Origin"] == PAGE
    assert r.headers["Cache-Control"] == "no-store"
    claims = claims_of(body["access_token"])
    assert claims["sub"] == "alice"
    assert claims["client_id"] == issuer["id"]
    assert claims["aud"] == tenant["tenant"]["issuer"]  # the tenant's audience, not the IdP's
    assert claims["scopes"] == [
        {"type": "PIPES:READ", "resource": "orders", "fixed_params": {"org_id": 42}}
    ]
    v = await verify(client, admin_key, body["access_token"], scope="PIPES:READ:orders")
    assert v["code"] == "VALID"
    assert v["fixed_params"] == {"org_id": 42}
    assert v["sub"] == "alice"


async def test_exchange_without_scope_gets_every_mapped_grant_and_never_wider(
    client: Client, tenant: dict[str, Any], issuer: dict[str, Any], idp: IdpServer, idp_keys: Keys
) -> None:
    r = await exchange(client, tenant, idp_token(idp, idp_keys))
    assert r.status_code == 200, r.text
    assert set(r.json()["scope"].split()) == {"PIPES:READ:orders", "PIPES:READ:top"}
    for scope in ("PIPES:READ:other", "ADMIN", "PIPES:READ:*"):
        r = await exchange(client, tenant, idp_token(idp, idp_keys), scope=scope)
        assert r.status_code == 400, (scope, r.text)
        assert r.json()["error"] == "invalid_scope"
    r = await exchange(client, tenant, idp_token(idp, idp_keys), audience="https://elsewhere")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_target"


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"org_id": None}, "null"),
        ({"org_id": ""}, "empty"),
        ({"org_id": []}, "empty"),
        ({"org_id": {"nested": 1}}, "mistyped"),
        ({"org_id": [1, {"x": 2}]}, "mistyped"),
    ],
)
async def test_exchange_with_an_unusable_claim_is_refused_never_unfiltered(
    client: Client,
    tenant: dict[str, Any],
    issuer: dict[str, Any],
    idp: IdpServer,
    idp_keys: Keys,
    claims: dict[str, Any],
    why: str,
) -> None:
    r = await exchange(client, tenant, idp_token(idp, idp_keys, **claims))
    assert r.status_code == 400, (why, r.text)
    assert r.json()["error"] == "invalid_grant"
    assert "org_id" in r.json()["error_description"]


async def test_exchange_with_the_claim_missing_is_refused(
    client: Client, tenant: dict[str, Any], issuer: dict[str, Any], idp: IdpServer, idp_keys: Keys
) -> None:
    now = int(time.time())
    payload = {"iss": idp.url(), "sub": "alice", "aud": AUD, "iat": now, "exp": now + 600}
    token = sign({"alg": "RS256", "kid": "rsa-1"}, payload, idp_keys.rsa, "RS256")
    r = await exchange(client, tenant, token)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


# --- refusals of forged, expired, wrong-audience and wrong-issuer tokens -------------------


def _attacks(idp: IdpServer, keys: Keys, attacker: Keys) -> dict[str, str]:
    now = int(time.time())
    good = {"iss": idp.url(), "sub": "alice", "aud": AUD, "iat": now, "exp": now + 600, "org_id": 7}
    rs = {"alg": "RS256", "kid": "rsa-1"}
    public_pem = keys.rsa.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    token = sign(rs, good, keys.rsa, "RS256")
    head, body, sig = token.split(".")
    tampered = sign(rs, {**good, "org_id": 42}, keys.rsa, "RS256").split(".")[1]
    return {
        "alg none": sign({"alg": "none", "kid": "rsa-1"}, good, keys.rsa, "RS256").rsplit(".", 1)[0]
        + ".",
        "HS256 with the public key": sign(
            {"alg": "HS256", "kid": "rsa-1"}, good, public_pem, "HS256"
        ),  # type: ignore[arg-type]
        "another key under our kid": sign(rs, good, attacker.rsa, "RS256"),
        "unknown kid": sign({"alg": "RS256", "kid": "nope"}, good, keys.rsa, "RS256"),
        "jku header": sign({**rs, "jku": "https://evil.example/jwks"}, good, keys.rsa, "RS256"),
        "embedded jwk": sign({**rs, "jwk": {"kty": "RSA"}}, good, keys.rsa, "RS256"),
        "crit header": sign({**rs, "crit": ["exp"]}, good, keys.rsa, "RS256"),
        "ES256 header on the RSA key": sign(
            {"alg": "ES256", "kid": "rsa-1"}, good, keys.ec, "ES256"
        ),
        "expired": sign(rs, {**good, "exp": now - 120}, keys.rsa, "RS256"),
        "not yet valid": sign(rs, {**good, "nbf": now + 600}, keys.rsa, "RS256"),
        "issued in the future": sign(rs, {**good, "iat": now + 600}, keys.rsa, "RS256"),
        "wrong audience": sign(rs, {**good, "aud": "urn:other"}, keys.rsa, "RS256"),
        "no audience": sign(rs, {k: v for k, v in good.items() if k != "aud"}, keys.rsa, "RS256"),
        "wrong issuer": sign(rs, {**good, "iss": idp.url("/other")}, keys.rsa, "RS256"),
        "tampered payload": ".".join((head, tampered, sig)),
        "truncated signature": f"{head}.{body}.{sig[:20]}",
        "not a JWT": "not-a-jwt",
        "garbage segments": "e30.e30.e30",
        "logout token": sign({**rs, "typ": "logout+jwt"}, good, keys.rsa, "RS256"),
    }


async def test_every_forged_expired_or_foreign_subject_token_is_a_400_invalid_grant(
    client: Client, tenant: dict[str, Any], issuer: dict[str, Any], idp: IdpServer, idp_keys: Keys
) -> None:
    attacker = Keys()
    for name, token in _attacks(idp, idp_keys, attacker).items():
        r = await exchange(client, tenant, token)
        assert r.status_code == 400, (name, r.status_code, r.text)
        assert r.json()["error"] == "invalid_grant", (name, r.text)
        assert token not in r.text


# --- CORS ----------------------------------------------------------------------------------


async def test_preflight_answers_allowed_origins_only_and_never_star(
    client: Client, tenant: dict[str, Any], issuer: dict[str, Any]
) -> None:
    path = f"/t/{tenant['tenant']['slug']}/oauth2/token"
    ask = {"Access-Control-Request-Method": "POST"}
    r = await client.options(path, headers={"Origin": PAGE, **ask})
    assert r.status_code == 204, (r.headers, r.text)
    assert r.headers["Access-Control-Allow-Origin"] == PAGE
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in r.headers
    r = await client.options(path, headers={"Origin": "https://evil.example", **ask})
    assert "Access-Control-Allow-Origin" not in r.headers
    r = await client.get("/v1/keys", headers={"Origin": PAGE})
    assert "Access-Control-Allow-Origin" not in r.headers  # the management API is not for browsers


async def test_exchange_from_an_origin_the_issuer_does_not_allow_is_refused(
    client: Client, tenant: dict[str, Any], issuer: dict[str, Any], idp: IdpServer, idp_keys: Keys
) -> None:
    r = await exchange(client, tenant, idp_token(idp, idp_keys), origin="https://evil.example")
    assert r.status_code == 400
    assert r.json()["error"] == "unauthorized_client"
    assert "Access-Control-Allow-Origin" not in r.headers
    r = await exchange(client, tenant, "garbage", origin=PAGE)
    assert r.status_code == 400
    assert r.headers["Access-Control-Allow-Origin"] == PAGE  # the page can read its error
    r = await exchange(client, tenant, idp_token(idp, idp_keys), origin=None)
    assert r.status_code == 200  # no Origin: not a browser, CORS does not apply


async def test_public_documents_and_the_browser_module_allow_any_origin(
    client: Client, tenant: dict[str, Any]
) -> None:
    slug = tenant["tenant"]["slug"]
    for path in (
        f"/t/{slug}/.well-known/jwks.json",
        f"/t/{slug}/.well-known/oauth-authorization-server",
    ):
        r = await client.get(path, headers={"Origin": PAGE})
        assert r.headers["Access-Control-Allow-Origin"] == "*"
    r = await client.get("/sdk/authsvc.js")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/javascript")
    assert "max-age" in r.headers["Cache-Control"]
    assert "export function createTokenSource" in r.text
    again = await client.get("/sdk/authsvc.js", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304


# --- limits and revocation -----------------------------------------------------------------


async def test_exchange_is_rate_limited_per_subject(
    client: Client, tenant: dict[str, Any], issuer: dict[str, Any], idp: IdpServer, idp_keys: Keys
) -> None:
    for _ in range(5):  # exchange_subject_per_minute=5 in this module's settings
        assert (await exchange(client, tenant, idp_token(idp, idp_keys))).status_code == 200
    r = await exchange(client, tenant, idp_token(idp, idp_keys))
    assert r.status_code == 429
    assert r.json()["error"] == "rate_limited"
    assert int(r.headers["Retry-After"]) >= 1
    r = await exchange(client, tenant, idp_token(idp, idp_keys, sub="bob"))
    assert r.status_code == 200  # another subject has its own budget


async def test_issuer_limits_apply_per_subject_to_every_exchanged_token(
    client: Client,
    tenant: dict[str, Any],
    admin_key: str,
    issuer: dict[str, Any],
    idp: IdpServer,
    idp_keys: Keys,
) -> None:
    r = await client.patch(
        f"/v1/trusted-issuers/{issuer['id']}",
        json={"ratelimits": [{"name": "per_user", "limit": 2, "period_s": 60}]},
        headers=bearer(admin_key),
    )
    assert r.status_code == 200, r.text
    first = (await exchange(client, tenant, idp_token(idp, idp_keys))).json()["access_token"]
    second = (await exchange(client, tenant, idp_token(idp, idp_keys))).json()["access_token"]
    assert (await verify(client, admin_key, first))["code"] == "VALID"
    assert (await verify(client, admin_key, second))["code"] == "VALID"
    assert (await verify(client, admin_key, first))["code"] == "RATE_LIMITED"  # alice's budget


async def test_revoking_the_subject_and_disabling_or_deleting_the_issuer_refuse_its_tokens(
    client: Client,
    tenant: dict[str, Any],
    admin_key: str,
    issuer: dict[str, Any],
    idp: IdpServer,
    idp_keys: Keys,
) -> None:
    token = (await exchange(client, tenant, idp_token(idp, idp_keys))).json()["access_token"]
    r = await client.post("/v1/tokens/revoke", json={"sub": "alice"}, headers=bearer(admin_key))
    assert r.status_code == 200
    assert (await verify(client, admin_key, token))["code"] == "REVOKED"

    bob = (await exchange(client, tenant, idp_token(idp, idp_keys, sub="bob"))).json()
    path = f"/v1/trusted-issuers/{issuer['id']}"
    r = await client.patch(path, json={"enabled": False}, headers=bearer(admin_key))
    assert r.status_code == 200
    assert (await verify(client, admin_key, bob["access_token"]))["code"] == "DISABLED"
    r = await exchange(client, tenant, idp_token(idp, idp_keys, sub="carol"))
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    r = await client.patch(path, json={"enabled": True}, headers=bearer(admin_key))
    assert (await verify(client, admin_key, bob["access_token"]))["code"] == "VALID"
    assert (await client.delete(path, headers=bearer(admin_key))).status_code == 204
    assert (await verify(client, admin_key, bob["access_token"]))["code"] == "NOT_FOUND"


async def test_narrowing_an_issuers_grants_narrows_its_live_tokens(
    client: Client,
    tenant: dict[str, Any],
    admin_key: str,
    issuer: dict[str, Any],
    idp: IdpServer,
    idp_keys: Keys,
) -> None:
    token = (await exchange(client, tenant, idp_token(idp, idp_keys))).json()["access_token"]
    assert (await verify(client, admin_key, token, scope="PIPES:READ:top"))["code"] == "VALID"
    r = await client.patch(
        f"/v1/trusted-issuers/{issuer['id']}",
        json={
            "grants": [
                {"scope": "PIPES:READ:orders", "fixed_params": {"org_id": {"claim": "org_id"}}}
            ]
        },
        headers=bearer(admin_key),
    )
    assert r.status_code == 200, r.text
    assert (await verify(client, admin_key, token, scope="PIPES:READ:top"))["code"] == "FORBIDDEN"
    assert (await verify(client, admin_key, token, scope="PIPES:READ:orders"))["code"] == "VALID"


# --- the identity provider's keys ----------------------------------------------------------


async def test_unreachable_jwks_is_503_before_any_key_and_invalid_grant_for_unknown_kids_after(
    client: Client, tenant: dict[str, Any], issuer: dict[str, Any], idp: IdpServer, idp_keys: Keys
) -> None:
    idp.routes["/jwks"] = Reply(status=500, body=b"down")
    r = await exchange(client, tenant, idp_token(idp, idp_keys))
    assert r.status_code == 503
    assert r.json()["error"] == "temporarily_unavailable"
    idp.routes["/jwks"] = Reply.json(idp_keys.jwks(), headers={"Cache-Control": "max-age=600"})
    # the failed fetch is not retried for a few seconds: wait it out once
    deadline = time.monotonic() + 8
    while (r := await exchange(client, tenant, idp_token(idp, idp_keys))).status_code != 200:
        assert time.monotonic() < deadline, r.text
        await asyncio.sleep(0.5)
    idp.routes["/jwks"] = Reply(status=500, body=b"down")
    r = await exchange(client, tenant, idp_token(idp, idp_keys, sub="bob"))
    assert r.status_code == 200  # cached keys keep working
    unknown = sign({"alg": "RS256", "kid": "rotated"}, {"iss": idp.url()}, idp_keys.rsa, "RS256")
    r = await exchange(client, tenant, unknown)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


# --- the admin API -------------------------------------------------------------------------


async def test_trusted_issuer_admin_api_lists_pages_audits_and_needs_admin(
    client: Client, admin_key: str, issuer: dict[str, Any], idp: IdpServer
) -> None:
    r = await client.get("/v1/trusted-issuers", headers=bearer(admin_key))
    assert r.status_code == 200
    assert [i["id"] for i in r.json()["data"]] == [issuer["id"]]
    assert r.json()["next_cursor"] is None
    assert issuer["grants"][0]["fixed_params"] == {"org_id": {"claim": "org_id"}}
    r = await client.get(f"/v1/trusted-issuers/{issuer['id']}", headers=bearer(admin_key))
    assert r.json()["issuer"] == idp.url()
    manager = await new_key(client, admin_key, ["KEYS:WRITE", "TOKENS:CREATE"])
    for method, path in (
        ("GET", "/v1/trusted-issuers"),
        ("DELETE", f"/v1/trusted-issuers/{issuer['id']}"),
    ):
        r = await client.request(method, path, headers=bearer(manager["key"]))
        assert r.status_code == 403
    audit = await client.get(
        "/v1/audit-log?action=trusted_issuer.create", headers=bearer(admin_key)
    )
    assert [e["target_id"] for e in audit.json()["data"]] == [issuer["id"]]
    r = await client.post(
        "/v1/trusted-issuers",
        json={
            "issuer": idp.url(),
            "audiences": [AUD],
            "grants": ["PIPES:READ:x"],
            "allowed_origins": [],
        },
        headers=bearer(admin_key),
    )
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"algorithms": ["HS256"]}, "INVALID_ALG"),
        ({"algorithms": ["none"]}, "INVALID_ALG"),
        ({"grants": ["ADMIN"]}, "INVALID_SCOPE"),
        (
            {"grants": [{"scope": "PIPES:READ:x", "fixed_params": {"org": {"claim": ""}}}]},
            "INVALID_CLAIM_REF",
        ),
        ({"allowed_origins": ["*"]}, "INVALID_ISSUER"),
        ({"allowed_origins": ["https://app.example/path"]}, "INVALID_ISSUER"),
        ({"audiences": []}, "INVALID_ISSUER"),
        ({"issuer": "not a url"}, "INVALID_ISSUER"),
        ({"jwks": {"keys": []}}, "INVALID_ISSUER"),
        ({"conditions": {"email_verified": [True]}}, "INVALID_CONDITIONS"),
    ],
)
async def test_invalid_trusted_issuers_are_refused_with_a_code_and_nothing_is_stored(
    client: Client, admin_key: str, idp: IdpServer, change: dict[str, Any], code: str
) -> None:
    body = {
        "issuer": idp.url(),
        "audiences": [AUD],
        "grants": ["PIPES:READ:x"],
        "allowed_origins": [PAGE],
        **change,
    }
    r = await client.post("/v1/trusted-issuers", json=body, headers=bearer(admin_key))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code
    listed = await client.get("/v1/trusted-issuers", headers=bearer(admin_key))
    assert listed.json()["data"] == []


async def test_issuer_at_a_private_address_is_refused_without_the_setting_and_nothing_fetched(
    services: Services, tenant: dict[str, Any], idp: IdpServer
) -> None:
    strict = IssuerService(services.db, services.clock, services.bus, allow_private=False)
    admin = Principal(
        kind="key", id="key_x", tenant_id=tenant["tenant"]["id"], grants=(Grant(Scope(ADMIN)),)
    )
    for url in (idp.url(), "https://127.0.0.1:9/", "https://10.0.0.1/", "https://[::1]/"):
        body = {
            "issuer": url,
            "audiences": [AUD],
            "grants": ["PIPES:READ:x"],
            "allowed_origins": [],
        }
        with pytest.raises(InvalidRequest) as refused:
            await strict.create(admin, body)
        assert refused.value.code == "INVALID_ISSUER"
        assert "not_https" in refused.value.message or "private_address" in refused.value.message
    assert idp.requests == []
    assert idp.connections == 0
