"""The one place where errors become HTTP responses.

Domain errors (:mod:`authsvc.errors`) get the status of their code's catalog entry and the
body ``{"error", "code"}``; OAuth errors an RFC 6749 §5.2 body with the status and challenge
their OAuth code calls for; forward-auth refusals (:class:`~authsvc.errors.GatewayDenial`) the
gateway contract (status by verdict code, ``X-Authsvc-Code``, challenge, rate-limit headers).
Litestar's own HTTP exceptions (routing, validation, body size) and database outages get stable
codes too; input the parser or the database cannot take (invalid UTF-8, nesting too deep, a
number or date out of range, a NUL character) is a 400, never a 500 or a 503; anything else is
a 500 with no detail. No body ever echoes request input, and anything shaped like a credential
is redacted from every message as a last line of defence.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from authsvc import errors
from authsvc.errors import CATALOG, NO_CREDENTIAL_CODES, Code

log = logging.getLogger("authsvc.errors")

HTTP_CODES: dict[int, Code] = {
    info.status: code
    for code, info in reversed(CATALOG.items())
    if info.status is not None and info.where == "body"
}
"""The generic code of each status (the first code of the catalog with that status)."""
_QUOTED = re.compile(r"'[^']*'")
_CREDENTIAL = re.compile(r"(?<![0-9A-Za-z])(?:(?:ask|aso)_[0-9A-Za-z]+|eyJ[\w-]*(?:\.[\w-]*)*)")
#: SQLSTATE class 22, "data exception": a value the column cannot hold (NUL, out of range).
_DATA_EXCEPTION_CLASS = "22"
_INVALID_TOKEN = 'Bearer realm="authsvc", error="invalid_token"'  # noqa: S105 (a challenge)
_INSUFFICIENT = 'Bearer realm="authsvc", error="insufficient_scope"'
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def redact(message: str) -> str:
    """Replace anything shaped like an API/operator key or a JWT, even a truncated one."""
    return _CREDENTIAL.sub("[redacted]", message)


def error_body(message: str, code: Code) -> dict[str, str]:
    return {"error": redact(message), "code": str(code)}


def _unstorable_value(exc: BaseException) -> bool:
    """An integer or date out of range, or a character the database refuses (input, not outage)."""
    if isinstance(exc, OverflowError):
        return True
    if isinstance(exc, StatementError):
        orig = exc.orig
        if isinstance(orig, OverflowError):
            return True
        return str(getattr(orig, "sqlstate", "") or "").startswith(_DATA_EXCEPTION_CLASS)
    return False


def _bad_input(message: str) -> Response[Any]:
    return Response(error_body(message, Code.INVALID_REQUEST), status_code=400)


def domain_error(_: Request[Any, Any, Any], exc: errors.AuthsvcError) -> Response[Any]:
    status = exc.status
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = _INVALID_TOKEN
    elif status == 403:
        headers["WWW-Authenticate"] = _INSUFFICIENT
    if isinstance(exc, errors.RateLimited):
        headers.update(exc.headers)
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return Response(error_body(exc.message, exc.code), status_code=status, headers=headers)


def gateway_denial(_: Request[Any, Any, Any], exc: errors.GatewayDenial) -> Response[Any]:
    """``/v1/authz`` refusals: see :mod:`authsvc.verify.authz` for the contract."""
    headers = {"X-Authsvc-Code": str(exc.code), "Cache-Control": "no-store"}
    if exc.code is Code.RATE_LIMITED:
        status = exc.limited_status
    elif exc.code in NO_CREDENTIAL_CODES:
        status = 401
        headers["WWW-Authenticate"] = _INVALID_TOKEN
    else:
        status = 403
        headers["WWW-Authenticate"] = _INSUFFICIENT
    headers.update(exc.headers)
    return Response(error_body(exc.message, exc.code), status_code=status, headers=headers)


def oauth_error(_: Request[Any, Any, Any], exc: errors.OAuthError) -> Response[Any]:
    """RFC 6749 §5.2 body; ``no-store`` like every token-endpoint response (§5.1)."""
    headers = dict(_NO_STORE)
    realm = exc.realm or "authsvc"
    status = 400
    if exc.not_found:
        status = 404
    elif exc.unavailable:
        status = 503
    elif exc.error == "invalid_client":
        # RFC 6749 §5.2: 401 and a challenge for the scheme the client may use
        status = 401
        headers["WWW-Authenticate"] = f'Basic realm="{realm}", charset="UTF-8"'
    elif exc.error == "invalid_token":
        status = 401  # RFC 6750 §3.1
        headers["WWW-Authenticate"] = f'Bearer realm="{realm}", error="invalid_token"'
    elif exc.error == "insufficient_scope":
        status = 403  # RFC 6750 §3.1
        scope = f', scope="{exc.scope}"' if exc.scope else ""
        headers["WWW-Authenticate"] = f'Bearer realm="{realm}", error="insufficient_scope"{scope}'
    elif exc.error == "rate_limited":
        status = 429
    headers.update(exc.headers)
    body = {"error": exc.error, "error_description": redact(exc.message)}
    return Response(body, status_code=status, headers=headers)


def _validation_message(exc: ValidationException) -> str:
    parts = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            msg = _QUOTED.sub("'…'", str(item.get("message", "")))[:200]
            key = item.get("key")
            parts.append(f"{msg} ({key})" if key and key not in msg else msg)
    return "Invalid request: " + ("; ".join(parts[:5]) if parts else "malformed body.")


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    code = HTTP_CODES.get(status, Code.INTERNAL if status >= 500 else Code.INVALID_REQUEST)
    if isinstance(exc, ValidationException):
        message = _validation_message(exc)
    elif status == 404:
        message = "No such resource."
    elif status == 405:
        message = "Method not allowed on this resource."
    elif status == 413:
        message = "The request body is too large."
    else:
        message = _QUOTED.sub("'…'", str(exc.detail))[:200]
    headers = dict(exc.headers or {})
    return Response(error_body(message, code), status_code=status, headers=headers)


def database_error(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if _unstorable_value(exc):
        return _bad_input("A value is out of range or contains a character that cannot be stored.")
    if isinstance(exc, IntegrityError):
        return Response(
            error_body("The request conflicts with existing data.", Code.CONFLICT), status_code=409
        )
    log.warning("database unavailable: %s", type(exc).__name__)
    return Response(
        error_body("The database is unavailable; try again shortly.", Code.UNAVAILABLE),
        status_code=503,
        headers={"Retry-After": "1"},
    )


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, UnicodeDecodeError | RecursionError):
        # Raised by the JSON decoder itself: invalid UTF-8, or nesting deeper than it recurses.
        return _bad_input(
            "The request body is not valid JSON (invalid UTF-8 or nested too deeply)."
        )
    if _unstorable_value(exc):
        return database_error(request, exc)
    if isinstance(exc, DBAPIError | PoolTimeout | ConnectionError | OSError | TimeoutError):
        return database_error(request, exc)
    log.error(
        "unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc
    )
    return Response(error_body("Internal error.", Code.INTERNAL), status_code=500)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    errors.AuthsvcError: domain_error,
    errors.GatewayDenial: gateway_denial,
    errors.OAuthError: oauth_error,
    HTTPException: http_error,
    DBAPIError: database_error,
    PoolTimeout: database_error,
    Exception: internal_error,
}
