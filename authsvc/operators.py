"""Operator keys: the credentials of whoever runs the instance. They manage tenants only."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from authsvc.audit.service import record as audit
from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import OperatorKey
from authsvc.ids import new_id
from authsvc.keys import secret as keysecret
from authsvc.keys.secret import KeyHasher


@dataclass(frozen=True, slots=True)
class CreatedOperatorKey:
    id: str
    key: str


class OperatorService:
    def __init__(self, db: SessionFactory, clock: Clock, hasher: KeyHasher) -> None:
        self._db, self._clock, self._hasher = db, clock, hasher

    async def create_key(self, actor: str = "cli") -> CreatedOperatorKey:
        key = keysecret.generate("operator")
        now = self._clock.now()
        row = OperatorKey(
            id=new_id("opk", now.timestamp()),
            key_hash=self._hasher.digest(key),
            start=keysecret.display_start(key),
            created_at=now,
            revoked_at=None,
        )
        async with self._db.begin() as session:
            session.add(row)
            audit(
                session,
                now=now,
                actor=actor,
                action="operator_key.create",
                target_type="operator_key",
                target_id=row.id,
                tenant_id=None,
            )
        return CreatedOperatorKey(row.id, key)

    async def authenticate(self, key: str) -> str | None:
        """The operator key id for a valid, unrevoked operator key."""
        digest = self._hasher.digest(key)
        async with self._db() as session:
            row = await session.scalar(select(OperatorKey).where(OperatorKey.key_hash == digest))
        if row is None or row.revoked_at is not None:
            return None
        return row.id
