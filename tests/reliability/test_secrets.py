"""No credential is ever echoed: submitted in every place an error could repeat it, a key, an
operator key or a JWT never comes back in an error body and never reaches a log line.

The autouse leak guard (conftest) already scans every log record and error body of the suite;
these tests aim at the places most likely to echo input: validation messages (unknown member
names, wrong types), scope parsing, path and query parameters, authentication failures and the
OAuth endpoints. On SQLite and Postgres, in-process; the real-process side (uvicorn's own logs
at DEBUG) is in test_real_server.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from authsvc.keys import secret as keysecret
from tests.conftest import bearer, new_key
from tests.reliability.conftest import CREDENTIAL_SHAPES, Ledger, openapi_paths

PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


@dataclass
class Creds:
    valid_key: str  # a real API key of the tenant (KEYS:READ only)
    unknown_key: str  # well-formed, checksum right, not in the database
    truncated_key: str  # a real key minus its last character
    operator: str
    jwt: str  # minted by the service
    slug: str
    key_id: str


@pytest.fixture
async def creds(
    client: httpx.AsyncClient,
    operator_key: str,
    tenant: dict[str, Any],
    admin_key: str,
    ledger: Ledger,
) -> Creds:
    reader = await new_key(client, admin_key, ["KEYS:READ", "PIPES:READ:orders"])
    unknown = keysecret.generate("api")
    assert "/v1/tokens" in await openapi_paths(client), "the checks need a JWT minted here"
    r = await client.post(
        "/v1/tokens",
        json={"scopes": ["PIPES:READ:orders"], "sub": "user-1"},
        headers=bearer(admin_key),
    )
    assert r.status_code == 201, r.text
    jwt = r.json()["token"]
    for secret in (unknown, jwt, reader["key"]):
        ledger.add(secret)
    return Creds(
        valid_key=reader["key"],
        unknown_key=unknown,
        truncated_key=reader["key"][:-1],
        operator=operator_key,
        jwt=jwt,
        slug=tenant["tenant"]["slug"],
        key_id=reader["id"],
    )


Request = tuple[str, str, dict[str, Any]]
# Each builder places the secret ``s`` somewhere; ``a`` is the admin key, ``c`` the creds.
PLACES: dict[str, Callable[[str, str, Creds], Request]] = {
    "unknown-member-name": lambda s, a, c: (
        "POST",
        "/v1/keys",
        {"json": {"name": "n", "scopes": ["PIPES:READ:o"], s: 1}, "headers": bearer(a)},
    ),
    "grant-member-name": lambda s, a, c: (
        "POST",
        "/v1/keys",
        {"json": {"name": "n", "scopes": [{"scope": "PIPES:READ:o", s: 1}]}, "headers": bearer(a)},
    ),
    "scope-string": lambda s, a, c: (
        "POST",
        "/v1/keys",
        {"json": {"name": "n", "scopes": [s]}, "headers": bearer(a)},
    ),
    "scope-type": lambda s, a, c: (
        "POST",
        "/v1/keys",
        {"json": {"name": "n", "scopes": [f"{s}:READ"]}, "headers": bearer(a)},
    ),
    "ratelimit-name": lambda s, a, c: (
        "POST",
        "/v1/keys",
        {
            "json": {
                "name": "n",
                "scopes": ["PIPES:READ:o"],
                "ratelimits": [{"name": s + "!", "limit": 1, "period_s": 1}],
            },
            "headers": bearer(a),
        },
    ),
    "wrong-type-value": lambda s, a, c: (
        "POST",
        "/v1/keys",
        {"json": {"name": "n", "scopes": ["PIPES:READ:o"], "expires_at": s}, "headers": bearer(a)},
    ),
    "name-too-long": lambda s, a, c: (
        "POST",
        "/v1/keys",
        {"json": {"name": s * 8, "scopes": ["PIPES:READ:o"]}, "headers": bearer(a)},
    ),
    "malformed-json": lambda s, a, c: (
        "POST",
        "/v1/keys",
        {
            "content": f'{{"name": "{s}", scopes'.encode(),
            "headers": {**bearer(a), "Content-Type": "application/json"},
        },
    ),
    "bare-body": lambda s, a, c: (
        "POST",
        "/v1/keys",
        {"content": s.encode(), "headers": {**bearer(a), "Content-Type": "application/json"}},
    ),
    "form-body": lambda s, a, c: (
        "POST",
        "/v1/keys",
        {
            "content": f"key={s}".encode(),
            "headers": {**bearer(a), "Content-Type": "application/x-www-form-urlencoded"},
        },
    ),
    "query-token": lambda s, a, c: ("GET", f"/v1/keys?token={s}", {"headers": bearer(a)}),
    "query-limit": lambda s, a, c: ("GET", f"/v1/keys?limit={s}", {"headers": bearer(a)}),
    "query-cursor": lambda s, a, c: ("GET", f"/v1/keys?cursor={s * 3}", {"headers": bearer(a)}),
    "path-key-id": lambda s, a, c: ("GET", f"/v1/keys/{s}", {"headers": bearer(a)}),
    "path-identity": lambda s, a, c: (
        "PUT",
        f"/v1/identities/{s}",
        {"json": {"ratelimits": [{"name": s}]}, "headers": bearer(a)},
    ),
    "tenant-slug": lambda s, a, c: (
        "POST",
        "/v1/tenants",
        {"json": {"name": "n", "slug": s}, "headers": bearer(c.operator)},
    ),
    "tenant-alg": lambda s, a, c: (
        "POST",
        "/v1/tenants",
        {"json": {"name": "n", s: s}, "headers": bearer(c.operator)},
    ),
    "authorization-bearer": lambda s, a, c: ("GET", "/v1/keys", {"headers": bearer(s)}),
    "authorization-bare": lambda s, a, c: ("GET", "/v1/keys", {"headers": {"Authorization": s}}),
    "authorization-basic": lambda s, a, c: (
        "GET",
        "/v1/keys",
        {"headers": {"Authorization": "Basic " + s}},
    ),
    "authorization-on-operator-route": lambda s, a, c: (
        "GET",
        "/v1/tenants",
        {"headers": bearer(s)},
    ),
    "x-api-key-header": lambda s, a, c: ("GET", "/v1/keys", {"headers": {"X-Api-Key": s}}),
}

# Places that only exist once the endpoint is there.
ENDPOINT_PLACES: dict[str, tuple[str, Callable[[str, str, Creds], Request]]] = {
    "verify-unknown-member": (
        "/v1/verify",
        lambda s, a, c: (
            "POST",
            "/v1/verify",
            {"json": {"token": "x", s: 1}, "headers": bearer(a)},
        ),
    ),
    "verify-scope": (
        "/v1/verify",
        lambda s, a, c: (
            "POST",
            "/v1/verify",
            {"json": {"token": s, "scope": s}, "headers": bearer(a)},
        ),
    ),
    "verify-token": (
        "/v1/verify",
        lambda s, a, c: (
            "POST",
            "/v1/verify",
            {"json": {"token": s, "scope": "PIPES:READ:nope"}, "headers": bearer(a)},
        ),
    ),
    "verify-cost-type": (
        "/v1/verify",
        lambda s, a, c: (
            "POST",
            "/v1/verify",
            {"json": {"token": s, "cost": s}, "headers": bearer(a)},
        ),
    ),
    "token-scope": (
        "/v1/tokens",
        lambda s, a, c: ("POST", "/v1/tokens", {"json": {"scopes": [s]}, "headers": bearer(a)}),
    ),
    "token-member": (
        "/v1/tokens",
        lambda s, a, c: (
            "POST",
            "/v1/tokens",
            {"json": {"scopes": ["PIPES:READ:o"], s: s}, "headers": bearer(a)},
        ),
    ),
    "token-as-caller": (
        "/v1/tokens",
        lambda s, a, c: (
            "POST",
            "/v1/tokens",
            {"json": {"scopes": ["PIPES:READ:o"]}, "headers": bearer(s)},
        ),
    ),
    "revoke-jti": (
        "/v1/tokens/revoke",
        lambda s, a, c: (
            "POST",
            "/v1/tokens/revoke",
            {"json": {"jti": s, "sub": s}, "headers": bearer(a)},
        ),
    ),
    "authz-gateway-key": (
        "/v1/authz",
        lambda s, a, c: (
            "GET",
            "/v1/authz",
            {"headers": {"X-Authsvc-Key": s, "Authorization": "Bearer " + s}},
        ),
    ),
    "authz-scope-header": (
        "/v1/authz",
        lambda s, a, c: (
            "GET",
            "/v1/authz",
            {"headers": {"X-Authsvc-Key": a, "Authorization": "Bearer " + s, "X-Authsvc-Scope": s}},
        ),
    ),
    "authz-original-uri": (
        "/v1/authz",
        lambda s, a, c: (
            "GET",
            "/v1/authz",
            {"headers": {"X-Authsvc-Key": a, "X-Original-URI": f"/v0/pipes/{s}.json?token={s}"}},
        ),
    ),
    "oauth-client-secret": (
        "/t/{slug}/oauth2/token",
        lambda s, a, c: (
            "POST",
            f"/t/{c.slug}/oauth2/token",
            {
                "data": {
                    "grant_type": "client_credentials",
                    "client_id": c.key_id,
                    "client_secret": s + "x",
                }
            },
        ),
    ),
    "oauth-client-id": (
        "/t/{slug}/oauth2/token",
        lambda s, a, c: (
            "POST",
            f"/t/{c.slug}/oauth2/token",
            {"data": {"grant_type": "client_credentials", "client_id": s, "client_secret": s}},
        ),
    ),
    "oauth-basic-auth": (
        "/t/{slug}/oauth2/token",
        lambda s, a, c: (
            "POST",
            f"/t/{c.slug}/oauth2/token",
            {"data": {"grant_type": "client_credentials", "scope": s}, "auth": (c.key_id, s[:-1])},
        ),
    ),
    "oauth-grant-type": (
        "/t/{slug}/oauth2/token",
        lambda s, a, c: (
            "POST",
            f"/t/{c.slug}/oauth2/token",
            {"data": {"grant_type": s, "client_id": c.key_id, "client_secret": s}},
        ),
    ),
    "oauth-exchange-subject": (
        "/t/{slug}/oauth2/token",
        lambda s, a, c: (
            "POST",
            f"/t/{c.slug}/oauth2/token",
            {
                "data": {
                    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "subject_token": s,
                    "subject_token_type": s,
                    "scope": s,
                },
                "auth": (c.key_id, c.valid_key),
            },
        ),
    ),
    "oauth-introspect": (
        "/t/{slug}/oauth2/introspect",
        lambda s, a, c: (
            "POST",
            f"/t/{c.slug}/oauth2/introspect",
            {"data": {"token": s + "x"}, "auth": (c.key_id, s)},
        ),
    ),
    "oauth-revoke": (
        "/t/{slug}/oauth2/revoke",
        lambda s, a, c: (
            "POST",
            f"/t/{c.slug}/oauth2/revoke",
            {"data": {"token": s, "token_type_hint": s}, "auth": (s, s)},
        ),
    ),
}

SECRETS = ["valid_key", "unknown_key", "truncated_key", "operator", "jwt"]


def echoes(text: str, secret: str) -> bool:
    """The secret, or a long enough piece of it to matter, is in ``text``."""
    return secret in text or secret[:20] in text or secret[-20:] in text


async def _check_place(
    client: httpx.AsyncClient, request: Request, secret: str, label: str
) -> httpx.Response:
    method, path, kw = request
    r = await client.request(method, path, **kw)
    assert r.status_code < 500, f"{label}: {r.status_code} {r.text[:200]}"
    if r.status_code >= 400:
        assert not echoes(r.text, secret), f"{label}: error body echoes the secret"
        for name, value in r.headers.items():
            assert not echoes(value, secret), f"{label}: header {name} echoes the secret"
        for shape in CREDENTIAL_SHAPES:
            assert not shape.search(r.text), f"{label}: error body holds a credential"
    return r


@pytest.mark.parametrize("which", SECRETS)
async def test_no_error_body_echoes_a_credential_placed_anywhere(
    which: str, client: httpx.AsyncClient, creds: Creds, admin_key: str
) -> None:
    secret = getattr(creds, which)
    for place, build in PLACES.items():
        await _check_place(client, build(secret, admin_key, creds), secret, f"{which}@{place}")


@pytest.mark.parametrize("which", SECRETS)
async def test_no_error_body_of_newer_endpoints_echoes_a_credential(
    which: str, client: httpx.AsyncClient, creds: Creds, admin_key: str
) -> None:
    paths = await openapi_paths(client)
    for place, (needs, build) in ENDPOINT_PLACES.items():
        assert needs in paths, f"{needs} is missing: the secret-echo check must run on it"
        secret = getattr(creds, which)
        r = await _check_place(client, build(secret, admin_key, creds), secret, f"{which}@{place}")
        if needs == "/v1/verify" and r.status_code == 200:
            # A verdict describes the credential; it never repeats it.
            assert not echoes(r.text, secret), f"{which}@{place}: verdict echoes the token"


async def test_credential_stored_as_user_data_is_returned_only_to_its_owner(
    client: httpx.AsyncClient, creds: Creds, admin_key: str
) -> None:
    """A key pasted as a name or metadata key is data: the owner gets it back in 2xx bodies
    (that is no leak), but no error anywhere repeats it."""
    secret = creds.unknown_key
    created = await new_key(
        client, admin_key, ["PIPES:READ:o"], name=secret, metadata={secret: secret}
    )
    assert created["name"] == secret
    r = await client.patch(
        f"/v1/keys/{created['id']}",
        json={"name": secret, "scopes": [secret]},
        headers=bearer(admin_key),
    )
    assert r.status_code == 400
    assert not echoes(r.text, secret)


async def test_signing_keys_and_jwks_carry_no_private_material(
    client: httpx.AsyncClient, creds: Creds, admin_key: str
) -> None:
    docs = []
    r = await client.get("/v1/signing-keys", headers=bearer(admin_key))
    assert r.status_code == 200, r.text
    docs.append(r.json())
    r = await client.get(f"/t/{creds.slug}/.well-known/jwks.json")
    assert r.status_code == 200, r.text
    docs.append(r.json())

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            if "kty" in obj:
                assert not PRIVATE_JWK_MEMBERS & set(obj), f"private JWK member in {sorted(obj)}"
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)
        elif isinstance(obj, str):
            assert "PRIVATE KEY" not in obj

    for doc in docs:
        walk(doc)
