"""The compact JWS reader both JWT verifiers share: our access tokens
(:mod:`authsvc.tokens.jwt`) and identity providers' tokens (:mod:`authsvc.issuers.subject`).

It holds the steps that do not depend on whose token it is: the framing (RFC 7515 §7.1), the
strict JSON of the header and the payload, the header parameters nobody here understands, the
``iss``/``aud`` match and the time claims (RFC 7519 §4.1). Each verifier keeps its own order
of checks, its own ``typ`` and ``kid`` rules and the key lookup. A denial is a value: every
function returns a :class:`Rejected` (shared, immutable instances; the reason never echoes token
content) or what the next step needs.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

RejectCode: TypeAlias = Literal["MALFORMED", "INVALID_SIGNATURE", "EXPIRED", "CONDITION_FAILED"]


@dataclass(frozen=True, slots=True)
class Verified:
    claims: dict[str, Any]
    header: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    code: RejectCode
    reason: str


def malformed(reason: str) -> Rejected:
    return Rejected("MALFORMED", reason)


def invalid(reason: str) -> Rejected:
    return Rejected("INVALID_SIGNATURE", reason)


FORBIDDEN_HEADERS: Final = ("jku", "jwk", "x5u", "x5c", "b64")

R_NOT_STRING: Final = malformed("token is not a string")
R_TOO_LARGE: Final = malformed("token is too large")
R_NOT_COMPACT: Final = malformed("token is not a compact JWS of three base64url segments")
R_BAD_B64: Final = malformed("token segment is not canonical base64url")
R_HEADER: Final = malformed("header is not a JSON object")
R_NO_ALG: Final = invalid("header has no algorithm")
R_ALG_NONE: Final = invalid("unsecured tokens (alg none) are not accepted")
R_CRIT: Final = malformed("critical header extensions are not supported")
R_FORBIDDEN: Final = {
    name: malformed(f"header parameter {name} is not accepted") for name in FORBIDDEN_HEADERS
}
R_NO_KID: Final = invalid("header has no key id")
R_UNKNOWN_KID: Final = invalid("unknown signing key")
R_BAD_SIG: Final = invalid("signature verification failed")
R_PAYLOAD: Final = malformed("payload is not a JSON object")
R_ISS: Final = malformed("issuer is not accepted")
R_AUD: Final = malformed("audience is not accepted")
R_NBF_TYPE: Final = malformed("claim nbf is invalid")
R_EXPIRED: Final = Rejected("EXPIRED", "token has expired")
R_NOT_YET: Final = malformed("token is not yet valid")
R_IAT_FUTURE: Final = malformed("token is issued in the future")

# RFC 7515 §3.1, §7.1: three unpadded base64url segments (RFC 7515 §2). The signature may be
# empty so that an unsecured ``alg: none`` token reaches the alg check and is named as such.
_COMPACT: Final = re.compile(rb"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")
_B64URL: Final = re.compile(rb"[A-Za-z0-9_-]+")
# Canonical base64url (RFC 4648 §3.5): the unused low bits of the last char must be zero,
# otherwise several strings would decode to the same bytes (a malleable token string).
_LAST_CHAR_OK: Final = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}
_TO_STANDARD_B64: Final = bytes.maketrans(b"-_", b"+/")


@dataclass(frozen=True, slots=True)
class Compact:
    """A token that passed the framing and whose header is a JSON object (steps 1-2)."""

    data: bytes
    header: dict[str, Any]
    payload_b64: bytes
    signature_b64: bytes

    @property
    def signing_input(self) -> bytes:
        # RFC 7515 §5.1 step 5: the ASCII of the first two segments as received
        return self.data[: len(self.data) - len(self.signature_b64) - 1]

    def signature(self) -> bytes:
        return b64decode(self.signature_b64)

    def claims(self) -> dict[str, Any] | None:
        """The payload as a JSON object; read only once the signature holds (RFC 7519 §7.2)."""
        return json_object(b64decode(self.payload_b64))


def is_canonical(segment: bytes) -> bool:
    """Length and trailing bits of an unpadded base64url segment (alphabet already checked)."""
    rem = len(segment) % 4
    return rem == 0 or (rem != 1 and segment[-1] in _LAST_CHAR_OK[rem])


def b64decode(segment: bytes) -> bytes:
    """Decode a segment that passed the alphabet check and :func:`is_canonical`."""
    return binascii.a2b_base64(segment.translate(_TO_STANDARD_B64) + b"=" * (-len(segment) % 4))


def _object_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7515 §5.2 / RFC 7519 §4: duplicate member names are refused rather than "last wins",
    # so no other parser can read a different claim set out of the same token.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _reject_constant(_name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")  # would defeat every time comparison


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_object_hook, parse_constant=_reject_constant)


def json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        # RFC 8725 §3.7: UTF-8 only (json.loads(bytes) would also guess UTF-16/32).
        obj = _DECODER.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def number(value: object) -> float | None:
    """A finite JSON number (RFC 7519 §2 NumericDate), else ``None``; booleans are not.

    Integers are bounded to 64 bits: a 400-digit integer is valid JSON but would raise
    ``OverflowError`` when compared with a float.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 63:
        return value
    return None


