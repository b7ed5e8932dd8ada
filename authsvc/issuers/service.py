"""Trusted issuers of a tenant: create, read, change, delete (``ADMIN`` only; DESIGN §9).

Everything is validated before it is stored, so what an exchange reads is well formed:

* ``issuer`` and ``jwks_uri``: absolute URLs, https and a public address unless
  ``AUTHSVC_ALLOW_PRIVATE_ISSUERS`` (the host is resolved and checked now; nothing is fetched);
* ``jwks`` (inline): a JWK Set with at least one usable signing key;
* ``algorithms``: from the allow-list (RS256, PS256, ES256, EdDSA; never ``none`` or HS*);
* ``grants``: data scopes in the grammar of §1; fixed params are literal values or
  ``{"claim": <name or JSON Pointer>}``; ``subject_claim`` and ``conditions`` are claim references;
* ``allowed_origins``: ``scheme://host[:port]`` origins (RFC 6454), never ``*``.

Every change is written with its audit row and an ``issuer`` revocation event in one transaction,
then published: every instance drops the tenant's issuers from its caches, so a disabled or
deleted issuer's tokens are refused everywhere on the next check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from authsvc.audit.service import record as audit
from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import TrustedIssuer
from authsvc.db.pagination import paginate
from authsvc.errors import Code, Conflict, InvalidRequest, NotFound
from authsvc.ids import new_id
from authsvc.issuers.claims import parse_conditions
from authsvc.issuers.jwks import InvalidJwks, parse_algorithms, parse_jwks
from authsvc.issuers.mapping import parse_grant_templates, parse_subject_claim
from authsvc.issuers.state import IssuerState, state_of
from authsvc.issuers.urls import FetchError, check_issuer_url, check_jwks_url
from authsvc.principal import Principal
from authsvc.ratelimit.limits import parse_ratelimits
from authsvc.revocation.events import RevocationBus, RevocationEvent
from authsvc.revocation.events import record as record_revocation

MAX_AUDIENCES = 10
MAX_ORIGINS = 20
MAX_TTL_S = 86400
MAX_RPS = 1_000_000
_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.\-]+(?::\d{1,5})?\Z|https?://\[[0-9A-Fa-f:.]+\](?::\d{1,5})?\Z"
)
FIELDS = frozenset(
    {
        "issuer",
        "jwks_uri",
        "jwks",
        "audiences",
        "algorithms",
        "subject_claim",
        "conditions",
        "grants",
        "ttl_s",
        "limits",
        "ratelimits",
        "allowed_origins",
        "enabled",
    }
)


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, code=Code.INVALID_ISSUER)


def _strings(value: object, name: str, *, most: int, least: int = 1) -> list[str]:
    if (
        not isinstance(value, list)
        or not least <= len(value) <= most
        or not all(isinstance(v, str) and 1 <= len(v) <= 500 for v in value)
    ):
        raise _bad(f"{name} must be a list of {least} to {most} strings.")
    return list(dict.fromkeys(value))


class IssuerService:
    def __init__(
        self, db: SessionFactory, clock: Clock, bus: RevocationBus, *, allow_private: bool
    ) -> None:
        self._db, self._clock, self._bus = db, clock, bus
        self._allow_private = allow_private

    async def create(self, principal: Principal, body: Mapping[str, Any]) -> IssuerState:
        principal.require("ADMIN")
        values = await self._validate({"enabled": True, **body}, creating=True)
        now = self._clock.now()
        row = TrustedIssuer(
            id=new_id("tis", now.timestamp()),
            tenant_id=principal.tenant,
            created_at=now,
            updated_at=now,
            **values,
        )
        try:
            async with self._db.begin() as session:
                session.add(row)
                await session.flush()
                event = self._changed(session, principal, row, "trusted_issuer.create")
        except IntegrityError:
            raise Conflict("The tenant already trusts this issuer.", code=Code.CONFLICT) from None
        await self._bus.publish([event])
        return state_of(row)

    async def list(
        self, principal: Principal, *, limit: int | None, cursor: str | None
    ) -> tuple[list[IssuerState], str | None]:
        principal.require("ADMIN")
        stmt = select(TrustedIssuer).where(TrustedIssuer.tenant_id == principal.tenant)
        async with self._db() as session:
            rows, next_cursor = await paginate(
                session, stmt, TrustedIssuer.id, limit=limit, cursor=cursor
            )
        return [state_of(r) for r in rows], next_cursor

    async def get(self, principal: Principal, issuer_id: str) -> IssuerState:
        principal.require("ADMIN")
        async with self._db() as session:
            return state_of(await self._load(session, principal, issuer_id))

    async def update(
        self, principal: Principal, issuer_id: str, changes: Mapping[str, Any]
    ) -> IssuerState:
        principal.require("ADMIN")
        values = await self._validate(changes, creating=False)
        now = self._clock.now()
        async with self._db.begin() as session:
            row = await self._load(session, principal, issuer_id, lock=True)
            merged = {
                "jwks_uri": row.jwks_uri,
                "jwks": row.jwks,
                "algorithms": row.algorithms,
                **values,
            }
            if merged["jwks_uri"] is not None and merged["jwks"] is not None:
                raise _bad("Give jwks_uri or jwks, not both.")
            if merged["jwks"] is not None and ("jwks" in values or "algorithms" in values):
                self._inline_jwks(merged["jwks"], frozenset(merged["algorithms"]))
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = now
            event = self._changed(session, principal, row, "trusted_issuer.update", sorted(values))
        await self._bus.publish([event])
        return state_of(row)

    async def delete(self, principal: Principal, issuer_id: str) -> None:
        """Delete an issuer: every token minted through it is refused from now on."""
        principal.require("ADMIN")
        async with self._db.begin() as session:
            row = await self._load(session, principal, issuer_id, lock=True)
            event = self._changed(session, principal, row, "trusted_issuer.delete")
            await session.delete(row)
        await self._bus.publish([event])

    # --- helpers --------------------------------------------------------------------------

    def _changed(
        self,
        session: AsyncSession,
        principal: Principal,
        row: TrustedIssuer,
        action: str,
        fields: Sequence[str] = (),
    ) -> RevocationEvent:
        now = self._clock.now()
        event = RevocationEvent(row.tenant_id, "issuer", row.id, now)
        record_revocation(session, event, now=now)
        audit(
            session,
            now=now,
            actor=principal.actor,
            action=action,
            target_type="trusted_issuer",
            target_id=row.id,
            tenant_id=row.tenant_id,
            details={"issuer": row.issuer, **({"fields": list(fields)} if fields else {})},
        )
        return event

    @staticmethod
    async def _load(
        session: AsyncSession, principal: Principal, issuer_id: str, *, lock: bool = False
    ) -> TrustedIssuer:
        stmt = select(TrustedIssuer).where(
            TrustedIssuer.id == issuer_id, TrustedIssuer.tenant_id == principal.tenant
        )
        if lock:
            stmt = stmt.with_for_update()
        row = await session.scalar(stmt)
        if row is None:
            raise NotFound("No such trusted issuer.")
        return row

    async def _validate(self, body: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
        unknown = set(body) - FIELDS
        if unknown:
            raise _bad(f"Unknown field '{sorted(unknown)[0]}'.")
        if creating:
            for required in ("issuer", "audiences", "grants", "allowed_origins"):
                if required not in body:
                    raise _bad(f"{required} is required.")
        out: dict[str, Any] = {}
        if "issuer" in body:
            out["issuer"] = await self._url(body["issuer"], "issuer", jwks=False)
        if body.get("jwks_uri") is not None:
            out["jwks_uri"] = await self._url(body["jwks_uri"], "jwks_uri", jwks=True)
        elif "jwks_uri" in body:
            out["jwks_uri"] = None
        algorithms = parse_algorithms(body.get("algorithms"))
        if "algorithms" in body or creating:
            out["algorithms"] = sorted(algorithms)
        if body.get("jwks") is not None:
            out["jwks"] = self._inline_jwks(body["jwks"], algorithms)
        elif "jwks" in body:
            out["jwks"] = None
        if out.get("jwks_uri") is not None and out.get("jwks") is not None:
            raise _bad("Give jwks_uri or jwks, not both.")
        if "audiences" in body:
            out["audiences"] = _strings(body["audiences"], "audiences", most=MAX_AUDIENCES)
        if "subject_claim" in body or creating:
            out["subject_claim"] = parse_subject_claim(body.get("subject_claim")).text
        if "conditions" in body or creating:
            conditions = body.get("conditions") or {}
            parse_conditions(conditions)
            out["conditions"] = dict(conditions)
        if "grants" in body:
            out["grants"] = [t.to_json() for t in parse_grant_templates(body["grants"])]
        if "ttl_s" in body:
            out["ttl_s"] = self._ttl(body["ttl_s"])
        if "limits" in body:
            out["limits"] = self._limits(body["limits"])
        if "ratelimits" in body or creating:
            out["ratelimits"] = [r.to_json() for r in parse_ratelimits(body.get("ratelimits", []))]
        if "allowed_origins" in body:
            origins = _strings(
                body["allowed_origins"], "allowed_origins", most=MAX_ORIGINS, least=0
            )
            bad = [o for o in origins if not _ORIGIN.match(o)]
            if bad:
                raise _bad("allowed_origins are scheme://host[:port] origins (never '*').")
            out["allowed_origins"] = origins
        if "enabled" in body:
            if not isinstance(body["enabled"], bool):
                raise _bad("enabled must be a boolean.")
            out["enabled"] = body["enabled"]
        return out

    async def _url(self, value: object, name: str, *, jwks: bool) -> str:
        if not isinstance(value, str) or not 1 <= len(value) <= 500:
            raise _bad(f"{name} must be a URL of at most 500 characters.")
        check = check_jwks_url if jwks else check_issuer_url
        refused: FetchError | None = await check(value, allow_private=self._allow_private)
        if refused is not None:
            raise _bad(f"{name} is not allowed ({refused.reason}): {refused.message}")
        return value

    @staticmethod
    def _inline_jwks(value: object, algorithms: frozenset[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _bad("jwks must be a JWK Set object.")
        try:
            keys = parse_jwks(value, algorithms=algorithms)
        except InvalidJwks as exc:
            raise _bad(f"jwks is not usable: {exc}") from None
        if not keys.keys:
            raise _bad("jwks holds no usable signing key.")
        return value

    @staticmethod
    def _ttl(value: object) -> int | None:
        if value is None:
            return None
        if type(value) is not int or not 1 <= value <= MAX_TTL_S:
            raise InvalidRequest(
                f"ttl_s must be an integer from 1 to {MAX_TTL_S}.", code=Code.INVALID_TTL
            )
        return value

    @staticmethod
    def _limits(value: object) -> dict[str, int] | None:
        if value is None:
            return None
        rps = value.get("rps") if isinstance(value, dict) and set(value) <= {"rps"} else None
        if type(rps) is not int or not 1 <= rps <= MAX_RPS:
            raise InvalidRequest(
                f"limits is {{rps}} with rps from 1 to {MAX_RPS}.", code=Code.INVALID_LIMITS
            )
        return {"rps": rps}
