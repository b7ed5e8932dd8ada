"""Admin routes for trusted issuers: ``/v1/trusted-issuers`` (``ADMIN``; DESIGN §9)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authsvc.issuers.service import IssuerService
from authsvc.issuers.state import IssuerState
from authsvc.web.deps import Caller
from authsvc.web.schemas import RateLimitIn, RateLimitOut, ratelimits_out

Issuers = NamedDependency[IssuerService]


class LimitsIn(msgspec.Struct, forbid_unknown_fields=True):
    rps: int


class IssuerIn(msgspec.Struct, forbid_unknown_fields=True):
    issuer: str
    audiences: list[str]
    grants: list[str | dict[str, Any]]
    allowed_origins: list[str]
    jwks_uri: str | None = None
    jwks: dict[str, Any] | None = None
    algorithms: list[str] | None = None
    subject_claim: str = "sub"
    conditions: dict[str, Any] = {}
    ttl_s: int | None = None
    limits: LimitsIn | None = None
    ratelimits: list[RateLimitIn] = []
    enabled: bool = True


class IssuerPatch(msgspec.Struct, forbid_unknown_fields=True):
    issuer: str | msgspec.UnsetType = msgspec.UNSET
    audiences: list[str] | msgspec.UnsetType = msgspec.UNSET
    grants: list[str | dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET
    allowed_origins: list[str] | msgspec.UnsetType = msgspec.UNSET
    jwks_uri: str | msgspec.UnsetType | None = msgspec.UNSET
    jwks: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    algorithms: list[str] | msgspec.UnsetType = msgspec.UNSET
    subject_claim: str | msgspec.UnsetType = msgspec.UNSET
    conditions: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    ttl_s: int | msgspec.UnsetType | None = msgspec.UNSET
    limits: LimitsIn | msgspec.UnsetType | None = msgspec.UNSET
    ratelimits: list[RateLimitIn] | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


class IssuerOut(msgspec.Struct):
    id: str
    issuer: str
    jwks_uri: str | None
    jwks: dict[str, Any] | None
    audiences: list[str]
    algorithms: list[str]
    subject_claim: str
    conditions: dict[str, Any]
    grants: list[dict[str, Any]]
    ttl_s: int | None
    limits: dict[str, int] | None
    ratelimits: list[RateLimitOut]
    allowed_origins: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class IssuerPage(msgspec.Struct):
    data: list[IssuerOut]
    next_cursor: str | None


def issuer_out(s: IssuerState) -> IssuerOut:
    return IssuerOut(
        id=s.id,
        issuer=s.issuer,
        jwks_uri=s.jwks_uri,
        jwks=None if s.jwks is None else dict(s.jwks),
        audiences=list(s.audiences),
        algorithms=sorted(s.algorithms),
        subject_claim=s.subject_claim.text,
        conditions=dict(s.conditions_json),
        grants=[t.to_json() for t in s.grants],
        ttl_s=s.ttl_s,
        limits=None if s.rps is None else {"rps": s.rps},
        ratelimits=ratelimits_out(s.ratelimits),
        allowed_origins=list(s.allowed_origins),
        enabled=s.enabled,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


def _plain(struct: msgspec.Struct) -> dict[str, Any]:
    """A body as the service validates it: plain values, unsent fields left out."""
    built = msgspec.to_builtins(struct)
    return {k: v for k, v in built.items() if k in struct.__struct_fields__}


class IssuerController(Controller):
    path = "/v1/trusted-issuers"
    tags = ["trusted issuers"]

    @post("/")
    async def create_issuer(
        self, data: JSONBody[IssuerIn], issuers: Issuers, caller: Caller
    ) -> IssuerOut:
        return issuer_out(await issuers.create(caller, _plain(data)))

    @get("/")
    async def list_issuers(
        self,
        issuers: Issuers,
        caller: Caller,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> IssuerPage:
        states, next_cursor = await issuers.list(caller, limit=limit, cursor=cursor)
        return IssuerPage([issuer_out(s) for s in states], next_cursor)

    @get("/{issuer_id:str}")
    async def get_issuer(
        self, issuer_id: FromPath[str], issuers: Issuers, caller: Caller
    ) -> IssuerOut:
        return issuer_out(await issuers.get(caller, issuer_id))

    @patch("/{issuer_id:str}")
    async def update_issuer(
        self,
        issuer_id: FromPath[str],
        data: JSONBody[IssuerPatch],
        issuers: Issuers,
        caller: Caller,
    ) -> IssuerOut:
        return issuer_out(await issuers.update(caller, issuer_id, _plain(data)))

    @delete("/{issuer_id:str}", status_code=204)
    async def delete_issuer(
        self, issuer_id: FromPath[str], issuers: Issuers, caller: Caller
    ) -> None:
        await issuers.delete(caller, issuer_id)
