"""Operator keys: the credentials of whoever runs the instance. They manage tenants only.

Only the keyed hash of a key is stored (see :mod:`authsvc.keys.secret`); listings show its
``start``. :meth:`OperatorService.authenticate` reads the database on every call, with no
cache: operator calls are rare, and a revoked operator key is refused by every instance on its
next request. Revoking is idempotent; the change and its audit row commit together.

Master-secret rotation: a key is looked up under the hash of the current and of every previous
master secret, and one found under a previous secret is re-hashed under the current one on
that same call, so once every operator key has been used the previous secret can be dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update

from authsvc.audit.service import record as audit
from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import OperatorKey
from authsvc.errors import NotFound
from authsvc.ids import new_id
from authsvc.keys import secret as keysecret
from authsvc.keys.secret import KeyHasher


@dataclass(frozen=True, slots=True)
class CreatedOperatorKey:
    id: str
    key: str


@dataclass(frozen=True, slots=True)
class OperatorKeyInfo:
    """An operator key as it may be shown: never its hash."""

    id: str
    start: str
    created_at: datetime
    revoked_at: datetime | None


def _info(row: OperatorKey) -> OperatorKeyInfo:
    return OperatorKeyInfo(row.id, row.start, row.created_at, row.revoked_at)


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

    async def list_keys(self) -> list[OperatorKeyInfo]:
        """Every operator key, revoked ones included, oldest first."""
        async with self._db() as session:
            rows = await session.scalars(select(OperatorKey).order_by(OperatorKey.id))
            return [_info(row) for row in rows]

    async def revoke(self, key_id: str, actor: str = "cli") -> OperatorKeyInfo:
        """Revoke a key (again: no change, no audit row). ``NotFound`` for an unknown id."""
        now = self._clock.now()
        async with self._db.begin() as session:
            # Conditional UPDATE: of two concurrent revokes, exactly one changes the row.
            changed = cast(
                CursorResult[Any],
                await session.execute(
                    update(OperatorKey)
                    .where(OperatorKey.id == key_id, OperatorKey.revoked_at.is_(None))
                    .values(revoked_at=now)
                ),
            )
            row = await session.get(OperatorKey, key_id, populate_existing=True)
            if row is None:
                raise NotFound("No such operator key.")
            if changed.rowcount:
                audit(
                    session,
                    now=now,
                    actor=actor,
                    action="operator_key.revoke",
                    target_type="operator_key",
                    target_id=key_id,
                    tenant_id=None,
                )
            return _info(row)

    async def authenticate(self, key: str) -> str | None:
        """The operator key id for a valid, unrevoked operator key.

        Looks the key up by its hash under the current and every previous master secret (one
        query); a key found under a previous one is stored again under the current one.
        """
        digests = self._hasher.digests(key)
        async with self._db() as session:
            row = await session.scalar(
                select(OperatorKey).where(OperatorKey.key_hash.in_(digests)).limit(1)
            )
        if row is None or row.revoked_at is not None:
            return None
        if row.key_hash != digests[0]:
            await self._rehash(row.id, old=row.key_hash, new=digests[0])
        return row.id

    async def _rehash(self, key_id: str, *, old: str, new: str) -> None:
        async with self._db.begin() as session:
            # Conditional on the old hash: a concurrent re-hash of the same key is a no-op.
            await session.execute(
                update(OperatorKey)
                .where(OperatorKey.id == key_id, OperatorKey.key_hash == old)
                .values(key_hash=new)
            )
