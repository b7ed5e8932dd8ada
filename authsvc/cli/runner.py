"""Running one command: the settings it reads, the services it uses for the length of one event
loop, and the tenant administrator it acts as. Shared by every command group."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from authsvc.db import migrate
from authsvc.principal import Principal
from authsvc.private_paths import make_private_dir
from authsvc.scopes import ADMIN, Grant, Scope
from authsvc.services import Services, build_services
from authsvc.settings import Settings


def settings_of(args: argparse.Namespace) -> Settings:
    return Settings.from_env(host=getattr(args, "host", None), port=getattr(args, "port", None))


def run(args: argparse.Namespace, fn: Callable[[Services], Awaitable[Any]]) -> Any:
    settings = settings_of(args)
    if settings.embedded:
        make_private_dir(settings.data_dir)
        migrate.upgrade(settings.effective_database_url)

    async def main() -> Any:
        services = build_services(settings)
        try:
            return await fn(services)
        finally:
            await services.aclose()

    return asyncio.run(main())


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


async def tenant_principal(services: Services, ref: str) -> Principal:
    """Act for a tenant as its administrator (the CLI runs with the operator's authority)."""
    tenant = await services.tenants.get_by_ref(ref)
    return Principal(
        kind="operator",
        id="cli",
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        grants=(Grant(Scope(ADMIN)),),
    )


async def current_revision(services: Services) -> str | None:
    async with services.engine.connect() as conn:
        return await conn.run_sync(migrate.current_revision)
