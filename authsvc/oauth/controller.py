"""Public per-tenant OAuth 2.0 routes under ``/t/<slug>/oauth2/`` (form-encoded bodies).

Thin: tenant by slug, form parsing, then :class:`~authsvc.oauth.service.OAuthService`. Every
response carries ``Cache-Control: no-store`` (RFC 6749 §5.1; errors too, via the OAuth error
handler). An unknown or disabled tenant is a 404 with an RFC 6749 body.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Response

from authsvc.errors import OAuthError
from authsvc.oauth.form import parse_form
from authsvc.oauth.service import OAuthService
from authsvc.tenants.policy import TenantCache, TenantPolicy

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

OAuth = NamedDependency[OAuthService]
TenantCacheDep = NamedDependency[TenantCache]


async def enabled_tenant(tenants: TenantCache, slug: str) -> TenantPolicy:
    tenant = await tenants.by_slug(slug)
    if tenant is None or not tenant.enabled:
        raise OAuthError("invalid_request", "No such tenant.", not_found=True)
    return tenant


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    return parse_form(request.content_type[0], await request.body())


class OAuthController(Controller):
    path = "/t/{slug:str}/oauth2"
    tags = ["oauth2 (public)"]
    security = [{}]

    @post("/token", status_code=200)
    async def token(
        self,
        slug: FromPath[str],
        request: Request[Any, Any, Any],
        tenant_cache: TenantCacheDep,
        oauth: OAuth,
    ) -> Response[dict[str, Any]]:
        tenant = await enabled_tenant(tenant_cache, slug)
        form = await _form(request)
        body = await oauth.token(tenant, request.headers.get("authorization"), form)
        return Response(body, status_code=200, headers=NO_STORE)

    @post("/introspect", status_code=200)
    async def introspect(
        self,
        slug: FromPath[str],
        request: Request[Any, Any, Any],
        tenant_cache: TenantCacheDep,
        oauth: OAuth,
    ) -> Response[dict[str, Any]]:
        tenant = await enabled_tenant(tenant_cache, slug)
        form = await _form(request)
        body = await oauth.introspect(tenant, request.headers.get("authorization"), form)
        return Response(body, status_code=200, headers=NO_STORE)

    @post("/revoke", status_code=200)
    async def revoke(
        self,
        slug: FromPath[str],
        request: Request[Any, Any, Any],
        tenant_cache: TenantCacheDep,
        oauth: OAuth,
    ) -> Response[None]:
        tenant = await enabled_tenant(tenant_cache, slug)
        form = await _form(request)
        await oauth.revoke(tenant, request.headers.get("authorization"), form)
        return Response(None, status_code=200, headers=NO_STORE)
