"""Admin routes for a tenant's signing keys: list and rotate (``ADMIN``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.di import Provide

from authsvc.db.models import SigningKey
from authsvc.signing.service import public_members
from authsvc.web.auth import provide_principal
from authsvc.web.deps import PrincipalDep, ServicesDep


class SigningKeyOut(msgspec.Struct):
    kid: str
    alg: str
    state: str
    public_jwk: dict[str, Any]
    master_key_version: str
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None
    remove_after: datetime | None


class SigningKeyPage(msgspec.Struct):
    data: list[SigningKeyOut]
    next_cursor: str | None


_ORDER = {"active": 0, "next": 1, "retired": 2}


def page(rows: Sequence[SigningKey]) -> SigningKeyPage:
    """Active first, then next, then retired keys, the most recently retired first."""
    rows = sorted(
        rows, key=lambda r: (_ORDER.get(r.state, 3), -(r.retired_at or r.created_at).timestamp())
    )
    return SigningKeyPage(
        [
            SigningKeyOut(
                kid=r.kid,
                alg=r.alg,
                state=r.state,
                public_jwk=public_members(r.public_jwk),
                master_key_version=r.master_key_version,
                created_at=r.created_at,
                activated_at=r.activated_at,
                retired_at=r.retired_at,
                remove_after=r.remove_after,
            )
            for r in rows
        ],
        None,  # a tenant has a handful of keys: one page
    )


class SigningKeyController(Controller):
    path = "/v1/signing-keys"
    tags = ["signing keys"]
    dependencies = {"principal": Provide(provide_principal)}

    @get("/")
    async def list_signing_keys(
        self, services: ServicesDep, principal: PrincipalDep
    ) -> SigningKeyPage:
        principal.require("ADMIN")
        return page(await services.signing.list_keys(principal.tenant))

    @post("/rotate", status_code=200)
    async def rotate_signing_keys(
        self, services: ServicesDep, principal: PrincipalDep
    ) -> SigningKeyPage:
        principal.require("ADMIN")
        await services.signing.rotate(principal.tenant, actor=principal.actor)
        return page(await services.signing.list_keys(principal.tenant))
