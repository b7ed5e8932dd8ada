"""Alembic, driven from code (``authsvc db upgrade|downgrade|check``) and from tests.

The scripts live in the top-level ``migrations/`` folder, which setup.py installs as the package
``authsvc.migrations`` (in a wheel, and mapped back to ``migrations/`` by an editable install).
Alembic gets that package's real directory as ``script_location``, resolved at call time. A source
checkout imported without (re)installing (an editable install made before the move has no such
mapping) falls back to ``migrations/`` beside ``authsvc/``, only where a pyproject.toml marks it as
the checkout, so an installed authsvc never picks up some other ``site-packages/migrations``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from authsvc.db.engine import prepare_sqlite_file
from authsvc.db.models import Base


def script_directory() -> Path:
    """The folder holding ``env.py`` and ``versions/``."""
    try:
        installed = files("authsvc.migrations")
    except ModuleNotFoundError:
        installed = None
    if isinstance(installed, Path) and (installed / "env.py").is_file():
        return installed
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "migrations" / "env.py").is_file():
        return checkout / "migrations"
    raise RuntimeError(
        "Alembic scripts not found: the package authsvc.migrations is missing or not a directory"
    )


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_directory()).replace("%", "%%"))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    prepare_sqlite_file(url)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    prepare_sqlite_file(url)
    command.downgrade(alembic_config(url), revision)


def upgrade_connection(connection: Connection, revision: str = "head") -> None:
    command.upgrade(alembic_config(connection=connection), revision)


def downgrade_connection(connection: Connection, revision: str = "base") -> None:
    command.downgrade(alembic_config(connection=connection), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def pending_diff(connection: Connection) -> list[object]:
    """Differences between the models and the migrated database (empty when in sync)."""
    from alembic.autogenerate import compare_metadata

    ctx = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))
