"""Tenant routes for JWTs: ``POST /v1/tokens`` and ``POST /v1/tokens/revoke``."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import Response

from authsvc.tokens.schemas import TokenCreate, TokenCreated, TokenRevoke, TokenRevoked
from authsvc.tokens.service import TokenService
from authsvc.web.deps import Caller
from authsvc.web.schemas import grants_in

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

Tokens = NamedDependency[TokenService]


class TokenController(Controller):
    path = "/v1/tokens"
    tags = ["tokens"]

    @post("/", status_code=201)
    async def create_token(
        self, request: Request[Any, Any, Any], data: JSONBody[TokenCreate], caller: Caller
    ) -> Response[TokenCreated]:
        # a hot route: one injected dependency (two or more are resolved in an anyio task group,
        # ~60-130 µs a request), the service from the application state like /v1/verify's
        tokens: TokenService = request.app.state.tokens
        minted = await tokens.create(
            caller,
            scopes=grants_in(data.scopes),
            ttl_s=data.ttl_s,
            sub=data.sub,
            aud=data.aud,
            name=data.name,
            limits=None if data.limits is None else {"rps": data.limits.rps},
            ratelimits=data.ratelimits,
        )
        body = TokenCreated(
            token=minted.token,
            token_type="Bearer",  # noqa: S106 (RFC 6750 token type)
            expires_in=minted.expires_in,
            expires_at=minted.expires_at,
            jti=minted.jti,
        )
        return Response(body, status_code=201, headers=NO_STORE)

    @post("/revoke", status_code=200)
    async def revoke_tokens(
        self, data: JSONBody[TokenRevoke], tokens: Tokens, caller: Caller
    ) -> TokenRevoked:
        revoked = await tokens.revoke(caller, jti=data.jti, sub=data.sub, key_id=data.key_id)
        return TokenRevoked(revoked.field, revoked.value, revoked.cutoff, revoked.expires_at)
