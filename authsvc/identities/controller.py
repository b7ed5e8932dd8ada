"""Tenant routes for identities (shared rate limits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, get, put
from litestar.di import Provide
from litestar.params import FromPath, JSONBody

from authsvc.db.models import Identity
from authsvc.web.auth import provide_principal
from authsvc.web.deps import PrincipalDep, ServicesDep
from authsvc.web.schemas import RateLimitIn, RateLimitOut, ratelimits_out


class IdentityPut(msgspec.Struct, forbid_unknown_fields=True):
    ratelimits: list[RateLimitIn] = []
    metadata: dict[str, Any] = {}


class IdentityOut(msgspec.Struct):
    external_id: str
    ratelimits: list[RateLimitOut]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def identity_out(row: Identity) -> IdentityOut:
    return IdentityOut(
        row.external_id, ratelimits_out(row.ratelimits), row.meta, row.created_at, row.updated_at
    )


class IdentityController(Controller):
    path = "/v1/identities"
    tags = ["identities"]
    dependencies = {"principal": Provide(provide_principal)}

    @put("/{external_id:str}")
    async def put_identity(
        self,
        external_id: FromPath[str],
        data: JSONBody[IdentityPut],
        services: ServicesDep,
        principal: PrincipalDep,
    ) -> IdentityOut:
        row = await services.identities.put(
            principal, external_id, ratelimits=data.ratelimits, metadata=data.metadata
        )
        return identity_out(row)

    @get("/{external_id:str}")
    async def get_identity(
        self, external_id: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> IdentityOut:
        return identity_out(await services.identities.get(principal, external_id))
