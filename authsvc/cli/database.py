"""``authsvc db``: schema migrations (Alembic) and the check that the schema is current."""

from __future__ import annotations

import argparse
import asyncio

from authsvc.cli.runner import current_revision, settings_of
from authsvc.db import migrate
from authsvc.services import build_services
from authsvc.settings import Settings


def cmd_db(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    if args.action == "upgrade":
        migrate.upgrade(url, args.revision or "head")
    elif args.action == "downgrade":
        migrate.downgrade(url, args.revision or "-1")
    else:
        current = asyncio.run(_check_current(settings))
        head = migrate.head_revision()
        print(f"current: {current}  head: {head}")
        return 0 if current == head else 1
    print(f"database {args.action} done")
    return 0


async def _check_current(settings: Settings) -> str | None:
    services = build_services(settings)
    try:
        return await current_revision(services)
    finally:
        await services.aclose()


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="schema migrations (Alembic)")
    db.add_argument("action", choices=["upgrade", "downgrade", "check"])
    db.add_argument("revision", nargs="?")
    db.set_defaults(func=cmd_db)
