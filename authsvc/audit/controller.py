"""``GET /v1/audit-log`` (ADMIN)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from authsvc.audit.service import AuditService
from authsvc.web.deps import Caller

Audit = NamedDependency[AuditService]


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

    @get("/")
    async def list_audit(
        self,
        audit: Audit,
        caller: Caller,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
        action: FromQuery[str | None] = None,
    ) -> AuditPage:
        caller.require("ADMIN")
        entries, next_cursor = await audit.list(
            caller.tenant, limit=limit, cursor=cursor, action=action
        )
        return AuditPage(
            [
                AuditOut(e.id, e.actor, e.action, e.target_type, e.target_id, e.details, e.at)
                for e in entries
            ],
            next_cursor,
        )
