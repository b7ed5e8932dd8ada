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
from authsvc.keys.service import key_status
from authsvc.principal import Principal
from authsvc.services import Services
from authsvc.web.deps import ServicesDep


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
    if token is None:
        raise Unauthenticated("Missing bearer credential.")
    kind = keysecret.kind_of(token)
    if kind == "operator":
        op_id = await services.operators.authenticate(token)
        if op_id is None:
            raise Unauthenticated("Unknown or revoked operator key.")
        return Principal(kind="operator", id=op_id)
    if kind == "api":
        record = await services.keys.lookup(token)
        if record is None:
            raise Unauthenticated("Unknown API key.")
        status = key_status(record, services.clock.now())
        if status != "VALID":
            raise Unauthenticated(f"The API key is {status.lower()}.")
        return Principal(
            kind="key",
            id=record.id,
            tenant_id=record.tenant_id,
            tenant_slug=record.tenant_slug,
            grants=record.grants,
        )
    raise Unauthenticated("The credential is not a well-formed API key.")


async def provide_principal(request: Request[Any, Any, Any], services: ServicesDep) -> Principal:
    principal = await principal_for(services, bearer_token(request))
    if principal.kind != "key":
        raise Forbidden("This endpoint needs an API key of a tenant.")
    return principal


async def provide_operator(request: Request[Any, Any, Any], services: ServicesDep) -> Principal:
    principal = await principal_for(services, bearer_token(request))
    if principal.kind != "operator":
        raise Forbidden("This endpoint needs an operator key.")
    return principal


def provide_services(request: Request[Any, Any, Any]) -> Services:
    services: ServicesDep = request.app.state.services
    return services
