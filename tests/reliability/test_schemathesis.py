"""schemathesis over the app's own OpenAPI (``/schema/openapi.json``), in-process (ASGI).

Every documented operation is called with generated data, positive and negative, using the
credential of the kind it needs: the operator key on ``/v1/tenants``, the tenant's ADMIN key on
tenant routes, the gateway key plus a real JWT on ``/v1/authz``, client credentials (key id and
secret, HTTP Basic) on the OAuth endpoints. Half of the cases get real path ids (a victim tenant,
a victim key, the tenant's slug) and, where a body has a ``token``, the real JWT, so generated
data reaches the code behind the 404s. What it proves, per operation: never a 5xx (503 aside),
every 2xx matches its documented schema, every error is ``{"error", "code"}`` (RFC 6749
``{"error", "error_description"}`` on OAuth endpoints), and no error body holds a secret.

``AUTHSVC_FUZZ_EXAMPLES`` (default 25) sets the examples per operation; runs are derandomised
so CI is repeatable (``AUTHSVC_FUZZ_RANDOM=1`` explores new inputs). SQLite by default;
``AUTHSVC_FUZZ_POSTGRES=1`` adds a Postgres run.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from authsvc.app import create_app
from authsvc.db import migrate
from authsvc.services import build_services
from authsvc.settings import Settings
from tests.conftest import BASE_URL, TEST_SECRET, bearer, lifespan
from tests.reliability.conftest import Ledger

EXAMPLES = int(os.environ.get("AUTHSVC_FUZZ_EXAMPLES", "25"))
RANDOM = os.environ.get("AUTHSVC_FUZZ_RANDOM") == "1"
CODE = re.compile(r"[A-Z][A-Z0-9_]*\Z")

pytestmark = pytest.mark.slow


@dataclass
class Env:
    settings: Settings
    operator: str
    admin: str
    admin_id: str
    slug: str
    jwt: str
    victim_tenant: str
    victim_key: str


async def _prepare(settings: Settings, ledger: Ledger) -> Env:
    """Operator key, a tenant with its admin key and a JWT, a victim tenant and key: set up
    through the API of a first app instance, like any client would."""
    services = build_services(settings)
    app = create_app(settings, services=services)
    async with lifespan(app):
        operator = (await services.operators.create_key(actor="test")).key
        ledger.add(operator)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
            t = await c.post("/v1/tenants", json={"name": "Fuzz"}, headers=bearer(operator))
            victim = await c.post("/v1/tenants", json={"name": "Victim"}, headers=bearer(operator))
            assert t.status_code == victim.status_code == 201, (t.text, victim.text)
            admin = t.json()["admin_key"]["key"]
            ledger.add(admin)
            vkey = await c.post(
                "/v1/keys",
                json={"name": "victim", "scopes": ["PIPES:READ:orders"]},
                headers=bearer(admin),
            )
            assert vkey.status_code == 201, vkey.text
            ledger.add(vkey.json()["key"])
            r = await c.post(
                "/v1/tokens",
                json={"scopes": ["PIPES:READ:orders"], "sub": "fuzz"},
                headers=bearer(admin),
            )
            assert r.status_code == 201, r.text
            jwt = r.json()["token"]
            ledger.add(jwt)
    await services.aclose()
    return Env(
        settings=settings,
        operator=operator,
        admin=admin,
        admin_id=t.json()["admin_key"]["id"],
        slug=t.json()["tenant"]["slug"],
        jwt=jwt,
        victim_tenant=victim.json()["tenant"]["id"],
        victim_key=vkey.json()["id"],
    )


def _fuzz_backends() -> list[Any]:
    params: list[Any] = ["sqlite"]
    if os.environ.get("AUTHSVC_FUZZ_POSTGRES") == "1":
        params.append(pytest.param("postgres", marks=pytest.mark.postgres))
    return params


@pytest.fixture(scope="module", params=_fuzz_backends())
def fuzz_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, ledger: Ledger
) -> Env:
    data = tmp_path_factory.mktemp("fuzz")
    database_url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    settings = Settings(
        data_dir=data, database_url=database_url, secret_key=TEST_SECRET, base_url=BASE_URL
    )
    if database_url is None:
        migrate.upgrade(settings.effective_database_url)
    return asyncio.run(_prepare(settings, ledger))


@pytest.fixture(scope="module")
def api_schema(fuzz_env: Env) -> Any:
    app = create_app(fuzz_env.settings)
    return schemathesis.openapi.from_asgi("/schema/openapi.json", app)


def _documented_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation the app documents, read at collection time, sorted:
    Litestar keeps a handler's several paths in a set, so their order in the document varies
    between processes, and xdist workers must collect the same list."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), secret_key=TEST_SECRET, base_url=BASE_URL)
        spec = create_app(settings).openapi_schema.to_schema()
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return sorted((m.upper(), p) for p, ops in spec["paths"].items() for m in ops if m in methods)


OPERATIONS = _documented_operations()
NO_NEGATIVE_FORM = frozenset(
    {
        # one unconstrained string path parameter, nothing else schemathesis could break
        ("GET", "/t/{slug}/.well-known/jwks.json"),
        ("GET", "/t/{slug}/.well-known/oauth-authorization-server"),
        ("GET", "/.well-known/oauth-authorization-server/t/{slug}"),
        ("GET", "/sdk/authsvc.js"),
        # form bodies are read by the handler, not declared to the schema: the bad-input tests
        # (tests/api/test_oauth.py covers them)
        ("POST", "/t/{slug}/oauth2/token"),
        ("POST", "/t/{slug}/oauth2/introspect"),
        ("POST", "/t/{slug}/oauth2/revoke"),
    }
)
"""Operations schemathesis has no negative case for; each must still be documented."""


def test_operations_without_a_negative_form_are_all_documented() -> None:
    assert set(NO_NEGATIVE_FORM) <= set(OPERATIONS)


def _credentials(path: str, env: Env) -> tuple[dict[str, str], tuple[str, str] | None]:
    """(headers, basic auth) for an operation, by the kind of credential it takes."""
    if path.startswith("/v1/tenants"):
        return bearer(env.operator), None
    if path.startswith("/v1/authz"):
        headers = {"X-Authsvc-Key": env.admin, "X-Authsvc-Scope": "PIPES:READ:orders"}
        headers["Authorization"] = f"Bearer {env.jwt}"
        return headers, None
    if "/oauth2/" in path:
        return {}, (env.admin_id, env.admin)
    if path.startswith("/v1/"):
        return bearer(env.admin), None
    return {}, None


def _use_real_ids(case: Any, env: Env) -> None:
    """Real path ids, our credential instead of a generated one, and the few body fields that
    gate the code behind validation (the verify body is undocumented: send a real request)."""
    for name in list(case.headers or {}):
        if name.lower() == "authorization":
            del case.headers[name]
    params = case.path_parameters or {}
    real = {"tenant_id": env.victim_tenant, "key_id": env.victim_key, "slug": env.slug}
    for name, value in real.items():
        if name in params:
            params[name] = value
    if isinstance(case.body, dict):
        repairs: dict[str, Any] = {
            "scopes": ["PIPES:READ:orders"],
            "scope": "PIPES:READ:orders",
            "grant_type": "client_credentials",
        }
        repairs["token"] = env.jwt
        for name, value in repairs.items():
            if name in case.body:
                case.body[name] = value
    if case.operation.path == "/v1/verify":
        case.body = {"token": env.jwt, "scope": "PIPES:READ:orders"}


def _check_error_body(path: str, status: int, body: Any) -> None:
    assert isinstance(body, dict), f"{status} body is not an object: {body!r:.200}"
    if "/oauth2/" in path and "error_description" in body:
        assert isinstance(body["error"], str), body
        assert re.fullmatch(r"[a-z_]+", body["error"]), body
        return
    assert set(body) == {"error", "code"}, f"{status} body has keys {sorted(body)}"
    assert isinstance(body["error"], str), body
    assert body["error"], body
    assert isinstance(body["code"], str), body
    assert CODE.match(body["code"]), body


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_never_5xx_and_answers_match_the_contract(
    method: str, path: str, mode: GenerationMode, api_schema: Any, fuzz_env: Env, ledger: Ledger
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(mode), real=st.booleans())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any, real: bool) -> None:
        _call_and_check(case, real, fuzz_env, ledger)

    try:
        run()
    except Unsatisfiable:
        # Only the operations listed as having no invalid form may generate none; any other
        # (a renamed route, a lost constraint) fails here instead of skipping.
        assert mode is GenerationMode.NEGATIVE
        assert (method, path) in NO_NEGATIVE_FORM, f"no negative input for {method} {path}"


def _call_and_check(case: Any, real: bool, env: Env, ledger: Ledger) -> None:
    path = case.operation.path
    if real:
        _use_real_ids(case, env)
    headers, auth = _credentials(path, env)
    response = case.call(headers=headers, auth=auth)
    status = response.status_code
    label = f"{case.operation.method.upper()} {path} -> {status}"
    assert status < 500 or status == 503, f"{label}: {response.text[:300]}"
    ctype = response.headers.get("content-type", [""])
    ctype = ctype[0] if isinstance(ctype, list) else ctype
    if status < 400:
        case.validate_response(response, checks=[response_schema_conformance])
        if ctype.startswith("application/json") and response.content:
            ledger.harvest(response.json())
        return
    assert not ledger.leaks(response.text), f"{label}: error body holds a secret"
    if ctype.startswith("application/json"):
        _check_error_body(path, status, response.json())


async def test_openapi_documents_the_error_body_the_service_sends(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=TEST_SECRET, base_url=BASE_URL)
    spec = create_app(settings).openapi_schema.to_schema()
    sent = {"error": "The request is malformed.", "code": "INVALID_REQUEST"}
    wrong = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, resp in (op.get("responses") or {}).items():
                if not status.startswith("4") or "/oauth2/" in path:
                    continue
                doc = (resp.get("content") or {}).get("application/json", {}).get("schema")
                if doc is None:
                    continue
                validator = jsonschema_rs.validator_for(
                    {**doc, "components": spec.get("components", {})}
                )
                if not validator.is_valid(sent):
                    wrong.append(f"{method.upper()} {path} {status}")
    assert not wrong, f"{len(wrong)} documented 4xx bodies do not match: {wrong[:5]}"
