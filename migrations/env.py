"""Alembic environment: async engines (asyncpg, aiosqlite), or a connection handed in.

``authsvc db …`` and the tests pass a URL or a connection. ``alembic`` run by hand from the
checkout (configured by ``[tool.alembic]`` in pyproject.toml) passes neither: the URL then comes
from the ``AUTHSVC_*`` environment, as for ``authsvc`` itself.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from authsvc.db.models import Base
from authsvc.settings import Settings

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_alembic_option("sqlalchemy.url")
    return url if isinstance(url, str) and url else Settings.from_env().effective_database_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    asyncio.run(_run_async(_url()))


if context.is_offline_mode():
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
