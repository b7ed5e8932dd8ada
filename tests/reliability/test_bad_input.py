"""Bad input corpus, in-process on SQLite and Postgres: a clear 4xx with a stable code, never 5xx.

Each case is one request the contract calls bad input (or tolerates, where noted). What every
case proves: the status is one of the expected ones, never a 5xx (a 503 here would claim the
database is down when the input is at fault), and every error body is
``{"error": <sentence>, "code": <STABLE_CODE>}``. A case whose endpoint the app does not
document fails: a security check never skips itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, new_key
from tests.reliability.conftest import openapi_paths

CODE = re.compile(r"[A-Z][A-Z0-9_]*\Z")
JSON_CT = "application/json"
MAX_BODY = 64 * 1024  # AUTHSVC_MAX_BODY_BYTES default (the fixture's settings)


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    body: bytes | None = None
    who: str = "admin"  # admin | operator | none
    content_type: str | None = JSON_CT
    expect: tuple[int, ...] = (400,)
    code: str | None = None
    needs: str | None = None  # an OpenAPI path that must exist
    headers: dict[str, str] = field(default_factory=dict)


def j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def key_body(**extra: Any) -> bytes:
    return j({"name": "bad-input", "scopes": ["PIPES:READ:orders"], **extra})


def nested(depth: int, inner: bytes = b"") -> bytes:
    return b"[" * depth + inner + b"]" * depth


SCOPES_3000 = [f"PIPES:READ:p{i}" for i in range(3000)]

CASES = [
    # --- size ---
    Case(
        "body-over-limit",
        "POST",
        "/v1/keys",
        key_body(metadata={"x": "y" * MAX_BODY}),
        expect=(413,),
        code="PAYLOAD_TOO_LARGE",
    ),
    Case(
        "body-over-limit-tenants",
        "POST",
        "/v1/tenants",
        j({"name": "n" * (MAX_BODY + 10)}),
        who="operator",
        expect=(413,),
        code="PAYLOAD_TOO_LARGE",
    ),
    Case(
        "metadata-over-8k",
        "POST",
        "/v1/keys",
        key_body(metadata={"x": "y" * 9000}),
        code="INVALID_METADATA",
    ),
    Case(
        "3000-scopes",
        "POST",
        "/v1/keys",
        j({"name": "n", "scopes": SCOPES_3000}),
        code="INVALID_SCOPE",
    ),
    Case("name-too-long", "POST", "/v1/keys", key_body(name="n" * 201)),
    # --- structure ---
    Case("deep-json-10000-arrays", "POST", "/v1/keys", nested(10_000)),
    Case(
        "deep-json-in-metadata",
        "POST",
        "/v1/keys",
        b'{"name":"n","scopes":["PIPES:READ:o"],"metadata":{"a":' + nested(5000) + b"}}",
    ),
    Case("deep-json-tenants", "POST", "/v1/tenants", nested(10_000), who="operator"),
    Case("empty-body", "POST", "/v1/keys", b""),
    Case("json-null", "POST", "/v1/keys", b"null"),
    Case("json-array", "POST", "/v1/keys", b"[]"),
    Case("json-string", "POST", "/v1/keys", b'"x"'),
    Case("truncated-json", "POST", "/v1/keys", b'{"name": "n", "scopes": ['),
    Case("trailing-garbage", "POST", "/v1/keys", key_body() + b"}}"),
    Case("unknown-field", "POST", "/v1/keys", key_body(admin=True)),
    Case(
        "grant-unknown-field",
        "POST",
        "/v1/keys",
        j({"name": "n", "scopes": [{"scope": "PIPES:READ:o", "role": "x"}]}),
    ),
    # --- encodings ---
    Case("invalid-utf8", "POST", "/v1/keys", b'{"name": "\xff\xfe", "scopes": ["PIPES:READ:o"]}'),
    Case("invalid-utf8-tenants", "POST", "/v1/tenants", b'{"name": "\xc3\x28"}', who="operator"),
    Case(
        "lone-surrogate-escape",
        "POST",
        "/v1/keys",
        b'{"name": "\\ud800", "scopes": ["PIPES:READ:o"]}',
    ),
    Case("utf16-body", "POST", "/v1/keys", key_body().decode().encode("utf-16")),
    Case("nul-in-name", "POST", "/v1/keys", key_body(name="a\x00b"), expect=(201, 400)),
    Case(
        "nul-in-fixed-param",
        "POST",
        "/v1/keys",
        j({"name": "n", "scopes": [{"scope": "PIPES:READ:o", "fixed_params": {"a": "\x00"}}]}),
        expect=(201, 400),
    ),
    Case(
        "nul-in-metadata-key", "POST", "/v1/keys", key_body(metadata={"\x00": 1}), expect=(201, 400)
    ),
    Case(
        "nul-in-tenant-name",
        "POST",
        "/v1/tenants",
        j({"name": "a\x00"}),
        who="operator",
        expect=(201, 400),
    ),
    Case("nul-in-identity-path", "PUT", "/v1/identities/%00", j({}), expect=(200, 400)),
    Case("nul-in-key-path", "GET", "/v1/keys/%00", expect=(400, 404)),
    Case("nul-in-tenant-path", "GET", "/v1/tenants/%00", who="operator", expect=(400, 404)),
    Case("nul-in-cursor", "GET", "/v1/keys?cursor=%00", expect=(200, 400)),
    Case("nul-in-audit-action", "GET", "/v1/audit-log?action=%00", expect=(200, 400)),
    Case("percent-ff-in-path", "GET", "/v1/keys/%ff", expect=(400, 404)),
    # --- content types (JSON is parsed whatever the label: a JSON body under another label
    #     is tolerated, any other body is a 400) ---
    Case(
        "form-body",
        "POST",
        "/v1/keys",
        b"name=n&scopes=PIPES%3AREAD%3Ao",
        content_type="application/x-www-form-urlencoded",
    ),
    Case(
        "multipart-body",
        "POST",
        "/v1/keys",
        b"--b\r\n\r\nx\r\n--b--\r\n",
        content_type="multipart/form-data; boundary=b",
    ),
    Case("text-plain-not-json", "POST", "/v1/keys", b"hello", content_type="text/plain"),
    Case(
        "text-plain-json",
        "POST",
        "/v1/keys",
        key_body(),
        content_type="text/plain",
        expect=(201, 415),
    ),
    Case(
        "no-content-type-json", "POST", "/v1/keys", key_body(), content_type=None, expect=(201, 415)
    ),
    Case("no-content-type-empty", "POST", "/v1/keys", b"", content_type=None),
    # --- numbers ---
    Case(
        "nan-literal",
        "POST",
        "/v1/keys",
        b'{"name":"n","scopes":["PIPES:READ:o"],"ratelimits":[{"name":"r","limit":1,'
        b'"period_s":NaN}]}',
    ),
    Case(
        "infinity-literal",
        "POST",
        "/v1/keys",
        b'{"name":"n","scopes":["PIPES:READ:o"],"metadata":{"x":Infinity}}',
    ),
    Case(
        "number-1e400",
        "POST",
        "/v1/keys",
        b'{"name":"n","scopes":["PIPES:READ:o"],"ratelimits":[{"name":"r","limit":1,'
        b'"period_s":1e400}]}',
    ),
    Case(
        "limit-1e30",
        "POST",
        "/v1/keys",
        key_body(ratelimits=[{"name": "r", "limit": 1e30, "period_s": 1}]),
    ),
    Case(
        "limit-2-64",
        "POST",
        "/v1/keys",
        key_body(ratelimits=[{"name": "r", "limit": 2**64, "period_s": 1}]),
        code="INVALID_RATELIMIT",
    ),
    Case(
        "burst-2-64-identity",
        "PUT",
        "/v1/identities/acme",
        j({"ratelimits": [{"name": "r", "limit": 1, "period_s": 1, "burst": 2**64}]}),
        code="INVALID_RATELIMIT",
    ),
    Case(
        "period-tiny",
        "POST",
        "/v1/keys",
        key_body(ratelimits=[{"name": "r", "limit": 1, "period_s": 1e-300}]),
        code="INVALID_RATELIMIT",
    ),
    Case(
        "bool-as-number",
        "POST",
        "/v1/keys",
        key_body(ratelimits=[{"name": "r", "limit": True, "period_s": 1}]),
    ),
    Case(
        "fixed-param-2-70",
        "POST",
        "/v1/keys",
        j({"name": "n", "scopes": [{"scope": "PIPES:READ:o", "fixed_params": {"a": 2**70}}]}),
        code="INVALID_FIXED_PARAMS",
    ),
    Case(
        "grace-negative",
        "POST",
        "/v1/keys/{key_id}/reroll",
        j({"grace_s": -1}),
        code="INVALID_GRACE",
    ),
    Case(
        "grace-2-64",
        "POST",
        "/v1/keys/{key_id}/reroll",
        j({"grace_s": 2**64}),
        code="INVALID_GRACE",
    ),
    Case("grace-float", "POST", "/v1/keys/{key_id}/reroll", j({"grace_s": 1.5})),
    Case(
        "tenant-ttl-negative",
        "PATCH",
        "/v1/tenants/{tenant_id}",
        j({"default_token_ttl_s": -5}),
        who="operator",
        code="INVALID_TTL",
    ),
    Case(
        "tenant-ttl-2-64",
        "PATCH",
        "/v1/tenants/{tenant_id}",
        j({"max_token_ttl_s": 2**64}),
        who="operator",
        code="INVALID_TTL",
    ),
    Case(
        "tenant-rotation-2-63",
        "PATCH",
        "/v1/tenants/{tenant_id}",
        j({"signing_key_rotation_s": 2**63}),
        who="operator",
    ),
    Case(
        "tenant-rotation-2-64",
        "PATCH",
        "/v1/tenants/{tenant_id}",
        j({"signing_key_rotation_s": 2**64}),
        who="operator",
    ),
    Case("limit-query-huge", "GET", "/v1/keys?limit=99999999999999999999999", code="INVALID_LIMIT"),
    Case("limit-query-negative", "GET", "/v1/keys?limit=-1", code="INVALID_LIMIT"),
    Case("limit-query-text", "GET", "/v1/keys?limit=abc"),
    # --- dates ---
    Case(
        "expiry-past",
        "POST",
        "/v1/keys",
        key_body(expires_at="2001-01-01T00:00:00Z"),
        code="INVALID_EXPIRY",
    ),
    Case("expiry-naive", "POST", "/v1/keys", key_body(expires_at="2999-01-01T00:00:00")),
    Case(
        "expiry-year-9999-minus-14h",
        "POST",
        "/v1/keys",
        key_body(expires_at="9999-12-31T23:59:59-14:00"),
    ),
    Case("expiry-not-a-date", "POST", "/v1/keys", key_body(expires_at="tomorrow")),
    # --- duplicated keys (RFC 8259: names SHOULD be unique) ---
    Case(
        "duplicate-keys-harmless",
        "POST",
        "/v1/keys",
        b'{"name":"a","name":"b","scopes":["PIPES:READ:o"]}',
        expect=(201, 400),
    ),
    # --- scopes ---
    Case(
        "scope-garbage",
        "POST",
        "/v1/keys",
        j({"name": "n", "scopes": ["%%%"]}),
        code="INVALID_SCOPE",
    ),
    Case("scope-too-long", "POST", "/v1/keys", j({"name": "n", "scopes": ["A:B:" + "c" * 400]})),
    Case(
        "scope-empty-list", "POST", "/v1/keys", j({"name": "n", "scopes": []}), code="INVALID_SCOPE"
    ),
    Case(
        "scope-duplicate",
        "POST",
        "/v1/keys",
        j({"name": "n", "scopes": ["PIPES:READ:o", "pipes:read:o"]}),
        code="INVALID_SCOPE",
    ),
    Case(
        "scope-unicode-resource",
        "POST",
        "/v1/keys",
        j({"name": "n", "scopes": ["P:R:ä"]}),
        code="INVALID_SCOPE",
    ),
    # --- paths and query ---
    Case("long-path-segment", "GET", "/v1/keys/" + "k" * 5000, expect=(404,), code="NOT_FOUND"),
    Case("very-long-path", "GET", "/v1/keys/" + "k" * 9000, expect=(414,), code="URI_TOO_LONG"),
    Case("very-long-query", "GET", "/v1/keys?x=" + "q" * 9000, expect=(414,), code="URI_TOO_LONG"),
    Case(
        "unknown-query-params-ignored", "GET", "/v1/keys?foo=bar&limit=5&limit=6", expect=(200, 400)
    ),
    Case("unknown-route", "GET", "/v1/nope", expect=(404,), code="NOT_FOUND"),
    Case("wrong-method", "PUT", "/v1/keys", j({}), expect=(405,), code="METHOD_NOT_ALLOWED"),
    Case("identity-too-long", "PUT", "/v1/identities/" + "i" * 300, j({}), code="INVALID_IDENTITY"),
    # --- credentials ---
    Case("no-credential", "GET", "/v1/keys", who="none", expect=(401,), code="UNAUTHENTICATED"),
    Case(
        "huge-authorization",
        "GET",
        "/v1/keys",
        who="none",
        expect=(431,),
        code="HEADERS_TOO_LARGE",
        headers={"Authorization": "Bearer " + "a" * 60_000},
    ),
    Case("operator-on-tenant-route", "GET", "/v1/keys", who="operator", expect=(403,)),
    Case("tenant-key-on-operator-route", "GET", "/v1/tenants", expect=(403,)),
    # --- tokens (once /v1/tokens exists) ---
    Case(
        "token-ttl-negative",
        "POST",
        "/v1/tokens",
        j({"scopes": ["PIPES:READ:o"], "ttl_s": -1}),
        needs="/v1/tokens",
    ),
    Case(
        "token-ttl-2-64",
        "POST",
        "/v1/tokens",
        j({"scopes": ["PIPES:READ:o"], "ttl_s": 2**64}),
        needs="/v1/tokens",
    ),
    Case(
        "token-ttl-1e30",
        "POST",
        "/v1/tokens",
        j({"scopes": ["PIPES:READ:o"], "ttl_s": 1e30}),
        needs="/v1/tokens",
    ),
    Case(
        "token-ttl-over-max",
        "POST",
        "/v1/tokens",
        j({"scopes": ["PIPES:READ:o"], "ttl_s": 10**6}),
        code="TTL_TOO_LONG",
        needs="/v1/tokens",
    ),
    Case("token-3000-scopes", "POST", "/v1/tokens", j({"scopes": SCOPES_3000}), needs="/v1/tokens"),
    Case(
        "token-management-scope",
        "POST",
        "/v1/tokens",
        j({"scopes": ["KEYS:READ"]}),
        code="INVALID_SCOPE",
        needs="/v1/tokens",
    ),
    Case(
        "token-rps-2-64",
        "POST",
        "/v1/tokens",
        j({"scopes": ["PIPES:READ:o"], "limits": {"rps": 2**64}}),
        needs="/v1/tokens",
    ),
    Case("token-deep-json", "POST", "/v1/tokens", nested(10_000), needs="/v1/tokens"),
    Case(
        "token-nul-sub",
        "POST",
        "/v1/tokens",
        j({"scopes": ["PIPES:READ:o"], "sub": "\x00"}),
        expect=(201, 400),
        needs="/v1/tokens",
    ),
    # --- verify (once /v1/verify exists) ---
    Case(
        "verify-cost-1e30",
        "POST",
        "/v1/verify",
        j({"token": "x", "cost": 1e30}),
        needs="/v1/verify",
    ),
    Case(
        "verify-cost-2-64",
        "POST",
        "/v1/verify",
        j({"token": "x", "cost": 2**64}),
        needs="/v1/verify",
    ),
    Case(
        "verify-cost-negative",
        "POST",
        "/v1/verify",
        j({"token": "x", "cost": -1}),
        needs="/v1/verify",
    ),
    Case(
        "verify-cost-string",
        "POST",
        "/v1/verify",
        j({"token": "x", "cost": "1"}),
        needs="/v1/verify",
    ),
    Case("verify-token-not-string", "POST", "/v1/verify", j({"token": 5}), needs="/v1/verify"),
    Case(
        "verify-3000-scopes",
        "POST",
        "/v1/verify",
        j({"token": "x", "scopes": SCOPES_3000}),
        needs="/v1/verify",
    ),
    Case(
        "verify-scope-and-scopes",
        "POST",
        "/v1/verify",
        j({"token": "x", "scope": "PIPES:READ:o", "scopes": ["PIPES:READ:o"]}),
        needs="/v1/verify",
    ),
    Case(
        "verify-huge-token",
        "POST",
        "/v1/verify",
        j({"token": "eyJ" + "a" * 60_000}),
        expect=(200, 400, 413),
        needs="/v1/verify",
    ),
    Case("verify-deep-json", "POST", "/v1/verify", nested(10_000), needs="/v1/verify"),
    Case("verify-invalid-utf8", "POST", "/v1/verify", b'{"token": "\xff"}', needs="/v1/verify"),
]


def _headers(case: Case, keys: dict[str, str]) -> dict[str, str]:
    headers = dict(bearer(keys[case.who])) if case.who in keys else {}
    if case.content_type:
        headers["Content-Type"] = case.content_type
    headers.update(case.headers)
    return headers


async def _send(client: httpx.AsyncClient, case: Case, ids: dict[str, str], keys: dict[str, str]):
    return await client.request(
        case.method,
        case.path.format(**ids),
        content=case.body,
        headers=_headers(case, keys),
    )


def assert_clear_error(r: httpx.Response, case: Case) -> None:
    assert r.status_code < 500, f"{case.id}: {r.status_code} {r.text[:300]}"
    assert r.status_code in case.expect, f"{case.id}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        body = r.json()
        assert set(body) == {"error", "code"}, body
        assert isinstance(body["error"], str), body
        assert body["error"], body
        assert CODE.match(body["code"]), body
        if case.code is not None:
            assert body["code"] == case.code, body


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input_gets_clear_4xx_never_5xx(
    case: Case, client: httpx.AsyncClient, operator_key: str, tenant: dict[str, Any]
) -> None:
    if case.needs:  # a security test fails, never skips, when its route is gone
        assert case.needs in await openapi_paths(client), f"{case.needs} is missing"
    admin = tenant["admin_key"]["key"]
    keys = {"admin": admin, "operator": operator_key}
    ids = {"tenant_id": tenant["tenant"]["id"], "key_id": tenant["admin_key"]["id"]}
    r = await _send(client, case, ids, keys)
    assert_clear_error(r, case)
    # The service is still healthy and still serves the same caller afterwards.
    after = await client.get("/v1/keys?limit=1", headers=bearer(admin))
    assert after.status_code == 200, after.text


async def test_duplicated_member_names_are_refused(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    body = b'{"name":"n","scopes":["PIPES:READ:o"],"scopes":["ADMIN"]}'
    r = await client.post(
        "/v1/keys", content=body, headers={**bearer(admin_key), "Content-Type": JSON_CT}
    )
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "DUPLICATE_MEMBER"
    nested = b'{"name":"n","scopes":[{"scope":"PIPES:READ:o","fixed_params":{"a":1,"a":2}}]}'
    r = await client.post(
        "/v1/keys", content=nested, headers={**bearer(admin_key), "Content-Type": JSON_CT}
    )
    assert r.status_code == 400, r.text


async def test_unicode_names_round_trip_exactly(
    client: httpx.AsyncClient, operator_key: str, admin_key: str
) -> None:
    names = ["Ünïcødé 🎉", "e\u0301", "é", "日本語のテナント", "\u202eevil", "ﬁ" * 50]
    for name in names:
        created = await new_key(client, admin_key, ["PIPES:READ:o"], name=name)
        got = await client.get(f"/v1/keys/{created['id']}", headers=bearer(admin_key))
        assert got.json()["name"] == name
    r = await client.post("/v1/tenants", json={"name": names[0]}, headers=bearer(operator_key))
    assert r.status_code == 201
    assert r.json()["tenant"]["name"] == names[0]
    assert re.fullmatch(r"[a-z0-9-]+", r.json()["tenant"]["slug"])


async def test_chunked_body_over_limit_is_413(client: httpx.AsyncClient, admin_key: str) -> None:
    """No Content-Length (chunked upload): the limit still holds while streaming."""

    async def chunks():
        yield b'{"name":"n","scopes":["PIPES:READ:o"],"metadata":{"x":"'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}}'

    r = await client.post(
        "/v1/keys", content=chunks(), headers={**bearer(admin_key), "Content-Type": JSON_CT}
    )
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "PAYLOAD_TOO_LARGE"
