"""``application/x-www-form-urlencoded`` request bodies of the OAuth endpoints.

RFC 6749 §3.1 / §3.2: parameters sent without a value are treated as omitted, and a parameter
MUST NOT appear more than once (a repeated one is ``invalid_request``, not "last one wins", so
no proxy and server can read different values out of the same body).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from authsvc.errors import OAuthError

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 32


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
