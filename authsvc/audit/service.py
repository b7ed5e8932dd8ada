"""Audit log.

Rows are written in the same transaction as the change they describe, so an action and its
audit row commit or roll back together. ``details`` hold field names and non-secret values
only; callers never pass key material.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from authsvc.db.engine import SessionFactory
from authsvc.db.models import AuditEntry
from authsvc.db.pagination import paginate
from authsvc.ids import new_id


def record(
    session: AsyncSession,
    *,
    now: datetime,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | None,
    tenant_id: str | None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        id=new_id("aud", now.timestamp()),
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details or {},
        created_at=now,
    )
    session.add(entry)
    return entry


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: str
    actor: str
    action: str
    target_type: str
    target_id: str | None
    details: dict[str, Any]
    at: datetime


class AuditService:
    def __init__(self, db: SessionFactory) -> None:
        self._db = db

    async def list(
        self,
        tenant_id: str | None,
        *,
        limit: int | None,
        cursor: str | None,
        action: str | None = None,
    ) -> tuple[list[AuditEvent], str | None]:
        stmt = select(AuditEntry).where(AuditEntry.tenant_id == tenant_id)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        async with self._db() as session:
            rows, next_cursor = await paginate(
                session, stmt, AuditEntry.id, limit=limit, cursor=cursor
            )
        events = [
            AuditEvent(
                r.id, r.actor, r.action, r.target_type, r.target_id, dict(r.details), r.created_at
            )
            for r in rows
        ]
        return events, next_cursor
