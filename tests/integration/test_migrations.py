"""Alembic migrations: upgrade on an empty database, downgrade to base, models == migrations;
also ``alembic`` run by hand from the checkout (``[tool.alembic]`` in pyproject.toml)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from authsvc.db import migrate
from authsvc.db.models import Base
from tests.conftest import TEST_SECRET, empty_pg_database
from tests.server import clean_env

CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        return
    with empty_pg_database("authsvc_mig") as url:
        yield url


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


def _alembic(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = clean_env({"AUTHSVC_DATABASE_URL": url, "AUTHSVC_SECRET_KEY": TEST_SECRET})
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=CHECKOUT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_alembic_by_hand_from_the_checkout_migrates_the_authsvc_database(
    empty_db_url: str,
) -> None:
    up = _alembic("upgrade", "head", url=empty_db_url)
    assert up.returncode == 0, up.stderr
    current = _alembic("current", url=empty_db_url)
    assert current.stdout.split() == [str(migrate.head_revision()), "(head)"], current.stderr
    check = _alembic("check", url=empty_db_url)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout


def test_scripts_are_the_top_level_migrations_folder_of_the_checkout() -> None:
    assert migrate.script_directory() == CHECKOUT / "migrations"


def test_checkout_without_an_install_finds_its_migrations_folder() -> None:
    """Without site processing no editable-install finder maps ``authsvc.migrations``."""
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    code = (
        f"import sys; sys.path[:0] = [{str(CHECKOUT)!r}]; sys.path.append({site_packages!r}); "
        "from authsvc.db import migrate; print(migrate.script_directory(), migrate.head_revision())"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=CHECKOUT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(CHECKOUT / "migrations"), str(migrate.head_revision())]