def read(token: object, max_bytes: int) -> Compact | Rejected:
    """Steps 1-2: size before any parsing (RFC 8725 §3), framing, canonical base64url, and a
    header that is a UTF-8 JSON object (RFC 7515 §5.2 steps 2-4)."""
    if isinstance(token, str):
        if len(token) > max_bytes:  # chars <= UTF-8 bytes: a cheap first cut
            return R_TOO_LARGE
        try:
            data = token.encode("ascii")  # RFC 7515 §7.1: a compact JWS is ASCII
        except UnicodeEncodeError:
            return R_NOT_COMPACT
    elif isinstance(token, bytes):
        data = token
    else:
        return R_NOT_STRING
    if len(data) > max_bytes:
        return R_TOO_LARGE
    match = _COMPACT.fullmatch(data)  # RFC 7515 §7.1: exactly three segments (no JWE, no JSON)
    if match is None:
        return R_NOT_COMPACT
    header_b64, payload_b64, signature_b64 = match.groups()
    if not (is_canonical(header_b64) and is_canonical(payload_b64) and is_canonical(signature_b64)):
        return R_BAD_B64
    header = json_object(b64decode(header_b64))
    if header is None:
        return R_HEADER
    return Compact(data, header, payload_b64, signature_b64)


def unverified_header(token: str | bytes, max_bytes: int = 8192) -> dict[str, Any] | None:
    """The header of a token, unverified, or ``None``: for cache look-ups and routing only."""
    try:
        data = token.encode("ascii") if isinstance(token, str) else token
        if not isinstance(data, bytes) or len(data) > max_bytes:
            return None
        header_b64 = data.partition(b".")[0]
        if not (_B64URL.fullmatch(header_b64) and is_canonical(header_b64)):
            return None
        return json_object(b64decode(header_b64))
    except (ValueError, TypeError):
        return None


def unverified_issuer(token: str, max_bytes: int = 8192) -> str | None:
    """The ``iss`` of a token's payload, unverified, or ``None``: only to choose whose keys
    verify it (a trusted issuer), or to tell another issuer's token from a forgery."""
    if len(token) > max_bytes:
        return None
    payload_b64 = token.split(".", 2)[1:2]
    try:
        data = payload_b64[0].encode("ascii") if payload_b64 else b""
    except UnicodeEncodeError:
        return None
    if not (_B64URL.fullmatch(data) and is_canonical(data)):
        return None
    claims = json_object(b64decode(data))
    iss = None if claims is None else claims.get("iss")
    return iss if isinstance(iss, str) else None


def algorithm(header: dict[str, Any]) -> str | Rejected:
    alg = header.get("alg")  # RFC 7515 §4.1.1: REQUIRED
    if not isinstance(alg, str):
        return R_NO_ALG
    if alg.lower() == "none":  # RFC 8725 §3.1, RFC 7518 §3.6: never an unsecured JWS
        return R_ALG_NONE
    return alg


def extensions(header: dict[str, Any]) -> Rejected | None:
    """Header parameters that are refused outright: see the verifiers' docstrings for why."""
    if "crit" in header:  # RFC 7515 §4.1.11: refuse what we do not understand (everything)
        return R_CRIT
    for name in FORBIDDEN_HEADERS:  # RFC 7515 §4.1.2-4.1.6, RFC 7797, RFC 8725 §3.10
        if name in header:
            return R_FORBIDDEN[name]
    return None


def addressed(claims: dict[str, Any], issuer: str, audiences: Collection[str]) -> Rejected | None:
    """``iss`` exactly ``issuer`` (RFC 7519 §4.1.1) and ``aud`` naming one of ``audiences``
    (RFC 7519 §4.1.3, RFC 8725 §3.9)."""
    if claims.get("iss") != issuer:
        return R_ISS
    aud = claims.get("aud")
    if isinstance(aud, str):
        if aud not in audiences:
            return R_AUD
    elif not isinstance(aud, list) or not any(
        isinstance(item, str) and item in audiences for item in aud
    ):
        return R_AUD
    return None


def timely(
    exp: float, nbf: float | None, iat: float | None, now: float, leeway_s: float
) -> Rejected | None:
    if now >= exp + leeway_s:  # RFC 7519 §4.1.4: now MUST be before exp (+ small leeway)
        return R_EXPIRED
    if nbf is not None and nbf > now + leeway_s:  # RFC 7519 §4.1.5
        return R_NOT_YET
    if iat is not None and iat > now + leeway_s:  # RFC 7519 §4.1.6: not issued in the future
        return R_IAT_FUTURE
    return None


def check_window(now: float, leeway_s: float, max_leeway_s: float) -> None:
    """Caller bugs, not token faults: raise ``ValueError``."""
    if not math.isfinite(now):
        raise ValueError("now must be a finite Unix time")
    if not 0 <= leeway_s <= max_leeway_s:
        raise ValueError(f"leeway_s must be between 0 and {max_leeway_s:g} seconds")


def check_addressing(issuer: str, audiences: Collection[str]) -> None:
    if not isinstance(issuer, str) or not issuer:
        raise ValueError("issuer must be a non-empty string")
    if isinstance(audiences, str) or not audiences:
        raise ValueError("audiences must be a non-empty collection of strings")
