"""RFC 9068 access tokens: the encoder and the one verification function.

Encoding (:func:`sign_access_token`) serialises the claims once with ``msgspec`` (compact
UTF-8 JSON, members in the mapping's order) and hands the octets to a
:class:`~authsvc.signing.jws.JwsSigner`, which holds the key, the encoded header and the
signature function, built once per key (the keyring keeps one per tenant). Per token that is
one JSON encoding, two base64url encodings and one signature. :func:`encode_access_token`
builds a throwaway signer for one-off tokens. A non-finite float is refused rather than
encoded: ``msgspec`` writes NaN and Infinity as ``null``, which would change the claim.

:func:`verify_access_token` is the only place a JWT is accepted. It never raises for any
token value: a denial is data, a :class:`Rejected` with a stable ``code`` and a short
``reason`` that never echoes token content. It raises only for caller bugs (a leeway above
30 s, an empty audience list, ...) and lets an exception from ``resolve_key`` propagate
(a key-store outage must not turn into "invalid token").

The parsing is done here, not by ``jwt.decode``: PyJWT reads the wall clock, decodes every
segment before checking anything and lets the header choose among several algorithms. Here
the header is parsed once, every cheap check runs before any crypto, the signature is checked
by PyJWT's algorithm object for the **one algorithm pinned to the kid**, and the payload JSON
is parsed only once the signature holds.

Rejection codes
===============

Rule: ``INVALID_SIGNATURE`` means authenticity could not be established; ``MALFORMED`` means
the token is unparseable, or does not fit the access-token profile of this verifier (even if
authentic); ``EXPIRED`` means authentic, well-formed and past ``exp``. Checks run in this
order and the first failure wins. ``NOT_FOUND`` (an unknown credential) is never produced: an
unknown ``kid`` is indistinguishable from a forgery, so it is ``INVALID_SIGNATURE``.

=====  ===================  ===========================================================
step   code                 condition
=====  ===================  ===========================================================
1      MALFORMED            not str/bytes; more than ``max_token_bytes``; not exactly three
                            unpadded base64url segments; non-canonical base64url
2      MALFORMED            header is not a UTF-8 JSON object (duplicate names refused)
3      INVALID_SIGNATURE    ``alg`` missing, not a string, or ``none`` in any case
4      MALFORMED            ``typ`` is not ``at+jwt`` / ``application/at+jwt``
5      MALFORMED            ``crit`` present (we understand no extension)
6      MALFORMED            ``jku``, ``jwk``, ``x5u``, ``x5c`` or ``b64`` present
7      INVALID_SIGNATURE    ``kid`` missing, not of our kid alphabet, or unknown
8      INVALID_SIGNATURE    ``alg`` differs from the algorithm pinned to the kid
9      INVALID_SIGNATURE    signature of the wrong length or not valid
10     MALFORMED            payload is not a UTF-8 JSON object (duplicate names refused)
11     MALFORMED            ``iss`` is not exactly ``issuer``
12     MALFORMED            ``aud`` missing, or names none of ``audiences``
13     MALFORMED            ``sub``, ``client_id``, ``jti`` not non-empty strings; ``exp``,
                            ``iat`` not finite numbers; ``nbf`` present and not one
14     EXPIRED              ``now >= exp + leeway``
15     MALFORMED            ``nbf > now + leeway`` (not yet valid)
16     MALFORMED            ``iat > now + leeway`` (issued in the future)
=====  ===================  ===========================================================

Why the key-bearing headers are refused outright (step 6) rather than ignored: keys come only
from ``resolve_key`` (our own store), so ``jku``/``x5u`` (fetch a key from a URL: SSRF and
key injection) and ``jwk``/``x5c`` (the token carries its own key) can only ever be attempts to
make a verifier trust an attacker's key (RFC 8725 §3.10). ``b64`` (RFC 7797) changes what is
signed; we never emit it. Refusing them also protects any sloppier downstream verifier.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

import msgspec
from jwt.algorithms import Algorithm, get_default_algorithms

from authsvc.clock import MAX_CLOCK_SKEW_S
from authsvc.signing.crypto import (
    ALGORITHMS,
    Alg,
    ResolvedKey,
    SigningPrivateKey,
)
from authsvc.signing.jws import HEADER_TYP, KID_PATTERN, JwsSigner

__all__ = [
    "MAX_LEEWAY_S",
    "REQUIRED_CLAIMS",
    "TOKEN_TYPE",
    "RejectCode",
    "Rejected",
    "ResolvedKey",
    "Verified",
    "VerifyResult",
    "encode_access_token",
    "sign_access_token",
    "unverified_kid",
    "verify_access_token",
]

TOKEN_TYPE: Final = HEADER_TYP  # RFC 9068 §2.1
MAX_LEEWAY_S: Final = MAX_CLOCK_SKEW_S
# RFC 9068 §2.2: every one of these is REQUIRED in a JWT access token.
REQUIRED_CLAIMS: Final = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
_REQUIRED_SET: Final = frozenset(REQUIRED_CLAIMS)

RejectCode: TypeAlias = Literal["MALFORMED", "INVALID_SIGNATURE", "EXPIRED"]

# PyJWT's algorithm objects, only the three we pin; never looked up by a header value.
_VERIFIERS: Final[Mapping[str, Algorithm]] = {
    name: algo for name, algo in get_default_algorithms().items() if name in ALGORITHMS
}
# Compact serialization (RFC 7515 §3.1, §7.1): three base64url segments without padding
# (RFC 7515 §2). The signature segment may be empty so that an unsecured ``alg: none``
# token reaches the alg check and is reported as what it is.
_COMPACT: Final = re.compile(rb"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")
_B64URL: Final = re.compile(rb"[A-Za-z0-9_-]+")
_KID: Final = KID_PATTERN
# Canonical base64url (RFC 4648 §3.5): the unused low bits of the last char must be zero,
# otherwise several strings would decode to the same bytes (a malleable token string).
_LAST_CHAR_OK: Final = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}
_TO_STANDARD_B64: Final = bytes.maketrans(b"-_", b"+/")
_TYP_OK: Final = frozenset({"at+jwt", "application/at+jwt"})
_FORBIDDEN_HEADERS: Final = ("jku", "jwk", "x5u", "x5c", "b64")


# --------------------------------------------------------------------------- result types


@dataclass(frozen=True, slots=True)
class Verified:
    claims: dict[str, Any]
    header: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    code: RejectCode
    reason: str


VerifyResult: TypeAlias = Verified | Rejected


def _malformed(reason: str) -> Rejected:
    return Rejected("MALFORMED", reason)


def _invalid(reason: str) -> Rejected:
    return Rejected("INVALID_SIGNATURE", reason)


# Shared instances: rejections are immutable, the hot path allocates nothing to refuse.
_R_NOT_STRING = _malformed("token is not a string")
_R_TOO_LARGE = _malformed("token is too large")
_R_NOT_COMPACT = _malformed("token is not a compact JWS of three base64url segments")
_R_BAD_B64 = _malformed("token segment is not canonical base64url")
_R_HEADER = _malformed("header is not a JSON object")
_R_NO_ALG = _invalid("header has no algorithm")
_R_ALG_NONE = _invalid("unsecured tokens (alg none) are not accepted")
_R_TYP = _malformed("typ is not at+jwt")
_R_CRIT = _malformed("critical header extensions are not supported")
_R_FORBIDDEN = {
    name: _malformed(f"header parameter {name} is not accepted") for name in _FORBIDDEN_HEADERS
}
_R_NO_KID = _invalid("header has no key id")
_R_UNKNOWN_KID = _invalid("unknown signing key")
_R_ALG_MISMATCH = _invalid("algorithm does not match the signing key")
_R_BAD_SIG = _invalid("signature verification failed")
_R_PAYLOAD = _malformed("payload is not a JSON object")
_R_ISS = _malformed("issuer is not accepted")
_R_AUD = _malformed("audience is not accepted")
_R_CLAIM = {name: _malformed(f"claim {name} is missing or invalid") for name in REQUIRED_CLAIMS}
_R_NBF_TYPE = _malformed("claim nbf is invalid")
_R_EXPIRED = Rejected("EXPIRED", "token has expired")
_R_NOT_YET = _malformed("token is not yet valid")
_R_IAT_FUTURE = _malformed("token is issued in the future")


# --------------------------------------------------------------------------- parsing helpers


def _is_canonical(segment: bytes) -> bool:
    """Length and trailing bits of an unpadded base64url segment (alphabet already checked)."""
    rem = len(segment) % 4
    return rem == 0 or (rem != 1 and segment[-1] in _LAST_CHAR_OK[rem])


def _b64decode(segment: bytes) -> bytes:
    """Decode a segment that passed the alphabet check and :func:`_is_canonical`."""
    return binascii.a2b_base64(segment.translate(_TO_STANDARD_B64) + b"=" * (-len(segment) % 4))


def _object_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7515 §5.2 / RFC 7519 §4: we reject duplicate member names rather than take the
    # last one, so no other parser can read a different claim set out of the same token.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")  # would defeat every time comparison


_encode_json: Final = msgspec.json.encode
_DECODER: Final = json.JSONDecoder(object_pairs_hook=_object_hook, parse_constant=_reject_constant)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        # RFC 8725 §3.7: UTF-8 only (json.loads(bytes) would also guess UTF-16/32).
        obj = _DECODER.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _number(value: object) -> float | None:
    """A finite JSON number (RFC 7519 §2 NumericDate), else ``None``; booleans are not.

    Integers are bounded to 64 bits: a 400-digit integer is valid JSON but would raise
    ``OverflowError`` when compared with a float.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 63:
        return value
    return None


