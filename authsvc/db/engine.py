"""Engine and session factories for PostgreSQL (asyncpg) and embedded SQLite (aiosqlite), and
the :class:`Reader` of the hot path.

Two pools per instance on PostgreSQL. Management (sessions, transactions) uses a pool that
pings a connection before handing it out (``pool_pre_ping``). Hot-path reads (a key and its
ancestors on a cold check, a tenant, a signing-key set) use a :class:`Reader`: an autocommit
connection from a pool of its own without the ping, so one lookup is one round trip (no ping,
no ``BEGIN``, no ``ROLLBACK``), its statement prepared once per connection by asyncpg's cache;
a connection found dead is replaced and the statement retried once. The reader pool never
grows past its size (no overflow), so a burst of cold checks waits for a connection rather
than opening and closing extra ones.

A SQLite database file is created by :func:`prepare_sqlite_file` (mode 0600, in a 0700
directory if it creates one) before any engine or migration opens it; see
:mod:`authsvc.private_paths`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Executable, Row, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

from authsvc.private_paths import create_private_file, make_private_dir
from authsvc.settings import Settings

SessionFactory = async_sessionmaker[AsyncSession]


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; ``None`` for other backends and in-memory databases."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None  # SQLite URI filename: its path and mode are the caller's business
    return Path(database)


def prepare_sqlite_file(url: str) -> None:
    """Create the SQLite file of ``url`` private (0600) before SQLite creates it 0644."""
    path = sqlite_file(url)
    if path is not None:
        make_private_dir(path.parent)
        create_private_file(path)


def make_engine(settings: Settings) -> AsyncEngine:
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        prepare_sqlite_file(url)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        pool_timeout=5,
        connect_args={"timeout": 5, "command_timeout": 10},
    )


def make_reader_engine(settings: Settings, engine: AsyncEngine) -> AsyncEngine:
    """The engine of :class:`Reader`: its own pool on PostgreSQL, the same file on SQLite."""
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        pool_timeout=5,
        isolation_level="AUTOCOMMIT",
        connect_args={"timeout": 5, "command_timeout": 10},
    )


class Reader:
    """One read-only statement, one round trip (see the module docstring)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def rows(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        for attempt in (1, 2):
            try:
                async with self.engine.connect() as conn:
                    return (await conn.execute(statement, params)).all()
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self.engine.dispose()


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)
