"""``POST /v1/verify``: any well-formed request gets 200 and a verdict.

The caller authenticates with its own API key (``TOKENS:VERIFY``) and is charged like every
caller; the credential under test must belong to the caller's tenant (otherwise
``NOT_FOUND``). Bad input (wrong types, negative cost, both ``scope`` and ``scopes``, an
unparsable scope, a member named twice) is a 400.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, cast

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody

from authsvc.errors import Forbidden, InvalidRequest
from authsvc.scopes import MAX_GRANTS, Scope, find_grant, parse_scope
from authsvc.verify.guard import authenticate_caller
from authsvc.verify.service import VerifyService
from authsvc.web.json_guard import decode_strict
from authsvc.web.openapi import schema_of
from authsvc.web.schemas import GrantOut

MAX_COST = 1_000_000_000


class VerifyIn(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(description="An API key or a JWT.")]
    scope: Annotated[str, msgspec.Meta(description="A required scope.")] | None = None
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


_encode = msgspec.json.Encoder().encode
#: Scopes are immutable values: parse each distinct string once (bounded; errors not cached).
scope_of = functools.lru_cache(maxsize=4096)(parse_scope)
VERIFY_SCOPE = parse_scope("TOKENS:VERIFY")


def parse_request(body: bytes) -> VerifyIn:
    """Strict decoding in one pass: ``"1"`` is not a cost, ``1.0`` is not an integer, and a
    member named twice is refused."""
    return cast(VerifyIn, decode_strict(body, VerifyIn))


def required_scopes(data: VerifyIn) -> list[Scope]:
    if data.scope is not None and data.scopes is not None:
        raise InvalidRequest("Give either scope or scopes, not both.")
    if data.scope is not None:
        return [scope_of(data.scope)]
    return [scope_of(s) for s in data.scopes or ()]


@dataclass
class VerifyOperation(Operation):
    """Documents the body the handler decodes itself, derived from :class:`VerifyIn`."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=schema_of(VerifyIn))},
            required=True,
        )


@post(
    "/v1/verify",
    operation_class=VerifyOperation,
    status_code=200,
    tags=["verification"],
    summary="Check an API key or a JWT; always a verdict",
    responses={
        200: ResponseSpec(
            data_container=VerdictOut, description="The verdict", generate_examples=False
        )
    },
)
async def verify(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The hot path, so no dependency injection or response model: the caller is authenticated
    and charged exactly as by :func:`~authsvc.verify.guard.provide_caller`, the body is decoded
    strictly in one pass, and the verdict is encoded once."""
    service: VerifyService = request.app.state.verify
    principal = await authenticate_caller(request, service)
    if find_grant(principal.grants, VERIFY_SCOPE) is None:
        raise Forbidden("This operation requires the TOKENS:VERIFY scope.")
    data = parse_request(await request.body())
    verdict = await service.check(
        data.token,
        tenant_id=principal.tenant,
        required=required_scopes(data),
        cost=data.cost,
        audience=data.audience,
    )
    return Response(_encode(verdict.to_json()), media_type=MediaType.JSON)
