"""Verification of a subject token: a JWT from a trusted identity provider (RFC 8693 §2.1).

:func:`verify_subject_token` is the only place an IdP token is accepted. It follows
:mod:`authsvc.tokens.jwt` (our own tokens) and differs only where the token is not ours: keys
come from the issuer's JWKS, a key may allow several algorithms, ``typ`` is optional, and only
``iss``, ``aud`` and ``exp`` are required. It never raises for any token value: a denial is a
:class:`Rejected` with a stable ``code`` and a ``reason`` that never echoes token content. It
raises ``ValueError`` for caller bugs (a leeway above 60 s, no audience, no algorithm) and
lets exceptions from ``resolve_key`` propagate:
:class:`~authsvc.issuers.jwks_cache.JwksUnavailable` means the issuer's keys cannot be had (a
503), which must not read as "invalid token".

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

from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Final, TypeAlias

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import Algorithm, get_default_algorithms

from authsvc import compact_jws as jws
from authsvc.compact_jws import RejectCode, Rejected, Verified
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

KeyResolver: TypeAlias = Callable[[str], Awaitable[IssuerKey | None]]
SubjectResult: TypeAlias = Verified | Rejected

# PyJWT's algorithm objects for the allow-list only; never looked up by an arbitrary header.
_VERIFIERS: Final[Mapping[str, Algorithm]] = {
    name: algo for name, algo in get_default_algorithms().items() if name in SUBJECT_ALGORITHMS
}
# RFC 7515 §4.1.9: "application/" may be omitted and media types compare case-insensitively.
_TYP_OK: Final = frozenset({"jwt", "application/jwt", "at+jwt", "application/at+jwt"})
_SIG_LEN_FIXED: Final[Mapping[str, int]] = {"ES256": 64, "EdDSA": 64}  # RFC 7518 §3.4, 8032

_R_ALG_NOT_ALLOWED: Final = jws.invalid("algorithm is not allowed for this issuer")
_R_TYP: Final = jws.malformed("typ is not JWT or at+jwt")
_R_ALG_MISMATCH: Final = jws.invalid("algorithm is not allowed for the signing key")
_R_EXP: Final = jws.malformed("claim exp is missing or invalid")
_R_IAT_TYPE: Final = jws.malformed("claim iat is invalid")
_R_EVENTS: Final = jws.malformed("security event tokens are not accepted")


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
    jws.check_addressing(issuer, audiences)
    if isinstance(algorithms, str) or not algorithms:
        raise ValueError("algorithms must be a non-empty collection")
    if not set(algorithms) <= set(SUBJECT_ALGORITHMS):
        raise ValueError("algorithms outside the allow-list")
    jws.check_window(now, leeway_s, MAX_LEEWAY_S)
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

    compact = jws.read(token, max_token_bytes)  # steps 1-2 (RFC 8725 §3: size first)
    if isinstance(compact, Rejected):
        return compact
    header = compact.header
    alg = jws.algorithm(header)  # step 3
    if isinstance(alg, Rejected):
        return alg
    if alg not in algorithms:  # RFC 8725 §3.1: an allow-list, case-sensitive (RFC 7515 §4.1.1)
        return _R_ALG_NOT_ALLOWED
    typ = header.get("typ")  # RFC 8725 §3.11, RFC 7519 §5.1: explicit typing when present
    if "typ" in header and (not isinstance(typ, str) or typ.lower() not in _TYP_OK):
        return _R_TYP
    refused = jws.extensions(header)  # steps 6-7
    if refused is not None:
        return refused

    kid = header.get("kid")  # RFC 7515 §4.1.4; only ever a dictionary key, never a path/URL
    if kid is None:
        return jws.R_NO_KID
    if not is_valid_kid(kid):
        return jws.R_UNKNOWN_KID
    assert isinstance(kid, str)
    key = await resolve_key(kid)
    if key is None or key.kid != kid:
        return jws.R_UNKNOWN_KID
    if alg not in key.algorithms:  # RFC 8725 §3.1: the JWK pins the algorithm (no confusion)
        return _R_ALG_MISMATCH
    # RFC 7515 §5.2 step 8 with the pinned algorithm only.
    signature = compact.signature()
    if len(signature) != _signature_length(key, alg) or not _VERIFIERS[alg].verify(
        compact.signing_input, key.public_key, signature
    ):
        return jws.R_BAD_SIG

    claims = compact.claims()  # RFC 7519 §7.2 step 10, after the signature
    if claims is None:
        return jws.R_PAYLOAD
    # OIDC Core §3.1.3.7 steps 2-3: iss exact, aud names one of ours
    refused = jws.addressed(claims, issuer, audiences)
    if refused is not None:
        return refused
    exp = jws.number(claims.get("exp"))  # RFC 7519 §4.1.4; required here (OIDC Core §2)
    if exp is None:
        return _R_EXP
    nbf = jws.number(claims.get("nbf"))  # RFC 7519 §4.1.5: OPTIONAL NumericDate
    if nbf is None and "nbf" in claims:
        return jws.R_NBF_TYPE
    iat = jws.number(claims.get("iat"))  # RFC 7519 §4.1.6: OPTIONAL NumericDate
    if iat is None and "iat" in claims:
        return _R_IAT_TYPE
    if "events" in claims:  # RFC 8417 §2.2: a SET (or a logout token), never an identity
        return _R_EVENTS
    refused = jws.timely(exp, nbf, iat, now, leeway_s)  # steps 16-18
    if refused is not None:
        return refused

    failed = first_failed_condition(claims, conditions)
    if failed is not None:
        return Rejected("CONDITION_FAILED", f"condition on claim '{failed.text}' is not met")
    return Verified(claims=claims, header=header)
