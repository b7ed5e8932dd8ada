"""``/v1/authz``: forward authentication for nginx ``auth_request``, Traefik ``forwardAuth`` and
Envoy ``ext_authz`` (HTTP mode).

Inputs, all from the gateway's sub-request:

* ``X-Authsvc-Key``: the gateway's own API key (``TOKENS:VERIFY``); its tenant is the tenant
  every token is checked against. It is authenticated and charged like any caller.
* the required scope: ``X-Authsvc-Scope`` if the gateway sets it, else derived from the
  original URI **as sent** (``X-Original-URI``, ``X-Forwarded-Uri``, or the raw path after
  ``/v1/authz`` for Envoy's ``path_prefix``): ``/v0/pipes/<name>.<format>`` →
  ``PIPES:READ:<name>`` (:mod:`authsvc.verify.uri`: decoded once, encoded separators and
  dot-segments refused). No scope at all is a 403: a gateway never lets a request through
  unchecked by accident.
* the credential: the original ``Authorization: Bearer`` header or, when the tenant sets
  ``allow_query_token``, the ``token`` query parameter of the original URI, JWTs only (a
  long-lived API key never travels in a URL, where logs and referrers keep it).
* ``X-Authsvc-Cost`` (optional, default 1) and ``X-Authsvc-Limit-Status`` (optional).

Outputs: 200 with ``X-Authsvc-Tenant`` (slug), ``X-Authsvc-Tenant-Id``, ``X-Authsvc-Sub``
(the JWT subject, or the key's identity, else its id), ``X-Authsvc-Key-Id``,
``X-Authsvc-Fixed-Params`` (compact JSON, ASCII) and the rate-limit headers. A refusal is a
:class:`~authsvc.errors.GatewayDenial` carrying the verdict code, which the web layer answers
(:mod:`authsvc.web.exceptions`): 401 with ``WWW-Authenticate: Bearer error="invalid_token"``
for a missing, unknown, malformed, expired, revoked or disabled credential; 403
(``insufficient_scope``) for a missing scope; rate limited: 403 with ``X-Authsvc-Code:
RATE_LIMITED``, ``Retry-After`` and the rate-limit headers, because nginx's ``auth_request``
only relays 401 and 403 (the shipped nginx config turns it into a 429); gateways that relay the
auth response as is (Traefik, Envoy) send ``X-Authsvc-Limit-Status: 429`` and get a real 429.
"""

from __future__ import annotations

import json
import re
from typing import Any

from litestar import HttpMethod, Request, Response, head, route

from authsvc.errors import Code, GatewayDenial, InvalidScope, RateLimited, Unauthenticated
from authsvc.keys import secret as keysecret
from authsvc.principal import Principal
from authsvc.ratelimit.headers import rate_limit_headers
from authsvc.scopes import Scope, find_grant
from authsvc.tenants.policy import TenantCache
from authsvc.verify.controller import VERIFY_SCOPE, scope_of
from authsvc.verify.service import VerifyService
from authsvc.verify.uri import Refused, query_token, required_scope, uri_after_prefix
from authsvc.verify.verdict import Verdict
from authsvc.web.auth import bearer_token

PREFIX = "/v1/authz"
_METHODS = [
    HttpMethod.GET,
    HttpMethod.POST,
    HttpMethod.PUT,
    HttpMethod.PATCH,
    HttpMethod.DELETE,
    HttpMethod.OPTIONS,
]
_PRINTABLE = re.compile(r"[\x20-\x7e]*\Z")
MAX_COST = 1_000_000_000


def header_value(text: str) -> str:
    """A header-safe rendering of free text (subjects may hold any character)."""
    if _PRINTABLE.match(text):
        return text
    return json.dumps(text)[1:-1]


def _limited_status(request: Request[Any, Any, Any]) -> int:
    return 429 if request.headers.get("x-authsvc-limit-status", "").strip() == "429" else 403


def _original_uri(request: Request[Any, Any, Any], path_mode: bool) -> str | None:
    """The URI the client asked for, undecoded."""
    uri = request.headers.get("x-original-uri") or request.headers.get("x-forwarded-uri")
    if uri:
        return uri
    if path_mode:  # Envoy's path_prefix: the raw path after the prefix, never the decoded one
        raw = request.scope.get("raw_path") or b""
        return uri_after_prefix(raw, request.scope.get("query_string", b""), PREFIX)
    return None


