"""Verification of a subject token: a JWT from a trusted identity provider (RFC 8693 §2.1).

:func:`verify_subject_token` is the only place an IdP token is accepted. It follows
:mod:`authsvc.tokens.jwt` (our own tokens) and differs only where the token is not ours: keys
come from the issuer's JWKS, a key may allow several algorithms, ``typ`` is optional, and only
``iss``, ``aud`` and ``exp`` are required. It never raises for any token value: a denial is a
:class:`Rejected` with a stable ``code`` and a ``reason`` that never echoes token content. It
raises ``ValueError`` for caller bugs (a leeway above 60 s, no audience, no algorithm) and
lets exceptions from ``resolve_key`` propagate: :class:`~authsvc.issuers.jwks.JwksUnavailable`
means the issuer's keys cannot be had (a 503), which must not read as "invalid token".

Rejection codes
===============

``INVALID_SIGNATURE``: authenticity not established (an unknown ``kid`` included: it cannot be
told from a forgery). ``MALFORMED``: unparseable, or authentic but not a token this exchange
accepts. ``EXPIRED``: authentic and well-formed, past ``exp``. ``CONDITION_FAILED``: every check
passed but a configured condition is not met (the reason names the claim reference, never its
value). All of them become ``invalid_grant`` (RFC 8693 §2.2.2, RFC 6749 §5.2). Checks run in this
order; the first failure wins.

=====  ===================  ===========================================================
step   code                 condition
=====  ===================  ===========================================================
1      MALFORMED            not str/bytes; more than ``max_token_bytes`` (8 KiB); not exactly
                            three unpadded base64url segments; non-canonical base64url
2      MALFORMED            header is not a UTF-8 JSON object (duplicate names refused)
3      INVALID_SIGNATURE    ``alg`` missing, not a string, or ``none`` in any case
4      INVALID_SIGNATURE    ``alg`` not among the issuer's ``algorithms`` (HS256 included)
5      MALFORMED            ``typ`` present and not ``JWT`` / ``at+jwt`` (``application/``
                            prefix allowed, any case)
6      MALFORMED            ``crit`` present (we understand no extension)
7      MALFORMED            ``jku``, ``jwk``, ``x5u``, ``x5c`` or ``b64`` present
8      INVALID_SIGNATURE    ``kid`` missing, not 1-256 printable ASCII, or unknown to the JWKS
9      INVALID_SIGNATURE    ``alg`` is not one the key allows (the JWK pins the algorithm)
10     INVALID_SIGNATURE    signature of the wrong length or not valid
11     MALFORMED            payload is not a UTF-8 JSON object (duplicate names refused)
12     MALFORMED            ``iss`` is not exactly ``issuer``
13     MALFORMED            ``aud`` missing, or names none of ``audiences``
14     MALFORMED            ``exp`` missing or not a finite number; ``nbf``/``iat`` present and
                            not one
15     MALFORMED            an ``events`` claim is present (a Security Event Token)
16     EXPIRED              ``now >= exp + leeway``
17     MALFORMED            ``nbf > now + leeway`` (not yet valid)
18     MALFORMED            ``iat > now + leeway`` (issued in the future)
19     CONDITION_FAILED     a configured condition does not hold
=====  ===================  ===========================================================

Why ``typ`` is checked when present (step 5): the IdP signs other JWTs with the same keys,
often with the same ``iss`` and ``aud``. An OIDC back-channel logout token (``logout+jwt``), a
Security Event Token (``secevent+jwt``, RFC 8417 §2.3) or a JWT-secured authorization response
would otherwise be accepted as a login (cross-JWT confusion, RFC 8725 §3.11); a ``dpop+jwt``
(RFC 9449 §4.2) is a client's proof, never an identity. ID tokens and access tokens carry
``JWT``, ``at+jwt`` (RFC 9068 §2.1) or nothing, so those are accepted. Step 15 catches logout
tokens and SETs from IdPs that do not type them (their ``events`` claim is REQUIRED, RFC 8417
§2.2, OIDC Back-Channel Logout §2.4).

Why the key-bearing headers are refused (step 7): keys come only from the issuer's JWKS; a
``jku``/``x5u`` (fetch a key from a URL: SSRF, key injection) or ``jwk``/``x5c`` (the token
carries its own key) can only be an attempt to make a verifier trust an attacker's key
(RFC 8725 §3.10). ``b64`` (RFC 7797) changes what is signed.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import Algorithm, get_default_algorithms

from authsvc.issuers.claims import Conditions, first_failed_condition
from authsvc.issuers.jwks import SUBJECT_ALGORITHMS, IssuerKey, is_valid_kid

__all__ = [
    "MAX_LEEWAY_S",
    "MAX_SUBJECT_TOKEN_BYTES",
    "KeyResolver",
    "RejectCode",
    "Rejected",
    "SubjectResult",
    "Verified",
    "verify_subject_token",
]

MAX_LEEWAY_S: Final = 60.0
MAX_SUBJECT_TOKEN_BYTES: Final = 8192

RejectCode: TypeAlias = Literal["MALFORMED", "INVALID_SIGNATURE", "EXPIRED", "CONDITION_FAILED"]
KeyResolver: TypeAlias = Callable[[str], Awaitable[IssuerKey | None]]

# PyJWT's algorithm objects for the allow-list only; never looked up by an arbitrary header.
_VERIFIERS: Final[Mapping[str, Algorithm]] = {
    name: algo for name, algo in get_default_algorithms().items() if name in SUBJECT_ALGORITHMS
}
# RFC 7515 §3.1, §7.1: three unpadded base64url segments (RFC 7515 §2). An empty signature is
# let through so that an unsecured ``alg: none`` token is reported as what it is.
_COMPACT: Final = re.compile(rb"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")
# Canonical base64url (RFC 4648 §3.5): unused trailing bits must be zero (no malleable strings).
_LAST_CHAR_OK: Final = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}
_TO_STANDARD_B64: Final = bytes.maketrans(b"-_", b"+/")
# RFC 7515 §4.1.9: "application/" may be omitted and media types compare case-insensitively.
_TYP_OK: Final = frozenset({"jwt", "application/jwt", "at+jwt", "application/at+jwt"})
_FORBIDDEN_HEADERS: Final = ("jku", "jwk", "x5u", "x5c", "b64")
_SIG_LEN_FIXED: Final[Mapping[str, int]] = {"ES256": 64, "EdDSA": 64}  # RFC 7518 §3.4, 8032


@dataclass(frozen=True, slots=True)
class Verified:
    claims: dict[str, Any]
    header: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    code: RejectCode
    reason: str


SubjectResult: TypeAlias = Verified | Rejected


def _malformed(reason: str) -> Rejected:
    return Rejected("MALFORMED", reason)


def _invalid(reason: str) -> Rejected:
    return Rejected("INVALID_SIGNATURE", reason)


_R_NOT_STRING = _malformed("token is not a string")
_R_TOO_LARGE = _malformed("token is too large")
_R_NOT_COMPACT = _malformed("token is not a compact JWS of three base64url segments")
_R_BAD_B64 = _malformed("token segment is not canonical base64url")
_R_HEADER = _malformed("header is not a JSON object")
_R_NO_ALG = _invalid("header has no algorithm")
_R_ALG_NONE = _invalid("unsecured tokens (alg none) are not accepted")
_R_ALG_NOT_ALLOWED = _invalid("algorithm is not allowed for this issuer")
_R_TYP = _malformed("typ is not JWT or at+jwt")
_R_CRIT = _malformed("critical header extensions are not supported")
_R_FORBIDDEN = {
    name: _malformed(f"header parameter {name} is not accepted") for name in _FORBIDDEN_HEADERS
}
_R_NO_KID = _invalid("header has no key id")
_R_UNKNOWN_KID = _invalid("unknown signing key")
_R_ALG_MISMATCH = _invalid("algorithm is not allowed for the signing key")
_R_BAD_SIG = _invalid("signature verification failed")
_R_PAYLOAD = _malformed("payload is not a JSON object")
_R_ISS = _malformed("issuer is not accepted")
_R_AUD = _malformed("audience is not accepted")
_R_EXP = _malformed("claim exp is missing or invalid")
_R_NBF_TYPE = _malformed("claim nbf is invalid")
_R_IAT_TYPE = _malformed("claim iat is invalid")
_R_EVENTS = _malformed("security event tokens are not accepted")
_R_EXPIRED = Rejected("EXPIRED", "token has expired")
_R_NOT_YET = _malformed("token is not yet valid")
_R_IAT_FUTURE = _malformed("token is issued in the future")


def _is_canonical(segment: bytes) -> bool:
    rem = len(segment) % 4
    return rem == 0 or (rem != 1 and segment[-1] in _LAST_CHAR_OK[rem])


def _b64decode(segment: bytes) -> bytes:
    return binascii.a2b_base64(segment.translate(_TO_STANDARD_B64) + b"=" * (-len(segment) % 4))


def _object_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7515 §5.2 / RFC 7519 §4: duplicate member names are refused rather than "last wins",
    # so no other parser can read a different claim set out of the same token.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _reject_constant(_name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_object_hook, parse_constant=_reject_constant)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        obj = _DECODER.decode(raw.decode("utf-8"))  # RFC 8725 §3.7: UTF-8 only
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _number(value: object) -> float | None:
    """A finite NumericDate (RFC 7519 §2) bounded to 64-bit integers; booleans are not."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 63:
        return value
    return None


