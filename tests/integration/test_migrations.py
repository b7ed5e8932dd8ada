"""Alembic migrations: upgrade on an empty database, downgrade to base, models == migrations."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from authsvc.db import migrate
from authsvc.db.models import Base
from tests.conftest import PG_ADMIN_URL


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        return
    name = f"authsvc_mig_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _tables_and_diff(url: str) -> tuple[set[str], list[object], str | None]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            diff = await conn.run_sync(migrate.pending_diff)
            current = await conn.run_sync(migrate.current_revision)
    finally:
        await engine.dispose()
    return tables, diff, current


def test_upgrade_creates_every_table_and_matches_models(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    tables, diff, current = asyncio.run(_tables_and_diff(empty_db_url))
    assert set(Base.metadata.tables) <= tables
    assert current == migrate.head_revision()
    assert diff == [], f"models and migrations differ: {diff}"


def test_downgrade_to_base_removes_everything_and_upgrade_again_works(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    migrate.downgrade(empty_db_url, "base")
    tables, _, current = asyncio.run(_tables_and_diff(empty_db_url))
    assert current is None
    assert not (set(Base.metadata.tables) & tables)
    migrate.upgrade(empty_db_url)
    _, diff, current = asyncio.run(_tables_and_diff(empty_db_url))
    assert diff == []
    assert current == migrate.head_revision()


def test_every_revision_steps_down_and_up(empty_db_url: str) -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = [r.revision for r in script.walk_revisions("base", "heads")]
    migrate.upgrade(empty_db_url)
    for _ in revisions:
        migrate.downgrade(empty_db_url, "-1")
    migrate.upgrade(empty_db_url)
    assert asyncio.run(_tables_and_diff(empty_db_url))[1] == []