def _is_text(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _check_arguments(
    issuer: str, audiences: Collection[str], now: float, leeway_s: float, max_bytes: int
) -> None:
    if not isinstance(issuer, str) or not issuer:
        raise ValueError("issuer must be a non-empty string")
    if isinstance(audiences, str) or not audiences:
        raise ValueError("audiences must be a non-empty collection of strings")
    if not math.isfinite(now):
        raise ValueError("now must be a finite Unix time")
    if not 0 <= leeway_s <= MAX_LEEWAY_S:
        raise ValueError("leeway_s must be between 0 and 30 seconds")
    if max_bytes <= 0:
        raise ValueError("max_token_bytes must be positive")


# --------------------------------------------------------------------------- encoder


def sign_access_token(claims: Mapping[str, Any], signer: JwsSigner) -> str:
    """Sign ``claims`` as an RFC 9068 access token with a signer prepared for its key.

    ``ValueError`` if a claim required by RFC 9068 §2.2 is missing, or a claim is not JSON
    (a NaN or infinite float, a string with a lone surrogate).
    """
    if not claims.keys() >= _REQUIRED_SET:
        missing = [name for name in REQUIRED_CLAIMS if name not in claims]
        raise ValueError(f"missing required claims: {', '.join(missing)}")
    # RFC 7519 §7.1 steps 1-2: the Message is the UTF-8 of the claims set, here compact JSON
    # (RFC 8259 §8.1) with the members in the mapping's order and non-ASCII left unescaped.
    payload = _encode_json(claims if type(claims) is dict else dict(claims))
    if b"null" in payload and _has_non_finite(claims):  # a real null needs no walk
        raise ValueError("claims must be JSON: NaN and Infinity are not numbers (RFC 8259 §6)")
    return signer.sign(payload)  # RFC 7519 §7.1 step 4: a JWS with the Message as payload


def encode_access_token(
    claims: Mapping[str, Any], *, private_key: SigningPrivateKey, kid: str, alg: Alg
) -> str:
    """Sign ``claims`` as an RFC 9068 access token with header ``{alg, kid, typ: at+jwt}``.

    Builds a signer for this one token; whatever signs repeatedly with the same key keeps a
    :class:`JwsSigner` and calls :func:`sign_access_token`. ``ValueError`` if the key does not
    belong to ``alg``, the kid is not of our alphabet, or :func:`sign_access_token` refuses.
    """
    return sign_access_token(claims, JwsSigner(private_key, kid=kid, alg=alg))


def _has_non_finite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(item) for item in value)
    return False