def _signature_length(key: IssuerKey, alg: str) -> int:
    if isinstance(key.public_key, rsa.RSAPublicKey):
        return (key.public_key.key_size + 7) // 8  # RFC 8017 §8.1.2, §8.2.2: k octets
    return _SIG_LEN_FIXED[alg]


def _check_arguments(
    issuer: str,
    audiences: Collection[str],
    algorithms: Collection[str],
    now: float,
    leeway_s: float,
    max_bytes: int,
) -> None:
    if not isinstance(issuer, str) or not issuer:
        raise ValueError("issuer must be a non-empty string")
    if isinstance(audiences, str) or not audiences:
        raise ValueError("audiences must be a non-empty collection of strings")
    if isinstance(algorithms, str) or not algorithms:
        raise ValueError("algorithms must be a non-empty collection")
    if not set(algorithms) <= set(SUBJECT_ALGORITHMS):
        raise ValueError("algorithms outside the allow-list")
    if not math.isfinite(now):
        raise ValueError("now must be a finite Unix time")
    if not 0 <= leeway_s <= MAX_LEEWAY_S:
        raise ValueError("leeway_s must be between 0 and 60 seconds")
    if not 0 < max_bytes <= MAX_SUBJECT_TOKEN_BYTES:
        raise ValueError("max_token_bytes must be between 1 and 8192")


