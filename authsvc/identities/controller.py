"""Tenant routes for identities (shared rate limits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from authsvc.identities.service import IdentityInfo, IdentityService
from authsvc.web.deps import Caller
from authsvc.web.schemas import RateLimitIn, RateLimitOut, ratelimits_out

Identities = NamedDependency[IdentityService]


class IdentityPut(msgspec.Struct, forbid_unknown_fields=True):
    ratelimits: list[RateLimitIn] = []
    metadata: dict[str, Any] = {}


class IdentityOut(msgspec.Struct):
    external_id: str
    ratelimits: list[RateLimitOut]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def identity_out(info: IdentityInfo) -> IdentityOut:
    return IdentityOut(
        info.external_id,
        ratelimits_out(info.ratelimits),
        info.metadata,
        info.created_at,
        info.updated_at,
    )


class IdentityController(Controller):
    path = "/v1/identities"
    tags = ["identities"]

    @put("/{external_id:str}")
    async def put_identity(
        self,
        external_id: FromPath[str],
        data: JSONBody[IdentityPut],
        identities: Identities,
        caller: Caller,
    ) -> IdentityOut:
        info = await identities.put(
            caller, external_id, ratelimits=data.ratelimits, metadata=data.metadata
        )
        return identity_out(info)

    @get("/{external_id:str}")
    async def get_identity(
        self, external_id: FromPath[str], identities: Identities, caller: Caller
    ) -> IdentityOut:
        return identity_out(await identities.get(caller, external_id))
