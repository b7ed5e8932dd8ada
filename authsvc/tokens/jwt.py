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

import math
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final, TypeAlias

import msgspec
from jwt.algorithms import Algorithm, get_default_algorithms

from authsvc import compact_jws as jws
from authsvc.clock import MAX_CLOCK_SKEW_S
from authsvc.compact_jws import RejectCode, Rejected, Verified
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

# PyJWT's algorithm objects, only the three we pin; never looked up by a header value.
_VERIFIERS: Final[Mapping[str, Algorithm]] = {
    name: algo for name, algo in get_default_algorithms().items() if name in ALGORITHMS
}
_KID: Final = KID_PATTERN
_TYP_OK: Final = frozenset({"at+jwt", "application/at+jwt"})

VerifyResult: TypeAlias = Verified | Rejected

_R_TYP: Final = jws.malformed("typ is not at+jwt")
_R_ALG_MISMATCH: Final = jws.invalid("algorithm does not match the signing key")
_R_CLAIM: Final = {
    name: jws.malformed(f"claim {name} is missing or invalid") for name in REQUIRED_CLAIMS
}

_encode_json: Final = msgspec.json.encode


def _is_text(value: object) -> bool:
    return isinstance(value, str) and value != ""


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
    header = jws.unverified_header(token)
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
    jws.check_addressing(issuer, audiences)
    jws.check_window(now, leeway_s, MAX_LEEWAY_S)
    if max_token_bytes <= 0:
        raise ValueError("max_token_bytes must be positive")

    compact = jws.read(token, max_token_bytes)  # steps 1-2 (RFC 9068 §4, RFC 8725 §3)
    if isinstance(compact, Rejected):
        return compact
    header = compact.header
    alg = jws.algorithm(header)  # step 3
    if isinstance(alg, Rejected):
        return alg
    typ = header.get("typ")  # RFC 9068 §4 (explicit typing, RFC 8725 §3.11; §4.1.9 no case)
    if not isinstance(typ, str) or typ.lower() not in _TYP_OK:
        return _R_TYP
    refused = jws.extensions(header)  # steps 5-6
    if refused is not None:
        return refused

    kid = header.get("kid")  # RFC 7515 §4.1.4; RFC 8725 §3.10: never used as a path or query
    if not isinstance(kid, str):
        return jws.R_NO_KID
    if not _KID.fullmatch(kid):
        return jws.R_UNKNOWN_KID
    key = resolve_key(kid)
    if key is None or key.kid != kid:
        return jws.R_UNKNOWN_KID
    if alg != key.alg:  # RFC 8725 §3.1: one algorithm per key, exact match (kills confusion)
        return _R_ALG_MISMATCH
    # RFC 7515 §5.2 step 8: verify with the pinned algorithm only.
    signature = compact.signature()
    if len(signature) != key.signature_length or not _VERIFIERS[key.alg].verify(
        compact.signing_input, key.public_key, signature
    ):
        return jws.R_BAD_SIG

    claims = compact.claims()  # RFC 7519 §7.2, after the signature
    if claims is None:
        return jws.R_PAYLOAD
    refused = jws.addressed(claims, issuer, audiences)  # RFC 9068 §4: iss exact, aud ours
    if refused is not None:
        return refused
    for name in ("sub", "client_id", "jti"):  # RFC 9068 §2.2: REQUIRED strings
        if not _is_text(claims.get(name)):
            return _R_CLAIM[name]
    exp = jws.number(claims.get("exp"))  # RFC 9068 §2.2: REQUIRED NumericDate
    if exp is None:
        return _R_CLAIM["exp"]
    iat = jws.number(claims.get("iat"))  # RFC 9068 §2.2: REQUIRED NumericDate
    if iat is None:
        return _R_CLAIM["iat"]
    nbf = jws.number(claims.get("nbf"))  # RFC 7519 §4.1.5: OPTIONAL NumericDate
    if nbf is None and "nbf" in claims:
        return jws.R_NBF_TYPE
    refused = jws.timely(exp, nbf, iat, now, leeway_s)  # steps 14-16
    if refused is not None:
        return refused
    return Verified(claims=claims, header=header)
