"""Bearer credentials → :class:`~authsvc.principal.Principal` for the management API.

Management routes take API keys (tenant routes) or operator keys (tenant administration); JWTs
carry data scopes only and are never accepted here. A malformed key (bad prefix, length or
checksum) is refused before any lookup.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from authsvc.errors import Forbidden, Unauthenticated
from authsvc.keys import secret as keysecret
from authsvc.keys.service import KeyRecord, key_status
from authsvc.principal import Principal
from authsvc.services import Services
from authsvc.web.deps import ServicesDep
from authsvc.web.ratelimit import guard_caller


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def principal_for(services: Services, token: str | None) -> Principal:
    """Any management principal: an operator key or a tenant API key."""
    return (await authenticate(services, token))[0]


async def authenticate(services: Services, token: str | None) -> tuple[Principal, KeyRecord | None]:
    """The principal and, for an API key, its (cached) record."""
    if token is None:
        raise Unauthenticated("Missing bearer credential.")
    found, cached = services.key_cache.hit(token)  # a cached key needs no format check
    kind = "api" if found else keysecret.kind_of(token)
    if kind == "operator":
        op_id = await services.operators.authenticate(token)
        if op_id is None:
            raise Unauthenticated("Unknown or revoked operator key.")
        return Principal(kind="operator", id=op_id), None
    if kind == "api":
        # The same cached path as /v1/verify: warm, no database; revocations drop the entry.
        record = cached if found else await services.key_cache.record(token)
        if record is None:
            raise Unauthenticated("Unknown API key.")
        status = key_status(record, services.clock.now())
        if status != "VALID":
            raise Unauthenticated(f"The API key is {status.lower()}.")
        principal = Principal(
            kind="key",
            id=record.id,
            tenant_id=record.tenant_id,
            tenant_slug=record.tenant_slug,
            grants=record.grants,
            expires_at=record.expires_at,
        )
        return principal, record
    raise Unauthenticated("The credential is not a well-formed API key.")


async def provide_principal(request: Request[Any, Any, Any], services: ServicesDep) -> Principal:
    principal, record = await authenticate(services, bearer_token(request))
    if principal.kind != "key" or record is None:
        raise Forbidden("This endpoint needs an API key of a tenant.")
    await guard_caller(request, services, record)
    services.usage.touch(record.id)
    return principal


async def provide_operator(request: Request[Any, Any, Any], services: ServicesDep) -> Principal:
    principal = await principal_for(services, bearer_token(request))
    if principal.kind != "operator":
        raise Forbidden("This endpoint needs an operator key.")
    return principal


def provide_services(request: Request[Any, Any, Any]) -> Services:
    services: ServicesDep = request.app.state.services
    return services
