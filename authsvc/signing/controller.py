"""Admin routes for a tenant's signing keys: list and rotate (``ADMIN``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency

from authsvc.signing.service import SigningKeyInfo, SigningKeyService
from authsvc.web.deps import Caller
from authsvc.web.schemas import struct_from

Signing = NamedDependency[SigningKeyService]


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


def page(keys: Sequence[SigningKeyInfo]) -> SigningKeyPage:
    """Active first, then next, then retired keys, the most recently retired first."""
    ordered = sorted(
        keys, key=lambda k: (_ORDER.get(k.state, 3), -(k.retired_at or k.created_at).timestamp())
    )
    return SigningKeyPage(
        [struct_from(SigningKeyOut, k, public_jwk=dict(k.public_jwk)) for k in ordered],
        None,  # a tenant has a handful of keys: one page
    )


class SigningKeyController(Controller):
    path = "/v1/signing-keys"
    tags = ["signing keys"]

    @get("/")
    async def list_signing_keys(self, signing: Signing, caller: Caller) -> SigningKeyPage:
        caller.require("ADMIN")
        return page(await signing.list_keys(caller.tenant))

    @post("/rotate", status_code=200)
    async def rotate_signing_keys(self, signing: Signing, caller: Caller) -> SigningKeyPage:
        caller.require("ADMIN")
        await signing.rotate(caller.tenant, actor=caller.actor)
        return page(await signing.list_keys(caller.tenant))
