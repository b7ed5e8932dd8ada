"""The service container: every domain service, built once per application from settings.

:func:`build_services` is used by the HTTP app and the CLI alike, so both go through the same
domain code.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from authsvc.audit.service import AuditService
from authsvc.clock import Clock, SystemClock
from authsvc.db.engine import SessionFactory, make_engine, make_session_factory
from authsvc.identities.service import IdentityService
from authsvc.keys.service import KeyService
from authsvc.master import MasterSecrets, load_master_secrets
from authsvc.operators import OperatorService
from authsvc.revocation.events import NullBus, RevocationBus
from authsvc.settings import Settings
from authsvc.tenants.service import TenantService


@dataclass(eq=False)
class Services:
    """Plain attribute bag; handed to handlers as an opaque dependency."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    db: SessionFactory
    secrets: MasterSecrets
    bus: RevocationBus
    operators: OperatorService
    tenants: TenantService
    keys: KeyService
    identities: IdentityService
    audit: AuditService

    async def aclose(self) -> None:
        await self.engine.dispose()


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    engine: AsyncEngine | None = None,
) -> Services:
    clock = clock or SystemClock()
    engine = engine or make_engine(settings)
    db = make_session_factory(engine)
    master = load_master_secrets(settings)
    bus: RevocationBus = NullBus()
    hash_secret = master.key_hash_secret
    keys = KeyService(db, clock, hash_secret, bus)
    return Services(
        settings=settings,
        clock=clock,
        engine=engine,
        db=db,
        secrets=master,
        bus=bus,
        operators=OperatorService(db, clock, hash_secret),
        tenants=TenantService(db=db, clock=clock, settings=settings, keys=keys, bus=bus),
        keys=keys,
        identities=IdentityService(db, clock, bus),
        audit=AuditService(db),
    )