async def verify_subject_token(
    token: object,
    *,
    resolve_key: KeyResolver,
    issuer: str,
    audiences: Collection[str],
    algorithms: Collection[str],
    now: float,
    conditions: Conditions = (),
    leeway_s: float = 30.0,
    max_token_bytes: int = MAX_SUBJECT_TOKEN_BYTES,
) -> SubjectResult:
    """Verify an IdP's JWT for a token exchange; see the module docstring for each rejection.

    ``resolve_key(kid)`` returns the issuer's key (``JwksClient.resolver(source)``) or
    ``None``; it is awaited at most once, only with a kid that passed :func:`is_valid_kid`.
    ``now`` is Unix time from the injected clock.
    """
    _check_arguments(issuer, audiences, algorithms, now, leeway_s, max_token_bytes)

    # RFC 8725 §3: cheapest checks first, size before any parsing.
    if isinstance(token, str):
        if len(token) > max_token_bytes:
            return _R_TOO_LARGE
        try:
            data = token.encode("ascii")  # RFC 7515 §7.1: a compact JWS is ASCII
        except UnicodeEncodeError:
            return _R_NOT_COMPACT
    elif isinstance(token, bytes):
        data = token
    else:
        return _R_NOT_STRING
    if len(data) > max_token_bytes:
        return _R_TOO_LARGE
    match = _COMPACT.fullmatch(data)  # RFC 7515 §7.1: exactly three segments (no JWE, no JSON)
    if match is None:
        return _R_NOT_COMPACT
    header_b64, payload_b64, signature_b64 = match.groups()
    if not (
        _is_canonical(header_b64) and _is_canonical(payload_b64) and _is_canonical(signature_b64)
    ):
        return _R_BAD_B64

    header = _json_object(_b64decode(header_b64))  # RFC 7515 §5.2 steps 2-4
    if header is None:
        return _R_HEADER

    alg = header.get("alg")  # RFC 7515 §4.1.1: REQUIRED
    if not isinstance(alg, str):
        return _R_NO_ALG
    if alg.lower() == "none":  # RFC 8725 §3.1, RFC 7518 §3.6: never an unsecured JWS
        return _R_ALG_NONE
    if alg not in algorithms:  # RFC 8725 §3.1: an allow-list, case-sensitive (RFC 7515 §4.1.1)
        return _R_ALG_NOT_ALLOWED
    typ = header.get("typ")  # RFC 8725 §3.11, RFC 7519 §5.1: explicit typing when present
    if "typ" in header and (not isinstance(typ, str) or typ.lower() not in _TYP_OK):
        return _R_TYP
    if "crit" in header:  # RFC 7515 §4.1.11: refuse what we do not understand (everything)
        return _R_CRIT
    for name in _FORBIDDEN_HEADERS:  # RFC 7515 §4.1.2-4.1.6, RFC 7797, RFC 8725 §3.10
        if name in header:
            return _R_FORBIDDEN[name]

    kid = header.get("kid")  # RFC 7515 §4.1.4; only ever a dictionary key, never a path/URL
    if kid is None:
        return _R_NO_KID
    if not is_valid_kid(kid):
        return _R_UNKNOWN_KID
    assert isinstance(kid, str)
    key = await resolve_key(kid)
    if key is None or key.kid != kid:
        return _R_UNKNOWN_KID
    if alg not in key.algorithms:  # RFC 8725 §3.1: the JWK pins the algorithm (no confusion)
        return _R_ALG_MISMATCH
    # RFC 7515 §5.2 step 8 with the pinned algorithm only, over the ASCII of the first two
    # segments as received (RFC 7515 §5.1 step 5).
    signature = _b64decode(signature_b64)
    if len(signature) != _signature_length(key, alg) or not _VERIFIERS[alg].verify(
        data[: match.end(2)], key.public_key, signature
    ):
        return _R_BAD_SIG

    claims = _json_object(_b64decode(payload_b64))  # RFC 7519 §7.2 step 10, after the signature
    if claims is None:
        return _R_PAYLOAD

    if claims.get("iss") != issuer:  # RFC 7519 §4.1.1, OIDC Core §3.1.3.7 step 2: exact match
        return _R_ISS
    aud = claims.get("aud")  # RFC 7519 §4.1.3, OIDC Core §3.1.3.7 step 3, RFC 8725 §3.9
    if isinstance(aud, str):
        if aud not in audiences:
            return _R_AUD
    elif not isinstance(aud, list) or not any(
        isinstance(item, str) and item in audiences for item in aud
    ):
        return _R_AUD
    exp = _number(claims.get("exp"))  # RFC 7519 §4.1.4; required here (OIDC Core §2)
    if exp is None:
        return _R_EXP
    nbf = _number(claims.get("nbf"))  # RFC 7519 §4.1.5: OPTIONAL NumericDate
    if nbf is None and "nbf" in claims:
        return _R_NBF_TYPE
    iat = _number(claims.get("iat"))  # RFC 7519 §4.1.6: OPTIONAL NumericDate
    if iat is None and "iat" in claims:
        return _R_IAT_TYPE
    if "events" in claims:  # RFC 8417 §2.2: a SET (or a logout token), never an identity
        return _R_EVENTS

    if now >= exp + leeway_s:  # RFC 7519 §4.1.4: now MUST be before exp (+ small leeway)
        return _R_EXPIRED
    if nbf is not None and nbf > now + leeway_s:  # RFC 7519 §4.1.5
        return _R_NOT_YET
    if iat is not None and iat > now + leeway_s:  # RFC 7519 §4.1.6: not issued in the future
        return _R_IAT_FUTURE

    failed = first_failed_condition(claims, conditions)
    if failed is not None:
        return Rejected("CONDITION_FAILED", f"condition on claim '{failed.text}' is not met")
    return Verified(claims=claims, header=header)
