"""The served OpenAPI document (``/schema/openapi.json``) cannot drift from the types and the code
registry it is derived from: the ``POST /v1/verify`` body is msgspec's schema of ``VerifyIn``, its
answer documents every verdict field of DESIGN §3, and the ``Error`` code enum is the wire codes
of :data:`authsvc.errors.CATALOG`. Backend-independent: one app, never started (the schema route
needs no database).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec
import pytest

from authsvc.app import create_app
from authsvc.errors import CATALOG, Code
from authsvc.settings import Settings
from authsvc.verify.controller import VerifyIn
from authsvc.verify.verdict import Verdict
from tests.conftest import BASE_URL, TEST_SECRET

VERDICT_FIELDS = {
    "valid",
    "code",
    "tenant",
    "tenant_id",
    "key_id",
    "sub",
    "scopes",
    "fixed_params",
    "expires_at",
    "ratelimits",
}
"""DESIGN §3, ``POST /v1/verify``: the members of a verdict."""
RATELIMIT_FIELDS = {"name", "limit", "remaining", "reset_s"}


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("openapi"), secret_key=TEST_SECRET, base_url=BASE_URL
    )
    app = create_app(settings)

    async def fetch() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            r = await client.get("/schema/openapi.json")
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    return asyncio.run(fetch())


def resolve(node: Any, defs: dict[str, Any], prefix: str) -> Any:
    """``node`` with every ``$ref`` under ``prefix`` replaced by its definition."""
    if isinstance(node, list):
        return [resolve(item, defs, prefix) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(prefix):
        return resolve(defs[ref.removeprefix(prefix)], defs, prefix)
    return {k: resolve(v, defs, prefix) for k, v in node.items() if k != "$defs"}


def without_null_defaults(node: Any) -> Any:
    """Drop ``"default": null``: OpenAPI's serialiser cannot tell a null default from none."""
    if isinstance(node, list):
        return [without_null_defaults(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        k: without_null_defaults(v) for k, v in node.items() if not (k == "default" and v is None)
    }


def component(openapi: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    schemas = openapi["components"]["schemas"]
    out: dict[str, Any] = resolve(node, schemas, "#/components/schemas/")
    return out


def test_verify_request_body_is_msgspecs_schema_of_verify_in(openapi: dict[str, Any]) -> None:
    operation = openapi["paths"]["/v1/verify"]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    documented = component(openapi, body["content"]["application/json"]["schema"])
    raw = msgspec.json.schema(VerifyIn)
    expected = without_null_defaults(resolve(raw, raw.get("$defs", {}), "#/$defs/"))
    assert documented == expected
    # What the normalisation must not hide: the shape the handler decodes strictly.
    assert documented["required"] == ["token"]
    assert documented["additionalProperties"] is False
    assert set(documented["properties"]) == {"token", "scope", "scopes", "cost", "audience"}


def test_verify_answer_documents_every_verdict_field_of_the_design(
    openapi: dict[str, Any],
) -> None:
    answer = openapi["paths"]["/v1/verify"]["post"]["responses"]["200"]
    verdict = component(openapi, answer["content"]["application/json"]["schema"])
    assert set(verdict["properties"]) == VERDICT_FIELDS | {"reason"}
    sent = Verdict(Code.MALFORMED, reason="The credential is neither an API key nor a JWT.")
    assert set(sent.to_json()) == set(verdict["properties"])  # what the handler encodes
    limit = verdict["properties"]["ratelimits"]["items"]
    assert set(limit["properties"]) == RATELIMIT_FIELDS
    assert verdict["properties"]["valid"]["type"] == "boolean"


def test_error_code_enum_is_every_wire_code_of_the_registry(openapi: dict[str, Any]) -> None:
    documented = openapi["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
    on_the_wire = [
        str(code) for code, info in CATALOG.items() if info.where in ("body", "verdict", "gateway")
    ]
    assert len(documented) == len(set(documented))
    assert set(documented) == set(on_the_wire)