# --------------------------------------------------------------------------- verification


def unverified_kid(token: str | bytes) -> str | None:
    """The ``kid`` of a token's header, unverified, or ``None``; for cache look-ups only."""
    try:
        data = token.encode("ascii") if isinstance(token, str) else token
        if not isinstance(data, bytes) or len(data) > 8192:
            return None
        header_b64 = data.partition(b".")[0]
        if not (_B64URL.fullmatch(header_b64) and _is_canonical(header_b64)):
            return None
        header = _json_object(_b64decode(header_b64))
    except (ValueError, TypeError):
        return None
    kid = None if header is None else header.get("kid")
    return kid if isinstance(kid, str) and _KID.fullmatch(kid) else None


def verify_access_token(
    token: str | bytes,
    *,
    resolve_key: Callable[[str], ResolvedKey | None],
    issuer: str,
    audiences: Collection[str],
    now: float,
    leeway_s: float = 10,
    max_token_bytes: int = 8192,
) -> VerifyResult:
    """Verify an RFC 9068 access token; see the module docstring for every rejection.

    ``resolve_key(kid)`` returns the tenant's key for that kid (already parsed), or ``None``.
    It is called at most once, and only with a kid of our alphabet (``[A-Za-z0-9_-]{1,64}``).
    ``now`` is Unix time from the injected clock; PyJWT's own wall-clock checks are not used.
    """
    _check_arguments(issuer, audiences, now, leeway_s, max_token_bytes)

    # RFC 9068 §4 / RFC 8725 §3: cheapest checks first, size before any parsing.
    if isinstance(token, str):
        if len(token) > max_token_bytes:  # chars <= UTF-8 bytes: a cheap first cut
            return _R_TOO_LARGE
        try:
            data = token.encode("ascii")  # a compact JWS is ASCII only (RFC 7515 §7.1)
        except UnicodeEncodeError:
            return _R_NOT_COMPACT
    elif isinstance(token, bytes):
        data = token
    else:
        return _R_NOT_STRING
    if len(data) > max_token_bytes:
        return _R_TOO_LARGE
    match = _COMPACT.fullmatch(data)  # RFC 7515 §7.1: exactly three segments
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
    if alg.lower() == "none":  # RFC 8725 §3.1, RFC 7518 §3.6: unsecured JWS never accepted
        return _R_ALG_NONE
    typ = header.get("typ")  # RFC 9068 §4 (explicit typing, RFC 8725 §3.11; §4.1.9 no case)
    if not isinstance(typ, str) or typ.lower() not in _TYP_OK:
        return _R_TYP
    if "crit" in header:  # RFC 7515 §4.1.11: reject what we do not understand (everything)
        return _R_CRIT
    for name in _FORBIDDEN_HEADERS:  # RFC 7515 §4.1.2-4.1.6, RFC 7797, RFC 8725 §3.10
        if name in header:
            return _R_FORBIDDEN[name]

    kid = header.get("kid")  # RFC 7515 §4.1.4; RFC 8725 §3.10: never used as a path or query
    if not isinstance(kid, str):
        return _R_NO_KID
    if not _KID.fullmatch(kid):
        return _R_UNKNOWN_KID
    key = resolve_key(kid)
    if key is None or key.kid != kid:
        return _R_UNKNOWN_KID
    if alg != key.alg:  # RFC 8725 §3.1: one algorithm per key, exact match (kills confusion)
        return _R_ALG_MISMATCH
    # RFC 7515 §5.2 step 8: verify with the pinned algorithm only. The signing input is the
    # ASCII of the first two segments as received (RFC 7515 §5.1 step 5).
    signature = _b64decode(signature_b64)
    if len(signature) != key.signature_length or not _VERIFIERS[key.alg].verify(
        data[: match.end(2)], key.public_key, signature
    ):
        return _R_BAD_SIG

    claims = _json_object(_b64decode(payload_b64))  # RFC 7519 §7.2, after the signature
    if claims is None:
        return _R_PAYLOAD

    if claims.get("iss") != issuer:  # RFC 7519 §4.1.1, RFC 9068 §4 (exact match)
        return _R_ISS
    aud = claims.get("aud")  # RFC 7519 §4.1.3, RFC 9068 §4, RFC 8725 §3.9
    if isinstance(aud, str):
        if aud not in audiences:
            return _R_AUD
    elif not isinstance(aud, list) or not any(
        isinstance(item, str) and item in audiences for item in aud
    ):
        return _R_AUD
    for name in ("sub", "client_id", "jti"):  # RFC 9068 §2.2: REQUIRED strings
        if not _is_text(claims.get(name)):
            return _R_CLAIM[name]
    exp = _number(claims.get("exp"))  # RFC 9068 §2.2: REQUIRED NumericDate
    if exp is None:
        return _R_CLAIM["exp"]
    iat = _number(claims.get("iat"))  # RFC 9068 §2.2: REQUIRED NumericDate
    if iat is None:
        return _R_CLAIM["iat"]
    nbf = _number(claims.get("nbf"))  # RFC 7519 §4.1.5: OPTIONAL NumericDate
    if nbf is None and "nbf" in claims:
        return _R_NBF_TYPE

    if now >= exp + leeway_s:  # RFC 7519 §4.1.4: now MUST be before exp (+ small leeway)
        return _R_EXPIRED
    if nbf is not None and nbf > now + leeway_s:  # RFC 7519 §4.1.5
        return _R_NOT_YET
    if iat > now + leeway_s:  # RFC 7519 §4.1.6, RFC 9068 §4: not issued in the future
        return _R_IAT_FUTURE
    return Verified(claims=claims, header=header)
