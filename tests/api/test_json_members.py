"""Security finding 11, on both backends: a JSON body naming a member twice is a 400
``DUPLICATE_MEMBER``, never "the last one wins".

A proxy, WAF or audit log in front of authsvc may keep the first of two duplicates while msgspec
keeps the last, so the two would disagree on what was asked. ``POST /v1/verify`` decodes its
body itself (:func:`authsvc.web.json_guard.decode_strict`); every other JSON endpoint goes
through the ``before_request`` guard. Escaped member names (``"\\u0074oken"`` is ``"token"``)
are the same name.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import bearer, new_key

Client = httpx.AsyncClient
JSON = {"Content-Type": "application/json"}


async def post_raw(client: Client, path: str, body: bytes, key: str) -> httpx.Response:
    return await client.post(path, content=body, headers={**bearer(key), **JSON})


def assert_duplicate(r: httpx.Response) -> None:
    assert r.status_code == 400, r.text
    assert r.json() == {
        "error": "A JSON object names the same member twice.",
        "code": "DUPLICATE_MEMBER",
    }


@pytest.fixture
async def verifier(client: Client, admin_key: str) -> str:
    return str((await new_key(client, admin_key, ["TOKENS:VERIFY"], name="gateway"))["key"])


@pytest.mark.parametrize(
    "body",
    [
        rb'{"token": "x", "token": "y"}',
        rb'{"token": "x", "\u0074oken": "y"}',
        rb'{"\u0074\u006f\u006b\u0065\u006e": "x", "token": "y"}',
        rb'{"token": "x", "scope": "PIPES:READ:a", "scope": "PIPES:READ:b"}',
        rb'{"token": "x", "cost": 0, "cost": 1}',
    ],
    ids=["plain", "escaped", "all-escaped", "scope", "cost"],
)
async def test_verify_body_naming_a_member_twice_is_400_duplicate_member(
    client: Client, verifier: str, body: bytes
) -> None:
    assert_duplicate(await post_raw(client, "/v1/verify", body, verifier))


async def test_verify_duplicate_with_a_real_credential_is_refused_whichever_comes_first(
    client: Client, verifier: str, admin_key: str
) -> None:
    # One reading would verify a valid key, the other garbage: neither is answered.
    real = admin_key.encode()
    for body in (
        b'{"token": "' + real + b'", "token": "ask_nope"}',
        b'{"token": "ask_nope", "\\u0074oken": "' + real + b'"}',
    ):
        r = await post_raw(client, "/v1/verify", body, verifier)
        assert_duplicate(r)
        assert admin_key not in r.text
    r = await post_raw(client, "/v1/verify", b'{"token": "' + real + b'"}', verifier)
    assert (r.status_code, r.json()["code"]) == (200, "VALID")


@pytest.mark.parametrize(
    "body",
    [
        rb'{"token": "x", "token": 5}',
        rb'{"token": "x", "token": "y", "unknown": 1}',
        rb'{"token": "x", "cost": -1, "cost": 1}',
    ],
    ids=["mistyped", "unknown-field", "invalid-first"],
)
async def test_verify_duplicate_is_duplicate_member_even_when_another_problem_is_in_the_body(
    client: Client, verifier: str, body: bytes
) -> None:
    r = await post_raw(client, "/v1/verify", body, verifier)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "DUPLICATE_MEMBER"


@pytest.mark.parametrize(
    "grant",
    [
        rb'{"scope": "PIPES:READ:orders", "scope": "PIPES:READ:*"}',
        rb'{"scope": "PIPES:READ:orders", "\u0073cope": "PIPES:READ:*"}',
        rb'{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 1, "org_\u0069d": 2}}',
    ],
    ids=["scope", "escaped-scope", "nested-fixed-param"],
)
async def test_nested_object_naming_a_member_twice_is_400_duplicate_member_and_creates_nothing(
    client: Client, admin_key: str, grant: bytes
) -> None:
    body = b'{"name": "dup", "scopes": [' + grant + b"]}"
    assert_duplicate(await post_raw(client, "/v1/keys", body, admin_key))
    listed = (await client.get("/v1/keys", headers=bearer(admin_key))).json()["data"]
    assert "dup" not in {k["name"] for k in listed}


async def test_trusted_issuer_and_tenant_bodies_naming_a_member_twice_are_refused(
    client: Client, admin_key: str, operator_key: str, tenant: dict[str, Any]
) -> None:
    issuer = (
        b'{"issuer": "https://idp.example", "audiences": ["a"], "allowed_origins": [],'
        b' "grants": [{"scope": "PIPES:READ:x", "fixed_params": {"org": {"claim": "org",'
        b' "\\u0063laim": "admin_org"}}}]}'
    )
    assert_duplicate(await post_raw(client, "/v1/trusted-issuers", issuer, admin_key))
    patch = b'{"enabled": true, "enabled": false}'
    r = await client.patch(
        f"/v1/tenants/{tenant['tenant']['id']}",
        content=patch,
        headers={**bearer(operator_key), **JSON},
    )
    assert_duplicate(r)
    r = await client.get(f"/v1/tenants/{tenant['tenant']['id']}", headers=bearer(operator_key))
    assert r.json()["enabled"] is True
