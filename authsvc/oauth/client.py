"""OAuth client authentication (RFC 6749 §2.3.1): ``client_id`` = API key id, ``client_secret``
= the API key itself, by ``client_secret_basic`` or ``client_secret_post``.

Pure parsing here (no I/O); :class:`authsvc.oauth.service.OAuthService` looks the secret up.
Failures are ``invalid_client`` (401) with a ``WWW-Authenticate: Basic`` challenge naming the
tenant's issuer as realm; the reason given never says which part was wrong (id, secret,
tenant, state), so the endpoint is no oracle for which key ids exist. Using two methods at
once is ``invalid_request`` (§2.3: "MUST NOT use more than one authentication method").
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus

from authsvc.errors import OAuthError

Method = Literal["client_secret_basic", "client_secret_post"]
MAX_CREDENTIAL_CHARS = 512


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    secret: str
    method: Method


def invalid_client(realm: str, reason: str = "Client authentication failed.") -> OAuthError:
    # RFC 6749 §5.2: 401 and a WWW-Authenticate challenge (written by the web layer).
    return OAuthError("invalid_client", reason, realm=realm)


def client_credentials(
    authorization: str | None, form: Mapping[str, str], *, realm: str
) -> ClientCredentials | None:
    """The credentials a client presented, ``None`` if it presented none (and no Bearer)."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    basic = scheme.lower() == "basic"
    if basic:
        if "client_secret" in form:
            raise OAuthError("invalid_request", "Use one client authentication method, not two.")
        client_id, secret = _basic(value.strip(), realm)
        if "client_id" in form and form["client_id"] != client_id:
            raise OAuthError("invalid_request", "client_id differs from the Basic credentials.")
        return ClientCredentials(client_id, secret, "client_secret_basic")
    if "client_secret" in form:
        if "client_id" not in form:  # RFC 6749 §2.3.1: client_id is REQUIRED with the secret
            raise invalid_client(realm, "client_id is required with client_secret.")
        return ClientCredentials(form["client_id"], form["client_secret"], "client_secret_post")
    return None


def _basic(value: str, realm: str) -> tuple[str, str]:
    """RFC 7617 §2 credentials; RFC 6749 §2.3.1: both parts form-urlencoded first."""
    if not value or len(value) > 4 * MAX_CREDENTIAL_CHARS:
        raise invalid_client(realm)
    try:
        decoded = binascii.a2b_base64(value.encode("ascii"), strict_mode=True).decode("utf-8")
    except (ValueError, UnicodeError):
        raise invalid_client(realm) from None
    user, sep, password = decoded.partition(":")
    if not sep or not user or not password:
        raise invalid_client(realm)
    return unquote_plus(user), unquote_plus(password)
