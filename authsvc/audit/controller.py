"""``GET /v1/audit-log`` (ADMIN)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.di import Provide
from litestar.params import FromQuery

from authsvc.web.auth import provide_principal
from authsvc.web.deps import PrincipalDep, ServicesDep


class AuditOut(msgspec.Struct):
    id: str
    actor: str
    action: str
    target_type: str
    target_id: str | None
    details: dict[str, Any]
    created_at: datetime


class AuditPage(msgspec.Struct):
    data: list[AuditOut]
    next_cursor: str | None


class AuditController(Controller):
    path = "/v1/audit-log"
    tags = ["audit"]
    dependencies = {"principal": Provide(provide_principal)}

    @get("/")
    async def list_audit(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
        action: FromQuery[str | None] = None,
    ) -> AuditPage:
        principal.require("ADMIN")
        rows, next_cursor = await services.audit.list(
            principal.tenant, limit=limit, cursor=cursor, action=action
        )
        return AuditPage(
            [
                AuditOut(
                    r.id, r.actor, r.action, r.target_type, r.target_id, r.details, r.created_at
                )
                for r in rows
            ],
            next_cursor,
        )
