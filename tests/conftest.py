"""Shared fixtures.

Integration and API tests run against the embedded SQLite backend and the real PostgreSQL
(``AUTHSVC_TEST_PG_ADMIN_URL``, default the local server): ask for the ``backend`` fixture, or
use ``settings``/``services``/``client`` which depend on it. Each test gets a clean database: a
new SQLite file, or a truncated Postgres schema (migrated once per session).

A second dimension, ``broker``, says where rate-limit counters and revocation broadcasts live:
``memory`` (the in-process limiter and :class:`~authsvc.revocation.bus.LocalBus`) or ``redis``
(the real server, ``AUTHSVC_TEST_REDIS_URL``: :class:`~authsvc.ratelimit.redis.RedisLimiter`
and :class:`~authsvc.revocation.bus.RedisBus`, whose subscriber the ``client`` fixture's
lifespan runs in the test's event loop). :func:`pytest_generate_tests` builds the matrix:
every test that uses ``backend`` runs as ``[sqlite]`` and ``[postgres]`` (memory broker), and
the API tests (:data:`REDIS_PACKAGE`) run once more as ``[postgres-redis]``.

Redis is shared (other test runs, other instances), so isolation is by name, not by flushing:
rate-limit counters are keyed by tenant id, unique per test; the revocation channel is one for
everyone, so a subscriber left behind by a finished test would be counted by every later
``PUBLISH`` and make each revocation wait out the acknowledgement timeout. Every Redis
connection of a test is therefore named (``client_name`` in the URL), and the ``services``
fixture fails the test if one of them is still open once its services are closed.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy import text

from authsvc.app import create_app
from authsvc.clock import FrozenClock
from authsvc.db import migrate
from authsvc.db.models import Base
from authsvc.services import Services, build_services
from authsvc.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "AUTHSVC_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("AUTHSVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_SECRET = "test-master-secret-" + "x" * 32
BASE_URL = "http://testserver.local"


async def pg_admin(sql: str, admin_url: str = PG_ADMIN_URL) -> None:
    """Run one statement (``CREATE DATABASE`` …) on a Postgres server as its administrator.
    The one copy for the test suite; bench/ keeps its own (it does not import tests)."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def empty_pg_database(prefix: str) -> Iterator[str]:
    """A new, empty Postgres database (its ``postgresql+asyncpg://`` URL), dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh Postgres database for this test session, migrated to head."""
    with empty_pg_database("authsvc_test") as url:
        migrate.upgrade(url)
        yield url


# Every test of the API suite (tests/api) that uses ``broker`` also runs on Postgres + Redis:
# the limiter and the bus decide outcomes there (verdicts and their limits, revocation and its
# propagation, subtree disabling, OAuth clients charged and revoked, tenant deletion, signing
# key removal), so each revocation event kind crosses the real Redis. The suite runs on two
# xdist workers (scripts/test), which keeps CI's whole run under its 15-minute budget.
REDIS_PACKAGE = "tests.api."
DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
STORES = [
    pytest.param("sqlite", "memory", id="sqlite"),
    pytest.param("postgres", "memory", id="postgres", marks=pytest.mark.postgres),
]
POSTGRES_REDIS = pytest.param(
    "postgres", "redis", id="postgres-redis", marks=[pytest.mark.postgres, pytest.mark.redis]
)


