"""The one place where errors become HTTP responses.

Domain errors (:mod:`authsvc.errors`) map to a status by class; Litestar's own HTTP
exceptions (routing, validation, body size) and database outages get stable codes too; input the
parser or the database cannot take (invalid UTF-8, nesting too deep, a number or date out of
range, a NUL character) is a 400, never a 500 or a 503; anything else is a 500 with no detail.
No body ever echoes request input, and anything shaped like a credential is redacted from every
message as a last line of defence.
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

log = logging.getLogger("authsvc.errors")

STATUS: list[tuple[type[errors.AuthsvcError], int]] = [
    (errors.InvalidRequest, 400),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.RateLimited, 429),
    (errors.Unavailable, 503),
]
HTTP_CODES = {
    400: "INVALID_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    431: "HEADERS_TOO_LARGE",
    429: "RATE_LIMITED",
    503: "UNAVAILABLE",
}
_QUOTED = re.compile(r"'[^']*'")
_CREDENTIAL = re.compile(r"(?<![0-9A-Za-z])(?:(?:ask|aso)_[0-9A-Za-z]+|eyJ[\w-]*(?:\.[\w-]*)*)")
#: SQLSTATE class 22, "data exception": a value the column cannot hold (NUL, out of range).
_DATA_EXCEPTION_CLASS = "22"


def redact(message: str) -> str:
    """Replace anything shaped like an API/operator key or a JWT, even a truncated one."""
    return _CREDENTIAL.sub("[redacted]", message)


def error_body(message: str, code: str) -> dict[str, str]:
    return {"error": redact(message), "code": code}


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
    return Response(error_body(message, "INVALID_REQUEST"), status_code=400)


def status_for(exc: errors.AuthsvcError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _headers(exc: errors.AuthsvcError, status: int) -> dict[str, str]:
    if status == 401:
        return {"WWW-Authenticate": 'Bearer realm="authsvc", error="invalid_token"'}
    if status == 403:
        return {"WWW-Authenticate": 'Bearer realm="authsvc", error="insufficient_scope"'}
    if isinstance(exc, errors.RateLimited):
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    return {}


def domain_error(_: Request[Any, Any, Any], exc: errors.AuthsvcError) -> Response[Any]:
    status = status_for(exc)
    headers = dict(_headers(exc, status))
    headers.update(getattr(exc, "headers", None) or {})
    return Response(error_body(exc.message, exc.code), status_code=status, headers=headers)


def oauth_error(_: Request[Any, Any, Any], exc: errors.OAuthError) -> Response[Any]:
    """RFC 6749 §5.2 body; ``no-store`` like every token-endpoint response (§5.1)."""
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if exc.challenge:
        headers["WWW-Authenticate"] = exc.challenge
    body = {"error": exc.error, "error_description": exc.message}
    return Response(body, status_code=exc.status, headers=headers)


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
    code = HTTP_CODES.get(status, "ERROR")
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
            error_body("The request conflicts with existing data.", "CONFLICT"), status_code=409
        )
    log.warning("database unavailable: %s", type(exc).__name__)
    return Response(
        error_body("The database is unavailable; try again shortly.", "UNAVAILABLE"),
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
    return Response(error_body("Internal error.", "INTERNAL"), status_code=500)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    errors.AuthsvcError: domain_error,
    errors.OAuthError: oauth_error,
    HTTPException: http_error,
    DBAPIError: database_error,
    PoolTimeout: database_error,
    Exception: internal_error,
}
