"""``POST /v1/verify``: any well-formed request gets 200 and a verdict.

The caller authenticates with its own API key (``TOKENS:VERIFY``), which is rate limited like
every management call; the credential under test must belong to the caller's tenant
(otherwise ``NOT_FOUND``). Bad input (wrong types, negative cost, both ``scope`` and
``scopes``, an unparsable scope) is a 400.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, post
from litestar.di import Provide
from litestar.params import JSONBody

from authsvc.errors import Forbidden, InvalidRequest
from authsvc.scopes import MAX_GRANTS, Scope, find_grant, parse_scope
from authsvc.web.auth import provide_principal
from authsvc.web.deps import PrincipalDep, ServicesDep
from authsvc.web.schemas import GrantOut

MAX_COST = 1_000_000_000


class VerifyIn(msgspec.Struct, forbid_unknown_fields=True):
    token: str
    scope: str | None = None
    scopes: Annotated[list[str], msgspec.Meta(max_length=MAX_GRANTS)] | None = None
    cost: Annotated[int, msgspec.Meta(ge=0, le=MAX_COST)] = 1
    audience: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None


class LimitOut(msgspec.Struct):
    name: str
    limit: int
    remaining: int
    reset_s: float


class VerdictOut(msgspec.Struct):
    """The verdict (documentation shape; ``reason`` is a human sentence, never a secret)."""

    valid: bool
    code: str
    tenant: str | None
    tenant_id: str | None
    key_id: str | None
    sub: str | None
    scopes: list[GrantOut]
    fixed_params: dict[str, Any]
    expires_at: datetime | None
    ratelimits: list[LimitOut]
    reason: str | None


def parse_request(data: object) -> VerifyIn:
    """Strict decoding: ``"1"`` is not a cost and ``1.0`` is not an integer."""
    try:
        return msgspec.convert(data, VerifyIn, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"Invalid verify request: {exc}") from None


#: Scopes are immutable values: parse each distinct string once (bounded; errors not cached).
scope_of = functools.lru_cache(maxsize=4096)(parse_scope)
VERIFY_SCOPE = parse_scope("TOKENS:VERIFY")


def required_scopes(data: VerifyIn) -> list[Scope]:
    if data.scope is not None and data.scopes is not None:
        raise InvalidRequest("Give either scope or scopes, not both.")
    if data.scope is not None:
        return [scope_of(data.scope)]
    return [scope_of(s) for s in data.scopes or ()]


class VerifyController(Controller):
    path = "/v1/verify"
    tags = ["verification"]
    dependencies = {"principal": Provide(provide_principal)}

    @post("/", status_code=200)
    async def verify(
        self, data: JSONBody[dict[str, Any]], services: ServicesDep, principal: PrincipalDep
    ) -> VerdictOut:
        if find_grant(principal.grants, VERIFY_SCOPE) is None:
            raise Forbidden("This operation requires the TOKENS:VERIFY scope.")
        body = parse_request(data)
        verdict = await services.verifier.verify(
            body.token,
            tenant_id=principal.tenant,
            required=required_scopes(body),
            cost=body.cost,
            audience=body.audience,
        )
        return VerdictOut(**verdict.to_json())