async def _gateway(request: Request[Any, Any, Any], verify: VerifyService) -> Principal:
    limited = _limited_status(request)
    key = request.headers.get("x-authsvc-key", "").strip()
    try:
        gateway, _ = await verify.authenticate(key or None)
    except RateLimited as exc:
        raise GatewayDenial(
            Code.RATE_LIMITED, exc.message, headers=exc.headers, limited_status=limited
        ) from None
    except Unauthenticated:
        raise GatewayDenial(
            Code.GATEWAY_UNAUTHENTICATED, "The gateway key is missing or not valid."
        ) from None
    if find_grant(gateway.grants, VERIFY_SCOPE) is None:
        raise GatewayDenial(Code.GATEWAY_FORBIDDEN, "The gateway key lacks TOKENS:VERIFY.")
    return gateway


def _scope(request: Request[Any, Any, Any], uri: str | None) -> Scope:
    explicit = request.headers.get("x-authsvc-scope", "").strip()
    if explicit:
        try:
            return scope_of(explicit)
        except InvalidScope:
            raise GatewayDenial(Code.FORBIDDEN, "X-Authsvc-Scope is not a scope.") from None
    derived = required_scope(uri or "")
    if isinstance(derived, Refused):
        raise GatewayDenial(Code.FORBIDDEN, derived.message)
    if derived is None:
        raise GatewayDenial(Code.FORBIDDEN, "No scope could be determined for this request.")
    return derived


async def authorize(request: Request[Any, Any, Any], *, path_mode: bool) -> Response[Any]:
    verify: VerifyService = request.app.state.verify
    tenants: TenantCache = request.app.state.tenants
    gateway = await _gateway(request, verify)
    uri = _original_uri(request, path_mode)
    scope = _scope(request, uri)
    cost_header = request.headers.get("x-authsvc-cost", "1").strip()
    if not cost_header.isdigit() or int(cost_header) > MAX_COST:
        raise GatewayDenial(Code.FORBIDDEN, "X-Authsvc-Cost must be a non-negative integer.")

    token = bearer_token(request)
    if token is None and uri:
        candidate = query_token(uri)
        if candidate is not None and not keysecret.looks_like_key(candidate):
            tenant = await tenants.get(gateway.tenant)
            if tenant is not None and tenant.allow_query_token:
                token = candidate
    if token is None:
        raise GatewayDenial(Code.UNAUTHENTICATED, "A bearer credential is required.")

    verdict = await verify.check(
        token, tenant_id=gateway.tenant, required=[scope], cost=int(cost_header)
    )
    return _answer(request, verdict)


def _answer(request: Request[Any, Any, Any], verdict: Verdict) -> Response[Any]:
    limits = rate_limit_headers(verdict.decision) if verdict.decision is not None else {}
    p = verdict.principal
    if not verdict.valid or p is None:
        raise GatewayDenial(
            verdict.code,
            verdict.reason or "The credential is not valid.",
            headers=limits,
            limited_status=_limited_status(request),
        )
    headers = {
        "X-Authsvc-Code": "VALID",
        "X-Authsvc-Tenant": p.tenant_slug or "",
        "X-Authsvc-Tenant-Id": p.tenant_id or "",
        "X-Authsvc-Sub": header_value(p.sub or p.id),
        "X-Authsvc-Key-Id": p.id,
        "X-Authsvc-Fixed-Params": json.dumps(
            dict(verdict.fixed_params), separators=(",", ":"), sort_keys=True
        ),
        "Cache-Control": "no-store",
        **limits,
    }
    return Response({"code": "VALID"}, status_code=200, headers=headers)


@route(PREFIX, http_method=_METHODS, tags=["verification"], status_code=200)
async def authz(request: Request[Any, Any, Any]) -> Response[Any]:
    return await authorize(request, path_mode=False)


@route(PREFIX + "/{rest:path}", http_method=_METHODS, include_in_schema=False, status_code=200)
async def authz_path(request: Request[Any, Any, Any]) -> Response[Any]:
    return await authorize(request, path_mode=True)


@head(PREFIX, include_in_schema=False, status_code=200)
async def authz_head(request: Request[Any, Any, Any]) -> Response[None]:
    answer = await authorize(request, path_mode=False)
    return Response(None, status_code=answer.status_code, headers=answer.headers)


AUTHZ_HANDLERS = [authz, authz_path, authz_head]
