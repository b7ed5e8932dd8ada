"""Per-tenant signing keys: lifecycle (create, rotate, replace). Removal of expired keys and the
background task are :mod:`authsvc.signing.rotation`; the in-process key caches and the JWKS are
:mod:`authsvc.signing.keyring`.

Lifecycle
---------
``next`` → ``active`` → ``retired`` → removed. A tenant always has one ``active`` key (signs)
and one ``next`` key (published in the JWKS, signs nothing yet); both are created with the
tenant (an ``on_create`` hook, same transaction). Rotation retires the active key, activates
the next one and creates a new next one, so every key is in the JWKS from its creation, one
whole rotation period before it signs anything: verifiers that cache the JWKS already know it.
A retired key stays published until ``remove_after``: the tenant's revocation horizon at
retirement (``max_token_ttl_s``, or longer while tokens minted under an earlier, higher maximum
live) plus ``SIGNER_TTL_S`` and the clock leeway. Every token it signed has expired by then,
including tokens signed by another instance whose cached signer had not yet seen the rotation
(the signer cache lives ``SIGNER_TTL_S``). The background task deletes it after that and records
a ``signing_key`` revocation event so every instance forgets it; verifiers refuse it from
``remove_after`` on whether or not it is deleted yet.

Algorithm changes: changing a tenant's ``signing_alg`` replaces its ``next`` key at once (the
``on_update`` hook; a next key never signed anything, so nothing depends on it) with one of
the new algorithm. The active key keeps signing until the next rotation, which activates the
new algorithm: the change "takes effect at the next rotation", and the new key was published
before it signs.

Concurrency (several instances, one database)
---------------------------------------------
Rotation and key replacement lock the tenant row (``SELECT … FOR UPDATE`` on PostgreSQL) and
change key states with conditional ``UPDATE … WHERE state = <expected>``, checking the row
count: two instances deciding at the same moment that a tenant is due serialise on the lock
and the second sees that the active key is no longer the one it meant to retire, so it does
nothing. SQLite (embedded: one process) has no row locks; an in-process lock per tenant and
the same conditional updates give the same result.

Private keys are generated off the event loop, encrypted with AES-GCM under a key derived
from the master secret (:mod:`authsvc.signing.crypto`) and bound to ``tenant_id`` and ``kid``
as additional data; ``master_key_version`` records which master secret encrypted each one.
Nothing here logs or returns key material; the JWKS contains public members only and only
asymmetric keys (an HMAC key is never created, so it can never be published).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authsvc.audit.service import record as audit
from authsvc.clock import MAX_CLOCK_SKEW_S, Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import SigningKey, Tenant
from authsvc.errors import Code, Conflict, NotFound, Unavailable
from authsvc.master import MasterSecrets
from authsvc.signing import crypto
from authsvc.signing.keyring import ACTIVE, NEXT, RETIRED, Keyring, Signer, aad, public_members

SIGNER_TTL_S = 60.0
RETIRE_MARGIN_S = SIGNER_TTL_S + MAX_CLOCK_SKEW_S


@dataclass(frozen=True, slots=True)
class Rotation:
    tenant_id: str
    retired: str | None
    activated: str
    next: str


@dataclass(frozen=True, slots=True)
class SigningKeyInfo:
    """A signing key as the admin API shows it (public members only)."""

    kid: str
    alg: str
    state: str
    public_jwk: Mapping[str, Any]
    master_key_version: str
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None
    remove_after: datetime | None


def _info(row: SigningKey) -> SigningKeyInfo:
    return SigningKeyInfo(
        kid=row.kid,
        alg=row.alg,
        state=row.state,
        public_jwk=public_members(row.public_jwk),
        master_key_version=row.master_key_version,
        created_at=row.created_at,
        activated_at=row.activated_at,
        retired_at=row.retired_at,
        remove_after=row.remove_after,
    )


def retired_until(tenant: Tenant, now: datetime) -> datetime:
    """When a key retired ``now`` may be removed: every token it may have signed has expired."""
    horizon = now + timedelta(seconds=tenant.max_token_ttl_s)
    if tenant.token_horizon_at is not None:
        horizon = max(horizon, tenant.token_horizon_at)
    return horizon + timedelta(seconds=RETIRE_MARGIN_S)


class SigningKeyService:
    def __init__(
        self, db: SessionFactory, clock: Clock, secrets: MasterSecrets, keyring: Keyring
    ) -> None:
        self._db, self._clock, self.keyring = db, clock, keyring
        self._master = secrets.current
        self._version = crypto.master_key_version(secrets.current)
        self._locks: dict[str, asyncio.Lock] = {}

    # --- tenant hooks (inside the tenant's transaction) ---------------------------------

    async def on_tenant_create(self, session: AsyncSession, tenant: Tenant, now: datetime) -> None:
        session.add(await self._new_key(tenant.id, tenant.signing_alg, ACTIVE, now))
        session.add(await self._new_key(tenant.id, tenant.signing_alg, NEXT, now))

    async def on_tenant_update(self, session: AsyncSession, tenant: Tenant, now: datetime) -> None:
        """A changed ``signing_alg`` replaces the unused next key (see the module docstring)."""
        nxt = await session.scalar(
            select(SigningKey).where(SigningKey.tenant_id == tenant.id, SigningKey.state == NEXT)
        )
        if nxt is None or nxt.alg == tenant.signing_alg:
            return
        replacement = await self._new_key(tenant.id, tenant.signing_alg, NEXT, now)
        gone = await session.execute(
            delete(SigningKey).where(SigningKey.kid == nxt.kid, SigningKey.state == NEXT)
        )
        if _rowcount(gone) == 1:
            session.add(replacement)
        self.keyring.invalidate(tenant.id)

    # --- reads ---------------------------------------------------------------------------

    async def list_keys(self, tenant_id: str) -> list[SigningKeyInfo]:
        async with self._db() as session:
            rows = await session.scalars(
                select(SigningKey)
                .where(SigningKey.tenant_id == tenant_id)
                .order_by(SigningKey.created_at, SigningKey.kid)
            )
            return [_info(r) for r in rows.all()]

    async def signer(self, tenant_id: str) -> Signer:
        """The tenant's active signing key (created first for a tenant that has none)."""
        signer = await self.keyring.signer(tenant_id)
        if signer is None:
            await self.ensure_keys(tenant_id)
            signer = await self.keyring.signer(tenant_id)
        if signer is None:
            raise Unavailable("The tenant has no signing key.")
        return signer

    # --- rotation ------------------------------------------------------------------------

    async def rotate(
        self, tenant_id: str, *, actor: str, expected_active: str | None = None
    ) -> Rotation | None:
        """Retire the active key, activate the next one, create a new next one.

        With ``expected_active`` (the background task), nothing happens and ``None`` is
        returned if the active key is no longer that one (another instance rotated first).
        """
        async with self._lock(tenant_id):
            alg = await self._alg_of(tenant_id)
            fresh = await self._new_key(tenant_id, alg, NEXT, self._clock.now())
            now = self._clock.now()
            async with self._db.begin() as session:
                tenant = await session.get(Tenant, tenant_id, with_for_update=True)
                if tenant is None:
                    raise NotFound("No such tenant.")
                if fresh.alg != tenant.signing_alg:  # changed while we were generating
                    fresh = await self._new_key(tenant_id, tenant.signing_alg, NEXT, now)
                keys = await self._current(session, tenant_id)
                active, nxt = keys.get(ACTIVE), keys.get(NEXT)
                if expected_active is not None and (
                    active is None or active.kid != expected_active
                ):
                    return None
                if nxt is None:  # only a tenant created before signing keys existed
                    nxt = await self._new_key(tenant_id, tenant.signing_alg, NEXT, now)
                    session.add(nxt)
                    await session.flush()
                if active is not None:
                    remove_after = retired_until(tenant, now)
                    await self._transition(
                        session,
                        active.kid,
                        ACTIVE,
                        state=RETIRED,
                        retired_at=now,
                        remove_after=remove_after,
                    )
                await self._transition(session, nxt.kid, NEXT, state=ACTIVE, activated_at=now)
                fresh.created_at = now
                session.add(fresh)
                result = Rotation(tenant_id, active.kid if active else None, nxt.kid, fresh.kid)
                audit(
                    session,
                    now=now,
                    actor=actor,
                    action="signing_key.rotate",
                    target_type="signing_key",
                    target_id=nxt.kid,
                    tenant_id=tenant_id,
                    details={"retired": result.retired, "next": fresh.kid, "alg": fresh.alg},
                )
        self.keyring.invalidate(tenant_id)
        return result

    async def ensure_keys(self, tenant_id: str, *, actor: str = "system") -> bool:
        """Give a tenant without an active key (created before this feature) its keys."""
        async with self._lock(tenant_id), self._db.begin() as session:
            tenant = await session.get(Tenant, tenant_id, with_for_update=True)
            if tenant is None:
                raise NotFound("No such tenant.")
            keys = await self._current(session, tenant_id)
            if ACTIVE in keys:
                return False
            now = self._clock.now()
            session.add(await self._new_key(tenant_id, tenant.signing_alg, ACTIVE, now))
            if NEXT not in keys:
                session.add(await self._new_key(tenant_id, tenant.signing_alg, NEXT, now))
            audit(
                session,
                now=now,
                actor=actor,
                action="signing_key.create",
                target_type="tenant",
                target_id=tenant_id,
                tenant_id=tenant_id,
            )
        self.keyring.invalidate(tenant_id)
        return True

    # --- helpers -------------------------------------------------------------------------

    async def _new_key(self, tenant_id: str, alg: str, state: str, now: datetime) -> SigningKey:
        if alg not in crypto.ALGORITHMS:
            raise ValueError("unsupported signing algorithm")
        algorithm: crypto.Alg = alg
        pem = await asyncio.to_thread(crypto.generate_private_key, algorithm)
        kid = crypto.new_kid()
        return SigningKey(
            kid=kid,
            tenant_id=tenant_id,
            alg=algorithm,
            state=state,
            public_jwk=crypto.public_jwk(pem, kid=kid, alg=algorithm),
            private_key_enc=crypto.encrypt_private_key(
                pem, master_secret=self._master, aad=aad(tenant_id, kid)
            ),
            master_key_version=self._version,
            created_at=now,
            activated_at=now if state == ACTIVE else None,
            retired_at=None,
            remove_after=None,
        )

    async def _alg_of(self, tenant_id: str) -> str:
        async with self._db() as session:
            alg = await session.scalar(select(Tenant.signing_alg).where(Tenant.id == tenant_id))
        if alg is None:
            raise NotFound("No such tenant.")
        return alg

    @staticmethod
    async def _current(session: AsyncSession, tenant_id: str) -> dict[str, SigningKey]:
        rows = (
            await session.scalars(
                select(SigningKey)
                .where(SigningKey.tenant_id == tenant_id, SigningKey.state.in_((ACTIVE, NEXT)))
                .with_for_update()
            )
        ).all()
        return {row.state: row for row in rows}

    @staticmethod
    async def _transition(session: AsyncSession, kid: str, expected: str, **values: Any) -> None:
        result = await session.execute(
            update(SigningKey)
            .where(SigningKey.kid == kid, SigningKey.state == expected)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            raise Conflict("The signing keys changed concurrently; retry.", code=Code.CONFLICT)

    def _lock(self, tenant_id: str) -> asyncio.Lock:
        lock = self._locks.get(tenant_id)
        if lock is None:
            lock = self._locks[tenant_id] = asyncio.Lock()
        return lock


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))
