"""Public per-tenant OAuth 2.0 routes under ``/t/<slug>/oauth2/`` (form-encoded bodies).

Thin: tenant by slug, form parsing, then :class:`~authsvc.oauth.service.OAuthService`. Every
response carries ``Cache-Control: no-store`` (RFC 6749 §5.1; errors too, via the OAuth error
handler). An unknown or disabled tenant is a 404 with an RFC 6749 body.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.params import FromPath
from litestar.response import Response

from authsvc.errors import OAuthError
from authsvc.oauth.form import parse_form
from authsvc.services import Services
from authsvc.tokens.policy import TenantPolicy
from authsvc.web.deps import ServicesDep

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def tenant_policy(services: Services, slug: str) -> TenantPolicy:
    policy = await services.policies.by_slug(slug)
    if policy is None or not policy.enabled:
        raise OAuthError("invalid_request", "No such tenant.", status=404)
    return policy


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    return parse_form(request.content_type[0], await request.body())


class OAuthController(Controller):
    path = "/t/{slug:str}/oauth2"
    tags = ["oauth2 (public)"]
    security = [{}]

    @post("/token", status_code=200)
    async def token(
        self, slug: FromPath[str], request: Request[Any, Any, Any], services: ServicesDep
    ) -> Response[dict[str, Any]]:
        policy = await tenant_policy(services, slug)
        form = await _form(request)
        body = await services.oauth.token(policy, request.headers.get("authorization"), form)
        return Response(body, status_code=200, headers=NO_STORE)

    @post("/introspect", status_code=200)
    async def introspect(
        self, slug: FromPath[str], request: Request[Any, Any, Any], services: ServicesDep
    ) -> Response[dict[str, Any]]:
        policy = await tenant_policy(services, slug)
        form = await _form(request)
        body = await services.oauth.introspect(policy, request.headers.get("authorization"), form)
        return Response(body, status_code=200, headers=NO_STORE)

    @post("/revoke", status_code=200)
    async def revoke(
        self, slug: FromPath[str], request: Request[Any, Any, Any], services: ServicesDep
    ) -> Response[None]:
        policy = await tenant_policy(services, slug)
        form = await _form(request)
        await services.oauth.revoke(policy, request.headers.get("authorization"), form)
        return Response(None, status_code=200, headers=NO_STORE)
