"""Shared fixtures.

Integration and API tests run twice, against the embedded SQLite backend and the real
PostgreSQL (``AUTHSVC_TEST_PG_ADMIN_URL``, default the local server): parametrise with the
``backend`` fixture, or use ``services``/``client`` which depend on it. Each test gets a clean
database: a new SQLite file, or a truncated Postgres schema (migrated once per session).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar
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


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def empty_pg_database(prefix: str) -> Iterator[str]:
    """A new, empty Postgres database (its ``postgresql+asyncpg://`` URL), dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh Postgres database for this test session, migrated to head."""
    with empty_pg_database("authsvc_test") as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_settings(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, **kw: Any
) -> Settings:
    database_url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=TEST_SECRET,
        base_url=BASE_URL,
        **kw,
    )


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    return make_settings(tmp_path, backend, request)


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


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Drive the ASGI lifespan in the test's own event loop (DB connections are loop-bound)."""
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
        await from_app.get()
        await task


@pytest.fixture
async def client(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, services=services)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
            yield c


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
