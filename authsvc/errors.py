"""One error hierarchy and the one registry of stable codes.

:class:`Code` lists every machine-readable code the service emits: in error bodies
(``{"error": <sentence>, "code": <CODE>}``), in verdicts (``POST /v1/verify``) and in
forward-auth answers (``X-Authsvc-Code``). :data:`CATALOG` documents each one; the code table in
``docs/architecture.md`` and the ``code`` enum of the OpenAPI error schema are generated from it
(``python -m authsvc.errors`` prints the table; a test keeps the docs equal to it).

Services raise :class:`AuthsvcError` subclasses, never HTTP exceptions; the web layer
(:mod:`authsvc.web.exceptions`) turns them into responses in exactly one place, the status
coming from the code's catalog entry. Messages must never contain a secret (API key, JWT,
signing key, master secret).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final


class Code(StrEnum):
    # request shape (400)
    INVALID_REQUEST = "INVALID_REQUEST"
    DUPLICATE_MEMBER = "DUPLICATE_MEMBER"
    INVALID_SCOPE = "INVALID_SCOPE"
    INVALID_FIXED_PARAMS = "INVALID_FIXED_PARAMS"
    INVALID_NAME = "INVALID_NAME"
    INVALID_SLUG = "INVALID_SLUG"
    INVALID_ALG = "INVALID_ALG"
    INVALID_TTL = "INVALID_TTL"
    TTL_TOO_LONG = "TTL_TOO_LONG"
    INVALID_AUDIENCE = "INVALID_AUDIENCE"
    INVALID_LIMITS = "INVALID_LIMITS"
    INVALID_RATELIMIT = "INVALID_RATELIMIT"
    INVALID_SUB = "INVALID_SUB"
    INVALID_METADATA = "INVALID_METADATA"
    INVALID_IDENTITY = "INVALID_IDENTITY"
    INVALID_EXPIRY = "INVALID_EXPIRY"
    INVALID_GRACE = "INVALID_GRACE"
    INVALID_LIMIT = "INVALID_LIMIT"
    INVALID_CURSOR = "INVALID_CURSOR"
    INVALID_ISSUER = "INVALID_ISSUER"
    INVALID_CLAIM_REF = "INVALID_CLAIM_REF"
    INVALID_CONDITIONS = "INVALID_CONDITIONS"
    KEY_REVOKED = "KEY_REVOKED"
    KEY_TOO_DEEP = "KEY_TOO_DEEP"
    PARENT_EXPIRING = "PARENT_EXPIRING"
    EXCHANGE_TOO_DEEP = "EXCHANGE_TOO_DEEP"
    # who is asking (401 / 403)
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INSUFFICIENT_SCOPE = "INSUFFICIENT_SCOPE"
    SCOPE_ESCALATION = "SCOPE_ESCALATION"
    # state (404 / 405 / 409)
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    CONFLICT = "CONFLICT"
    SLUG_TAKEN = "SLUG_TAKEN"
    # size and rate (413 / 414 / 415 / 429 / 431)
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    URI_TOO_LONG = "URI_TOO_LONG"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    RATE_LIMITED = "RATE_LIMITED"
    HEADERS_TOO_LARGE = "HEADERS_TOO_LARGE"
    # the service (500 / 503)
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"
    # verdicts (POST /v1/verify) and forward-auth (X-Authsvc-Code); NOT_FOUND and
    # RATE_LIMITED above are verdict codes too
    VALID = "VALID"
    MALFORMED = "MALFORMED"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    DISABLED = "DISABLED"
    FORBIDDEN = "FORBIDDEN"
    INVALID_SIGNATURE = "INVALID_SIGNATURE"
    GATEWAY_UNAUTHENTICATED = "GATEWAY_UNAUTHENTICATED"
    GATEWAY_FORBIDDEN = "GATEWAY_FORBIDDEN"
    # never on the wire
    OAUTH_ERROR = "OAUTH_ERROR"
    CONFIGURATION_ERROR = "CONFIGURATION_ERROR"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    status: int | None
    """HTTP status of an error body with this code (``None``: not an error-body code)."""
    where: str
    """``body`` (error bodies), ``verdict`` (verify and forward-auth), ``gateway``
    (forward-auth only) or ``internal`` (never on the wire)."""
    summary: str


def _body(status: int, summary: str) -> CodeInfo:
    return CodeInfo(status, "body", summary)


def _verdict(summary: str) -> CodeInfo:
    return CodeInfo(None, "verdict", summary)


CATALOG: Final[dict[Code, CodeInfo]] = {
    Code.INVALID_REQUEST: _body(400, "The body, a parameter or a header is malformed."),
    Code.DUPLICATE_MEMBER: _body(400, "A JSON object names the same member twice."),
    Code.INVALID_SCOPE: _body(400, "A scope is malformed, unknown, repeated, or not allowed here."),
    Code.INVALID_FIXED_PARAMS: _body(400, "fixed_params are not a map of names to values."),
    Code.INVALID_NAME: _body(400, "A name is empty or too long."),
    Code.INVALID_SLUG: _body(400, "A tenant slug is not 1-63 lower-case letters and digits."),
    Code.INVALID_ALG: _body(400, "A signing or issuer algorithm is not supported."),
    Code.INVALID_TTL: _body(400, "A lifetime is not a positive number of seconds."),
    Code.TTL_TOO_LONG: _body(400, "The requested token lifetime exceeds the tenant maximum."),
    Code.INVALID_AUDIENCE: _body(400, "An audience is not one the credential may use."),
    Code.INVALID_LIMITS: _body(400, "Token limits (limits.rps) are invalid."),
    Code.INVALID_RATELIMIT: _body(400, "A rate limit definition is invalid."),
    Code.INVALID_SUB: _body(400, "A token subject is empty, too long or not printable."),
    Code.INVALID_METADATA: _body(400, "metadata is too large."),
    Code.INVALID_IDENTITY: _body(400, "An identity id is empty or too long."),
    Code.INVALID_EXPIRY: _body(400, "An expiry is in the past."),
    Code.INVALID_GRACE: _body(400, "A reroll grace period is out of range."),
    Code.INVALID_LIMIT: _body(400, "A page size is out of range."),
    Code.INVALID_CURSOR: _body(400, "A page cursor is malformed."),
    Code.INVALID_ISSUER: _body(400, "A trusted issuer definition is invalid or not allowed."),
    Code.INVALID_CLAIM_REF: _body(400, "A claim reference is not a name or an RFC 6901 pointer."),
    Code.INVALID_CONDITIONS: _body(400, "Trusted-issuer conditions are not claim: value pairs."),
    Code.KEY_REVOKED: _body(400, "A revoked key cannot be changed or rerolled."),
    Code.KEY_TOO_DEEP: _body(400, "Keys derive from keys at most a few levels deep."),
    Code.PARENT_EXPIRING: _body(400, "The credential expires too soon to mint from it."),
    Code.EXCHANGE_TOO_DEEP: _body(400, "A token was exchanged too many times in a row."),
    Code.UNAUTHENTICATED: _body(401, "Missing, unknown, expired, revoked or disabled credential."),
    Code.INSUFFICIENT_SCOPE: _body(403, "The credential does not grant this operation."),
    Code.SCOPE_ESCALATION: _body(
        403, "The request would widen a grant, filter, expiry, limit or target (named)."
    ),
    Code.NOT_FOUND: _body(404, "No such object (or not visible to this credential)."),
    Code.METHOD_NOT_ALLOWED: _body(405, "The method is not allowed on this resource."),
    Code.CONFLICT: _body(409, "The request conflicts with the current state."),
    Code.SLUG_TAKEN: _body(409, "The tenant slug is taken."),
    Code.PAYLOAD_TOO_LARGE: _body(413, "The request body is too large."),
    Code.URI_TOO_LONG: _body(414, "The request URI is too long."),
    Code.UNSUPPORTED_MEDIA_TYPE: _body(415, "The request body has an unsupported media type."),
    Code.RATE_LIMITED: _body(429, "A rate limit refused the request (see Retry-After)."),
    Code.HEADERS_TOO_LARGE: _body(431, "The request headers are too large."),
    Code.INTERNAL: _body(500, "An unexpected error; nothing about it is disclosed."),
    Code.UNAVAILABLE: _body(503, "A dependency (database, identity provider) is down."),
    Code.VALID: _verdict("The credential is valid for what was asked."),
    Code.MALFORMED: _verdict("The credential is not well formed or fits no profile."),
    Code.EXPIRED: _verdict("The credential or one it derives from has expired."),
    Code.REVOKED: _verdict("The credential or one it derives from has been revoked."),
    Code.DISABLED: _verdict("The credential, one it derives from, or its tenant is disabled."),
    Code.FORBIDDEN: _verdict("A required scope is not granted, or its filters do not meet."),
    Code.INVALID_SIGNATURE: _verdict("The token's signature could not be verified."),
    Code.GATEWAY_UNAUTHENTICATED: CodeInfo(
        None, "gateway", "The gateway's own key (X-Authsvc-Key) is missing or not valid."
    ),
    Code.GATEWAY_FORBIDDEN: CodeInfo(None, "gateway", "The gateway's key lacks TOKENS:VERIFY."),
    Code.OAUTH_ERROR: CodeInfo(None, "internal", "OAuth endpoints answer RFC 6749 bodies."),
    Code.CONFIGURATION_ERROR: CodeInfo(None, "internal", "Invalid settings at start-up."),
}

VERDICT_CODES: Final = (
    Code.VALID,
    Code.NOT_FOUND,
    Code.MALFORMED,
    Code.EXPIRED,
    Code.REVOKED,
    Code.DISABLED,
    Code.FORBIDDEN,
    Code.RATE_LIMITED,
    Code.INVALID_SIGNATURE,
)
"""The codes of a verdict (DESIGN §3), in no particular order."""

NO_CREDENTIAL_CODES: Final = frozenset(
    {
        Code.NOT_FOUND,
        Code.MALFORMED,
        Code.EXPIRED,
        Code.REVOKED,
        Code.DISABLED,
        Code.INVALID_SIGNATURE,
        Code.UNAUTHENTICATED,
        Code.GATEWAY_UNAUTHENTICATED,
    }
)
"""Denials meaning "no usable credential": 401 at a gateway; the other denials are 403."""


def markdown_table() -> str:
    """The code table of the docs, generated from :data:`CATALOG`."""
    lines = ["| code | status | where | meaning |", "|---|---|---|---|"]
    for code, info in CATALOG.items():
        status = "" if info.status is None else str(info.status)
        lines.append(f"| `{code}` | {status} | {info.where} | {info.summary} |")
    return "\n".join(lines) + "\n"


class AuthsvcError(Exception):
    """Base class. ``code`` is the stable, machine-readable part of the contract."""

    code: ClassVar[Code] = Code.INTERNAL
    default_message: ClassVar[str] = "The request failed."

    def __init__(self, message: str | None = None, *, code: Code | None = None) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code  # type: ignore[misc]
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return CATALOG[self.code].status or 500


class InvalidRequest(AuthsvcError):
    """Bad input (400 unless its code says otherwise)."""

    code = Code.INVALID_REQUEST
    default_message = "The request is malformed."


class InvalidScope(InvalidRequest):
    code = Code.INVALID_SCOPE
    default_message = "A scope is not valid."


class InvalidFixedParams(InvalidRequest):
    code = Code.INVALID_FIXED_PARAMS
    default_message = "fixed_params must map names to strings, numbers, booleans or lists."


class TtlTooLong(InvalidRequest):
    code = Code.TTL_TOO_LONG
    default_message = "The requested token lifetime exceeds the tenant maximum."


class Unauthenticated(AuthsvcError):
    """Missing, unknown, expired or revoked credential (401)."""

    code = Code.UNAUTHENTICATED
    default_message = "A valid credential is required."


class Forbidden(AuthsvcError):
    """A valid credential without the right (403)."""

    code = Code.INSUFFICIENT_SCOPE
    default_message = "The credential does not grant this operation."


class ScopeEscalation(Forbidden):
    """A request that would widen what the caller holds; ``scope`` names what (a scope, or a
    field such as ``expires_at`` or ``ratelimits``)."""

    code = Code.SCOPE_ESCALATION
    default_message = "The request asks for more than the credential holds."

    def __init__(self, scope: str, reason: str = "is not covered by the credential") -> None:
        self.scope = scope
        super().__init__(f"'{scope}' {reason}.")


class NotFound(AuthsvcError):
    code = Code.NOT_FOUND
    default_message = "No such object."


class Conflict(AuthsvcError):
    code = Code.CONFLICT
    default_message = "The request conflicts with the current state."


class RateLimited(AuthsvcError):
    """Refused by a rate limit; ``headers`` are the rate-limit headers to send with the 429."""

    code = Code.RATE_LIMITED
    default_message = "Rate limit exceeded."

    def __init__(
        self,
        retry_after_s: float,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.retry_after_s = retry_after_s
        self.headers = headers or {}
        super().__init__(message)


class Unavailable(AuthsvcError):
    """A dependency the operation needs is down (503)."""

    code = Code.UNAVAILABLE
    default_message = "A dependency of the service is unavailable; try again shortly."


class GatewayDenial(AuthsvcError):
    """``/v1/authz`` refuses the request it was asked about (a verdict, as an answer).

    ``code`` is a verdict or gateway code; the web layer picks the status and the challenge
    (401 for codes meaning "no usable credential", 403 otherwise; a rate-limited request is
    ``limited_status``, 403 or 429 as the gateway asked) and adds ``headers`` (rate limits).
    """

    def __init__(
        self,
        code: Code,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        limited_status: int = 403,
    ) -> None:
        self.headers = headers or {}
        self.limited_status = limited_status
        super().__init__(message, code=code)


class OAuthError(AuthsvcError):
    """An OAuth 2.0 endpoint error, rendered as an RFC 6749 §5.2 body
    (``{"error": <oauth code>, "error_description": <sentence>}``) rather than the usual one.

    ``error`` is the registered OAuth error code (``invalid_client``, ``invalid_scope`` …);
    the web layer derives the status and the ``WWW-Authenticate`` challenge from it (RFC 6749
    §5.2, RFC 6750 §3.1), with ``realm`` (the tenant's issuer) and ``bearer`` (the client used
    a Bearer credential rather than Basic) as inputs. ``not_found`` marks an unknown tenant,
    ``unavailable`` a dependency that is down (503, e.g. an identity provider's keys);
    ``headers`` are added as they are (rate-limit headers of a refused client).
    """

    code = Code.OAUTH_ERROR

    def __init__(
        self,
        error: str,
        description: str,
        *,
        realm: str | None = None,
        bearer: bool = False,
        scope: str | None = None,
        not_found: bool = False,
        unavailable: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.error, self.realm, self.bearer, self.scope = error, realm, bearer, scope
        self.not_found, self.unavailable, self.headers = not_found, unavailable, headers or {}
        super().__init__(description)


class ConfigurationError(AuthsvcError):
    """Invalid settings detected at start-up (never reaches HTTP)."""

    code = Code.CONFIGURATION_ERROR
    default_message = "The service is misconfigured."


if __name__ == "__main__":  # pragma: no cover - documentation generator
    sys.stdout.write(markdown_table())
