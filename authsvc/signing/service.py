"""Per-tenant signing keys: lifecycle, rotation, removal, JWKS.

Lifecycle
---------
``next`` → ``active`` → ``retired`` → removed. A tenant always has one ``active`` key (signs)
and one ``next`` key (published in the JWKS, signs nothing yet); both are created with the
tenant (an ``on_create`` hook, same transaction). Rotation retires the active key, activates
the next one and creates a new next one, so every key is in the JWKS from its creation, one
whole rotation period before it signs anything: verifiers that cache the JWKS already know it.
A retired key stays published until ``remove_after = retired_at + max_token_ttl_s +
SIGNER_TTL_S + leeway``: every token it signed has expired by then, including tokens signed
by another instance whose cached signer had not yet seen the rotation (the signer cache lives
``SIGNER_TTL_S``). The background task (:mod:`authsvc.signing.rotation`) deletes it after that
and records a ``signing_key`` revocation event so every instance forgets it; verifiers refuse
it from ``remove_after`` on whether or not it is deleted yet.

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
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import jwt as pyjwt
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authsvc.audit.service import record as audit
from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import SigningKey, Tenant
from authsvc.errors import Conflict, NotFound
from authsvc.master import MasterSecrets
from authsvc.revocation.events import RevocationBus, RevocationEvent
from authsvc.revocation.events import record as record_revocation
from authsvc.signing import crypto
from authsvc.signing.keyring import Keyring, PublicKey, Signer
from authsvc.tokens.jwt import MAX_LEEWAY_S, ResolvedKey

log = logging.getLogger(__name__)

NEXT, ACTIVE, RETIRED = "next", "active", "retired"
PUBLISHED = (NEXT, ACTIVE, RETIRED)
SIGNER_TTL_S = 60.0
RETIRE_MARGIN_S = SIGNER_TTL_S + MAX_LEEWAY_S
REMOVED_EVENT_TTL_S = 86400
JWKS_READ_INTERVAL_S = 1.0
_PUBLIC_MEMBERS = {
    "EC": ("kty", "crv", "x", "y", "kid", "alg", "use"),
    "RSA": ("kty", "n", "e", "kid", "alg", "use"),
    "OKP": ("kty", "crv", "x", "kid", "alg", "use"),
}


@dataclass(frozen=True, slots=True)
class Rotation:
    tenant_id: str
    retired: str | None
    activated: str
    next: str


def _aad(tenant_id: str, kid: str) -> bytes:
    return f"authsvc signing key|{tenant_id}|{kid}".encode()


def public_members(jwk: dict[str, Any]) -> dict[str, Any]:
    """Only the public members of an asymmetric JWK (defence in depth for the JWKS)."""
    allowed = _PUBLIC_MEMBERS.get(str(jwk.get("kty")))
    if allowed is None:
        raise ValueError("not an asymmetric public key")
    return {name: jwk[name] for name in allowed if name in jwk}


class SigningKeyService:
    def __init__(
        self,
        db: SessionFactory,
        clock: Clock,
        secrets: MasterSecrets,
        bus: RevocationBus,
        *,
        refresh_interval_s: float = 1.0,
    ) -> None:
        self._db, self._clock, self._bus = db, clock, bus
        self._master = secrets.current
        self._masters = crypto.master_secret_map(secrets.current, *secrets.previous)
        self._version = crypto.master_key_version(secrets.current)
        self._locks: dict[str, asyncio.Lock] = {}
        self.keyring = Keyring(
            self._load_public,
            self._load_signer,
            refresh_interval_s=refresh_interval_s,
            signer_ttl_s=SIGNER_TTL_S,
        )

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

    async def list_keys(self, tenant_id: str) -> Sequence[SigningKey]:
        async with self._db() as session:
            rows = await session.scalars(
                select(SigningKey)
                .where(SigningKey.tenant_id == tenant_id)
                .order_by(SigningKey.created_at, SigningKey.kid)
            )
            return rows.all()

    async def jwks(self, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
        """The JWK Set (RFC 7517 §5) of the tenant: next, active and retired keys."""
        # A public endpoint: the database is read at most once a second per tenant.
        keys = await self.keyring.key_set(tenant_id, max_age_s=JWKS_READ_INTERVAL_S)
        now = self._clock.now()
        rows = [k for k in keys.values() if k.usable(now)]
        # RFC 7517 §5: "keys" is REQUIRED; order: active first, then next, then retired.
        order = {ACTIVE: 0, NEXT: 1, RETIRED: 2}
        rows.sort(key=lambda k: order[k.state])
        return {"keys": [dict(k.jwk) for k in rows]}

    async def public_key(self, tenant_id: str, kid: str) -> ResolvedKey | None:
        return await self.keyring.public_key(tenant_id, kid, self._clock.now())

    async def signer(self, tenant_id: str) -> Signer:
        return await self.keyring.signer(tenant_id)

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
                    remove_after = now + timedelta(seconds=tenant.max_token_ttl_s + RETIRE_MARGIN_S)
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

    async def due(self, now: datetime) -> list[tuple[str, str | None]]:
        """``(tenant_id, active kid)`` of enabled tenants whose active key is due for rotation
        (or that have no active key, kid ``None``)."""
        async with self._db() as session:
            tenants = (
                await session.execute(
                    select(Tenant.id, Tenant.signing_key_rotation_s).where(Tenant.enabled)
                )
            ).all()
            actives = {
                row.tenant_id: (row.kid, row.activated_at or row.created_at)
                for row in (
                    await session.execute(
                        select(
                            SigningKey.tenant_id,
                            SigningKey.kid,
                            SigningKey.activated_at,
                            SigningKey.created_at,
                        ).where(SigningKey.state == ACTIVE)
                    )
                ).all()
            }
        out: list[tuple[str, str | None]] = []
        for tenant_id, period in tenants:
            active = actives.get(tenant_id)
            if active is None:
                out.append((tenant_id, None))
            elif period > 0 and active[1] + timedelta(seconds=period) <= now:
                out.append((tenant_id, active[0]))
        return out

    async def remove_expired(self, now: datetime) -> list[str]:
        """Delete retired keys past ``remove_after``; returns their kids."""
        async with self._db.begin() as session:
            rows = (
                await session.execute(
                    select(SigningKey.kid, SigningKey.tenant_id).where(
                        SigningKey.state == RETIRED, SigningKey.remove_after <= now
                    )
                )
            ).all()
            events: list[RevocationEvent] = []
            for kid, tenant_id in rows:
                gone = await session.execute(
                    delete(SigningKey).where(
                        SigningKey.kid == kid,
                        SigningKey.state == RETIRED,
                        SigningKey.remove_after <= now,
                    )
                )
                if _rowcount(gone) != 1:
                    continue  # another instance removed it first
                event = RevocationEvent(
                    tenant_id,
                    "signing_key",
                    kid,
                    now,
                    now + timedelta(seconds=REMOVED_EVENT_TTL_S),
                )
                record_revocation(session, event, now=now)
                audit(
                    session,
                    now=now,
                    actor="system",
                    action="signing_key.remove",
                    target_type="signing_key",
                    target_id=kid,
                    tenant_id=tenant_id,
                )
                events.append(event)
        if events:
            await self._bus.publish(events)
            for event in events:
                self.keyring.on_event(event)
        return [e.value for e in events]

    # --- helpers -------------------------------------------------------------------------

    async def _load_public(self, tenant_id: str) -> dict[str, PublicKey]:
        async with self._db() as session:
            rows = (
                await session.scalars(
                    select(SigningKey).where(
                        SigningKey.tenant_id == tenant_id, SigningKey.state.in_(PUBLISHED)
                    )
                )
            ).all()
        out: dict[str, PublicKey] = {}
        for row in rows:
            jwk = public_members(row.public_jwk)
            parsed = pyjwt.PyJWK(jwk, algorithm=row.alg).key
            resolved = ResolvedKey(kid=row.kid, alg=cast(crypto.Alg, row.alg), public_key=parsed)
            out[row.kid] = PublicKey(resolved, row.state, row.remove_after, jwk)
        return out

    async def _load_signer(self, tenant_id: str) -> Signer:
        async with self._db() as session:
            row = await session.scalar(
                select(SigningKey).where(
                    SigningKey.tenant_id == tenant_id, SigningKey.state == ACTIVE
                )
            )
        if row is None:
            await self.ensure_keys(tenant_id)
            return await self._load_signer(tenant_id)
        pem = crypto.decrypt_private_key(
            row.private_key_enc, master_secrets=self._masters, aad=_aad(tenant_id, row.kid)
        )
        return Signer(row.kid, cast(crypto.Alg, row.alg), crypto.load_private_key(pem))

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
                pem, master_secret=self._master, aad=_aad(tenant_id, kid)
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
            raise Conflict("The signing keys changed concurrently; retry.", code="CONFLICT")

    def _lock(self, tenant_id: str) -> asyncio.Lock:
        lock = self._locks.get(tenant_id)
        if lock is None:
            lock = self._locks[tenant_id] = asyncio.Lock()
        return lock


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))