def _parametrized_directly(metafunc: pytest.Metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The store matrix of every test that uses ``backend`` (see the module docstring)."""
    if "backend" not in metafunc.fixturenames or _parametrized_directly(metafunc, "backend"):
        return
    if "broker" not in metafunc.fixturenames:
        metafunc.parametrize("backend", DATABASES, indirect=True)
    elif metafunc.module.__name__.startswith(REDIS_PACKAGE):
        metafunc.parametrize(("backend", "broker"), [*STORES, POSTGRES_REDIS], indirect=True)
    else:
        metafunc.parametrize(("backend", "broker"), STORES, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgres`` (parametrised by :func:`pytest_generate_tests`)."""
    return str(request.param)


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> str:
    """``memory`` or ``redis`` (parametrised by :func:`pytest_generate_tests`)."""
    return str(request.param)


def redis_url_named(name: str) -> str:
    """``AUTHSVC_TEST_REDIS_URL`` whose connections call themselves ``name`` (CLIENT SETNAME)."""
    return f"{REDIS_URL}{'&' if urlsplit(REDIS_URL).query else '?'}client_name={name}"


def connection_name(settings: Settings) -> str | None:
    if settings.redis_url is None:
        return None
    return parse_qs(urlsplit(settings.redis_url).query)["client_name"][0]


async def open_connections(name: str) -> list[dict[str, Any]]:
    """The connections of the Redis server named ``name`` (``CLIENT LIST``)."""
    admin = Redis.from_url(REDIS_URL)
    try:
        return [c for c in await admin.client_list() if c.get("name") == name]
    finally:
        await admin.aclose()


async def assert_no_connection_left(name: str, within_s: float = 2.0) -> None:
    """Every connection named ``name`` is closed (the server may take a moment to notice)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while left := await open_connections(name):
        if asyncio.get_running_loop().time() > deadline:
            kinds = sorted(f"{c.get('cmd')} sub={c.get('sub')}" for c in left)
            raise AssertionError(f"{len(left)} Redis connection(s) left open: {kinds}")
        await asyncio.sleep(0.02)


def make_settings(
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
    *,
    broker: str = "memory",
    **kw: Any,
) -> Settings:
    database_url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    redis_url = None
    if broker == "redis":
        redis_url = redis_url_named(f"authsvc-test-{os.getpid()}-{secrets.token_hex(4)}")
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        redis_url=redis_url,
        secret_key=TEST_SECRET,
        base_url=BASE_URL,
        **kw,
    )


@pytest.fixture
def settings(tmp_path: Path, backend: str, broker: str, request: pytest.FixtureRequest) -> Settings:
    return make_settings(tmp_path, backend, request, broker=broker)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


async def prepare_database(services: Services) -> None:
    """Empty schema at head: create_all on SQLite, truncate on the migrated Postgres."""
    async with services.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            await conn.run_sync(Base.metadata.create_all)
        else:
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def services(settings: Settings, clock: FrozenClock) -> AsyncIterator[Services]:
    svc = build_services(settings, clock=clock)
    await prepare_database(svc)
    try:
        yield svc
    finally:
        await svc.aclose()
    name = connection_name(settings)
    if name is not None:  # no subscriber (nor anything else) outlives the test
        await assert_no_connection_left(name)


@asynccontextmanager
async def lifespan(app: Litestar, shutdown_within_s: float = 30.0) -> AsyncIterator[None]:
    """Drive the ASGI lifespan in the test's own event loop (DB connections are loop-bound).

    A shutdown that takes longer than ``shutdown_within_s`` fails the test (a background task
    that ignores its cancellation would otherwise hang the whole run)."""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await to_app.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, to_app.get, from_app.put))  # type: ignore[arg-type]
    started = await from_app.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        done, _ = await asyncio.wait({task}, timeout=shutdown_within_s)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=5)
            raise AssertionError(f"the app did not shut down within {shutdown_within_s} s")
        await task
        stopped = from_app.get_nowait()
        assert stopped["type"] == "lifespan.shutdown.complete", stopped


@pytest.fixture
async def client(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, services=services)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
            yield c
    name = connection_name(settings)
    if name is not None:  # the lifespan's end stopped the subscriber and dropped every link
        await assert_no_connection_left(name)


@pytest.fixture
async def operator_key(services: Services) -> str:
    return (await services.operators.create_key(actor="test")).key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def new_tenant(
    client: httpx.AsyncClient, operator_key: str, name: str = "Acme"
) -> dict[str, Any]:
    """Create a tenant through the API; returns ``{"tenant": …, "admin_key": {id, key}}``."""
    r = await client.post("/v1/tenants", json={"name": name}, headers=bearer(operator_key))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
async def tenant(client: httpx.AsyncClient, operator_key: str) -> dict[str, Any]:
    return await new_tenant(client, operator_key)


@pytest.fixture
def admin_key(tenant: dict[str, Any]) -> str:
    return str(tenant["admin_key"]["key"])


async def new_key(
    client: httpx.AsyncClient, parent_key: str, scopes: list[Any], **extra: Any
) -> dict[str, Any]:
    body = {"name": extra.pop("name", "test key"), "scopes": scopes, **extra}
    r = await client.post("/v1/keys", json=body, headers=bearer(parent_key))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out
