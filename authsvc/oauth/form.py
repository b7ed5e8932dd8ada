"""``application/x-www-form-urlencoded`` request bodies of the OAuth endpoints, and the
parameters of the token endpoint read from them (``scope``, ``audience``, the RFC 8693 subject).

RFC 6749 §3.1 / §3.2: parameters sent without a value are treated as omitted, and a parameter
MUST NOT appear more than once (a repeated one is ``invalid_request``, not "last one wins", so
no proxy and server can read different values out of the same body).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from authsvc.errors import InvalidScope, OAuthError
from authsvc.scopes import Grant, parse_scope

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 32
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 (RFC 8693 §3)
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 (RFC 8693 §3, RFC 7519 §9)
SUBJECT_TYPES = (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE)
MAX_SCOPE_PARAM = 4096


def parse_form(content_type: str, body: bytes) -> dict[str, str]:
    if content_type.lower() != FORM_TYPE:
        raise OAuthError("invalid_request", f"The request body must be {FORM_TYPE}.")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FIELDS,
            errors="strict",
        )
    except (UnicodeError, ValueError):
        raise OAuthError("invalid_request", "The request body is not a valid form.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"Parameter '{name[:40]}' is repeated.")
        form[name] = value
    # RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they were omitted"
    return {name: value for name, value in form.items() if value != ""}


def exchange_subject(form: Mapping[str, str], types: tuple[str, ...]) -> tuple[str, str]:
    """``subject_token`` and ``subject_token_type`` of an RFC 8693 request, checked."""
    subject, subject_type = form.get("subject_token"), form.get("subject_token_type")
    if subject is None or subject_type is None:  # RFC 8693 §2.1: both REQUIRED
        raise OAuthError("invalid_request", "subject_token and subject_token_type are required.")
    if subject_type not in types:
        raise OAuthError("invalid_request", "subject_token_type is not supported.")
    if "actor_token" in form or "actor_token_type" in form:
        raise OAuthError("invalid_request", "actor_token is not supported.")
    requested = form.get("requested_token_type")
    if requested is not None and requested not in SUBJECT_TYPES:
        raise OAuthError("invalid_request", "requested_token_type is not supported.")
    return subject, subject_type


def scope_param(value: str | None) -> tuple[Grant, ...] | None:
    """RFC 6749 §3.3: space-delimited, case-sensitive scope tokens (ours: DESIGN §1 scopes)."""
    if value is None:
        return None
    if len(value) > MAX_SCOPE_PARAM:
        raise OAuthError("invalid_scope", "scope is too long.")
    names = value.split(" ")
    if "" in names:
        raise OAuthError("invalid_scope", "scope tokens are separated by single spaces.")
    try:
        scopes = [parse_scope(name) for name in dict.fromkeys(names)]
    except InvalidScope as exc:
        raise OAuthError("invalid_scope", exc.message) from None
    return tuple(Grant(s) for s in scopes)


def audience_param(form: Mapping[str, str]) -> tuple[str, ...] | None:
    # RFC 8693 §2.1 "audience"; one value here (parameters do not repeat, RFC 6749 §3.1).
    audience = form.get("audience")
    return None if audience is None else (audience,)
