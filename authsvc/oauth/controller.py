"""Public per-tenant OAuth 2.0 routes under ``/t/<slug>/oauth2/`` (form-encoded bodies).

Thin: form parsing, then :class:`~authsvc.oauth.service.OAuthService` (the tenant by slug
too). Each handler takes exactly one injected dependency: Litestar resolves two or more
in an anyio task group, ~60-130 µs a request on this machine. Every
response carries ``Cache-Control: no-store`` (RFC 6749 §5.1; errors too, via the OAuth error
handler). An unknown or disabled tenant is a 404 with an RFC 6749 body.

CORS (DESIGN §9) on the token endpoint only, for browsers exchanging an identity provider's
token: a preflight is answered for the union of the tenant's enabled trusted issuers'
``allowed_origins``, and a response (success or error) echoes the request's ``Origin`` only
when it is one of them: never ``*``, never credentials. Which issuer's origins apply to an
exchange is then checked by the exchange itself.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, HttpMethod, Request, post, route
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Response

from authsvc.oauth.form import parse_form
from authsvc.oauth.service import OAuthService
from authsvc.web.headers import expose

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

OAuth = NamedDependency[OAuthService]
CORS_MAX_AGE_S = 600
EXPOSED = "RateLimit, RateLimit-Policy, X-RateLimit-Limit, X-RateLimit-Remaining, Retry-After"


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
        oauth: OAuth,
    ) -> Response[dict[str, Any]]:
        tenant = await oauth.tenant(slug)
        origin = await oauth.allowed_origin(tenant, request.headers.get("origin"))
        if origin is not None:  # on errors too: the browser must read an RFC 6749 body
            expose(request, {"Access-Control-Allow-Origin": origin, "Vary": "Origin"})
            expose(request, {"Access-Control-Expose-Headers": EXPOSED})
        form = await _form(request)
        body = await oauth.token(
            tenant,
            request.headers.get("authorization"),
            form,
            origin=request.headers.get("origin"),
            address=request.client.host if request.client else "",
        )
        return Response(body, status_code=200, headers=NO_STORE)

    @route("/token", http_method=[HttpMethod.OPTIONS], status_code=204, include_in_schema=False)
    async def preflight(
        self,
        slug: FromPath[str],
        request: Request[Any, Any, Any],
        oauth: OAuth,
    ) -> Response[None]:
        """CORS preflight (Fetch standard, "CORS-preflight request"): allowed origins only."""
        headers = {"Vary": "Origin"}
        tenant = await oauth.find_tenant(slug)
        if tenant is not None:
            origin = await oauth.allowed_origin(tenant, request.headers.get("origin"))
            if origin is not None:
                headers |= {
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "POST",
                    "Access-Control-Allow-Headers": "Content-Type",
                    "Access-Control-Max-Age": str(CORS_MAX_AGE_S),
                }
        return Response(None, status_code=204, headers=headers)

    @post("/introspect", status_code=200)
    async def introspect(
        self,
        slug: FromPath[str],
        request: Request[Any, Any, Any],
        oauth: OAuth,
    ) -> Response[dict[str, Any]]:
        tenant = await oauth.tenant(slug)
        form = await _form(request)
        body = await oauth.introspect(tenant, request.headers.get("authorization"), form)
        return Response(body, status_code=200, headers=NO_STORE)

    @post("/revoke", status_code=200)
    async def revoke(
        self,
        slug: FromPath[str],
        request: Request[Any, Any, Any],
        oauth: OAuth,
    ) -> Response[None]:
        tenant = await oauth.tenant(slug)
        form = await _form(request)
        await oauth.revoke(tenant, request.headers.get("authorization"), form)
        return Response(None, status_code=200, headers=NO_STORE)
