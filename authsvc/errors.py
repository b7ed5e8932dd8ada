"""One error hierarchy for the whole service.

Services raise these; they never raise HTTP exceptions. The web layer
(:mod:`authsvc.web.exceptions`) translates each class to a status code in exactly one
place, and every error body is ``{"error": <sentence>, "code": <STABLE_CODE>}``.

Messages must never contain a secret (API key, JWT, signing key, master secret).
"""

from __future__ import annotations

from typing import ClassVar


class AuthsvcError(Exception):
    """Base class. ``code`` is the stable, machine-readable part of the contract."""

    code: ClassVar[str] = "ERROR"
    default_message: ClassVar[str] = "The request failed."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code  # type: ignore[misc]
        super().__init__(self.message)


class InvalidRequest(AuthsvcError):
    """Bad input (400)."""

    code = "INVALID_REQUEST"
    default_message = "The request is malformed."


class InvalidScope(InvalidRequest):
    code = "INVALID_SCOPE"
    default_message = "A scope is not valid."


class InvalidFixedParams(InvalidRequest):
    code = "INVALID_FIXED_PARAMS"
    default_message = "fixed_params must map names to strings, numbers, booleans or lists."


class TtlTooLong(InvalidRequest):
    code = "TTL_TOO_LONG"
    default_message = "The requested token lifetime exceeds the tenant maximum."


class Unauthenticated(AuthsvcError):
    """Missing, unknown, expired or revoked credential (401)."""

    code = "UNAUTHENTICATED"
    default_message = "A valid credential is required."


class Forbidden(AuthsvcError):
    """A valid credential without the right (403)."""

    code = "INSUFFICIENT_SCOPE"
    default_message = "The credential does not grant this operation."


class ScopeEscalation(Forbidden):
    code = "SCOPE_ESCALATION"
    default_message = "The request asks for more than the credential holds."

    def __init__(self, scope: str, reason: str = "is not covered by the credential") -> None:
        self.scope = scope
        super().__init__(f"Scope '{scope}' {reason}.")


class NotFound(AuthsvcError):
    code = "NOT_FOUND"
    default_message = "No such object."


class Conflict(AuthsvcError):
    code = "CONFLICT"
    default_message = "The request conflicts with the current state."


class RateLimited(AuthsvcError):
    code = "RATE_LIMITED"
    default_message = "Rate limit exceeded."

    def __init__(self, retry_after_s: float, message: str | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


class Unavailable(AuthsvcError):
    """A dependency the operation needs is down (503)."""

    code = "UNAVAILABLE"
    default_message = "A dependency of the service is unavailable; try again shortly."


class OAuthError(AuthsvcError):
    """An OAuth 2.0 endpoint error, rendered as an RFC 6749 §5.2 body
    (``{"error": <oauth code>, "error_description": <sentence>}``) rather than the usual one.

    ``error`` is the registered OAuth error code (``invalid_client``, ``invalid_scope`` …);
    ``status`` is 400 unless the RFC says otherwise (401 for ``invalid_client``);
    ``challenge`` is a ``WWW-Authenticate`` value to send with it, if any.
    """

    code = "OAUTH_ERROR"

    def __init__(
        self, error: str, description: str, *, status: int = 400, challenge: str | None = None
    ) -> None:
        self.error, self.status, self.challenge = error, status, challenge
        super().__init__(description)


class ConfigurationError(AuthsvcError):
    """Invalid settings detected at start-up (never reaches HTTP)."""

    code = "CONFIGURATION_ERROR"
    default_message = "The service is misconfigured."
