"""Litestar dependencies that authenticate the caller of a route.

* ``caller``: an API key of a tenant (management routes), through the one check pipeline
  (:meth:`~authsvc.verify.service.VerifyService.authenticate`): the key and every key it derives
  from must be valid, the call is charged one unit of their limits (429 with ``Retry-After``
  when refused) and recorded for ``last_used_at``; the admitted decision's rate-limit headers go
  on the response. JWTs carry data scopes only and are never accepted here.
* ``operator``: an operator key (tenant administration).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from authsvc.errors import Forbidden, Unauthenticated
from authsvc.keys import secret as keysecret
from authsvc.operators import OperatorService
from authsvc.principal import Principal
from authsvc.ratelimit.headers import rate_limit_headers
from authsvc.verify.service import VerifyService
from authsvc.web.auth import bearer_token
from authsvc.web.headers import expose


async def authenticate_caller(
    request: Request[Any, Any, Any], verify: VerifyService, *, expose_limits: bool = True
) -> Principal:
    token = bearer_token(request)
    if token is not None and keysecret.kind_of(token) == "operator":
        raise Forbidden("This endpoint needs an API key of a tenant.")
    principal, decision = await verify.authenticate(token)
    if expose_limits:
        expose(request, rate_limit_headers(decision))
    return principal


async def provide_caller(
    request: Request[Any, Any, Any], verify: NamedDependency[VerifyService]
) -> Principal:
    return await authenticate_caller(request, verify)


async def provide_operator(
    request: Request[Any, Any, Any], operators: NamedDependency[OperatorService]
) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise Unauthenticated("Missing bearer credential.")
    kind = keysecret.kind_of(token)
    if kind is None:
        raise Unauthenticated("The credential is not a well-formed key.")
    if kind != "operator":
        raise Forbidden("This endpoint needs an operator key.")
    operator_id = await operators.authenticate(token)
    if operator_id is None:
        raise Unauthenticated("Unknown or revoked operator key.")
    return Principal(kind="operator", id=operator_id)
