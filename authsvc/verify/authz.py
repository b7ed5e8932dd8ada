"""``/v1/authz``: forward authentication for nginx ``auth_request``, Traefik ``forwardAuth`` and
Envoy ``ext_authz`` (HTTP mode).

Inputs, all from the gateway's sub-request:

* ``X-Authsvc-Key``: the gateway's own API key (``TOKENS:VERIFY``); its tenant is the tenant
  every token is checked against. The gateway must set it; it is never the client's.
* the required scope: ``X-Authsvc-Scope`` if the gateway sets it, else derived from the
  original URI (``X-Original-URI``, ``X-Forwarded-Uri``, or the path after ``/v1/authz`` for
  Envoy's ``path_prefix``): ``/v0/pipes/<name>.<format>`` → ``PIPES:READ:<name>``. No scope
  at all is a 403: a gateway never lets a request through unchecked by accident.
* the credential: the original ``Authorization: Bearer`` header or, when the tenant sets
  ``allow_query_token``, the ``token`` query parameter of the original URI, JWTs only (a
  long-lived API key never travels in a URL, where logs and referrers keep it).
* ``X-Authsvc-Cost`` (optional, default 1) and ``X-Authsvc-Limit-Status`` (optional).

Outputs: 200 with ``X-Authsvc-Tenant`` (slug), ``X-Authsvc-Tenant-Id``, ``X-Authsvc-Sub``
(the JWT subject, or the key's identity, else its id), ``X-Authsvc-Key-Id``,
``X-Authsvc-Fixed-Params`` (compact JSON, ASCII) and the rate-limit headers. Denials carry
``X-Authsvc-Code`` (the verdict code): 401 with ``WWW-Authenticate: Bearer
error="invalid_token"`` for a missing, unknown, malformed, expired, revoked or disabled
credential; 403 (``insufficient_scope``) for a missing scope. Rate limited: 403 with
``X-Authsvc-Code: RATE_LIMITED``, ``Retry-After`` and the rate-limit headers, because nginx's
``auth_request`` only relays 401 and 403 (the shipped nginx config turns it into a 429);
gateways that relay the auth response as is (Traefik, Envoy) send
``X-Authsvc-Limit-Status: 429`` and get a real 429.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from litestar import HttpMethod, Request, Response, head, route
from litestar.params import FromPath

from authsvc.errors import AuthsvcError, InvalidScope
from authsvc.keys import secret as keysecret
from authsvc.keys.service import key_status
from authsvc.ratelimit.headers import rate_limit_headers
from authsvc.scopes import Scope, find_grant, parse_scope
from authsvc.services import Services
from authsvc.verify.controller import VERIFY_SCOPE, scope_of
from authsvc.verify.verdict import UNAUTHENTICATED_CODES, Verdict
from authsvc.web.auth import bearer_token
from authsvc.web.ratelimit import guard_caller

PREFIX = "/v1/authz"
_PIPE = re.compile(r"/v0/pipes/(?P<name>[^/]+)\.(?P<fmt>[A-Za-z0-9]+)\Z")
_METHODS = [
    HttpMethod.GET,
    HttpMethod.POST,
    HttpMethod.PUT,
    HttpMethod.PATCH,
    HttpMethod.DELETE,
    HttpMethod.OPTIONS,
]
_INVALID = 'Bearer realm="authsvc", error="invalid_token"'
_SCOPE = 'Bearer realm="authsvc", error="insufficient_scope"'
_PRINTABLE = re.compile(r"[\x20-\x7e]*\Z")


def scope_from_uri(uri: str) -> Scope | None:
    """``/v0/pipes/<name>.<format>`` → ``PIPES:READ:<name>``; ``None`` for anything else."""
    m = _PIPE.match(unquote(urlsplit(uri).path))
    if m is None:
        return None
    try:
        return parse_scope(f"PIPES:READ:{m.group('name')}")
    except InvalidScope:
        return None


def query_token(uri: str) -> str | None:
    values = parse_qs(urlsplit(uri).query).get("token")
    return values[0] if values else None


def header_value(text: str) -> str:
    """A header-safe rendering of free text (subjects may hold any character)."""
    if _PRINTABLE.match(text):
        return text
    return json.dumps(text)[1:-1]


def _deny(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    out = {"X-Authsvc-Code": code, "Cache-Control": "no-store"}
    if status == 401:
        out["WWW-Authenticate"] = _INVALID
    elif status == 403 and code != "RATE_LIMITED":
        out["WWW-Authenticate"] = _SCOPE
    out.update(headers or {})
    return Response({"error": message, "code": code}, status_code=status, headers=out)


def _original_uri(request: Request[Any, Any, Any], rest: str | None) -> str | None:
    uri = request.headers.get("x-original-uri") or request.headers.get("x-forwarded-uri")
    if uri:
        return uri
    if rest is not None:
        query = request.scope.get("query_string", b"").decode("latin-1")
        return "/" + rest.lstrip("/") + (f"?{query}" if query else "")
    return None


async def authorize(request: Request[Any, Any, Any], rest: str | None = None) -> Response[Any]:
    services: Services = request.app.state.services
    # 1. the gateway
    gateway_key = request.headers.get("x-authsvc-key", "").strip()
    if keysecret.kind_of(gateway_key) != "api":
        return _deny(401, "GATEWAY_UNAUTHENTICATED", "The gateway key is missing or malformed.")
    gateway = await services.key_cache.record(gateway_key)
    if gateway is None or key_status(gateway, services.clock.now()) != "VALID":
        return _deny(401, "GATEWAY_UNAUTHENTICATED", "The gateway key is not valid.")
    if find_grant(gateway.grants, VERIFY_SCOPE) is None:
        return _deny(403, "GATEWAY_FORBIDDEN", "The gateway key lacks TOKENS:VERIFY.")
    try:
        await guard_caller(request, services, gateway, expose=False)
    except AuthsvcError as exc:
        headers = getattr(exc, "headers", None) or {}
        return _deny(_limit_status(request), "RATE_LIMITED", exc.message, headers)

    # 2. what is asked
    uri = _original_uri(request, rest)
    explicit = request.headers.get("x-authsvc-scope", "").strip()
    try:
        scope = scope_of(explicit) if explicit else scope_from_uri(uri or "")
    except InvalidScope:
        scope = None
    if scope is None:
        return _deny(403, "FORBIDDEN", "No scope could be determined for this request.")
    cost_header = request.headers.get("x-authsvc-cost", "1").strip()
    if not cost_header.isdigit() or int(cost_header) > 1_000_000_000:
        return _deny(403, "FORBIDDEN", "X-Authsvc-Cost must be a non-negative integer.")

    # 3. the credential
    token = bearer_token(request)
    if token is None and uri:
        candidate = query_token(uri)
        if candidate is not None:
            tenant = await services.policies.get(gateway.tenant_id)
            allowed = tenant is not None and tenant.allow_query_token
            if allowed and not keysecret.looks_like_key(candidate):
                token = candidate
    if token is None:
        return _deny(401, "UNAUTHENTICATED", "A bearer credential is required.")

    verdict = await services.verifier.verify(
        token, tenant_id=gateway.tenant_id, required=[scope], cost=int(cost_header)
    )
    return _answer(request, verdict)


def _limit_status(request: Request[Any, Any, Any]) -> int:
    return 429 if request.headers.get("x-authsvc-limit-status", "").strip() == "429" else 403


def _answer(request: Request[Any, Any, Any], verdict: Verdict) -> Response[Any]:
    limits = rate_limit_headers(verdict.decision) if verdict.decision is not None else {}
    if verdict.valid:
        headers = {
            "X-Authsvc-Code": "VALID",
            "X-Authsvc-Tenant": verdict.tenant_slug or "",
            "X-Authsvc-Tenant-Id": verdict.tenant_id or "",
            "X-Authsvc-Sub": header_value(verdict.sub or verdict.key_id or ""),
            "X-Authsvc-Key-Id": verdict.key_id or "",
            "X-Authsvc-Fixed-Params": json.dumps(
                dict(verdict.fixed_params), separators=(",", ":"), sort_keys=True
            ),
            "Cache-Control": "no-store",
            **limits,
        }
        return Response({"code": "VALID"}, status_code=200, headers=headers)
    reason = verdict.reason or "The credential is not valid."
    if verdict.code in UNAUTHENTICATED_CODES:
        return _deny(401, verdict.code, reason)
    if verdict.code == "RATE_LIMITED":
        return _deny(_limit_status(request), "RATE_LIMITED", reason, limits)
    return _deny(403, verdict.code, reason, limits)


@route(PREFIX, http_method=_METHODS, tags=["verification"], status_code=200)
async def authz(request: Request[Any, Any, Any]) -> Response[Any]:
    return await authorize(request)


@route(PREFIX + "/{rest:path}", http_method=_METHODS, include_in_schema=False, status_code=200)
async def authz_path(request: Request[Any, Any, Any], rest: FromPath[str]) -> Response[Any]:
    return await authorize(request, rest)


@head(PREFIX, include_in_schema=False, status_code=200)
async def authz_head(request: Request[Any, Any, Any]) -> Response[None]:
    answer = await authorize(request)
    return Response(None, status_code=answer.status_code, headers=answer.headers)


AUTHZ_HANDLERS = [authz, authz_path, authz_head]
