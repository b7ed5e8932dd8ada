"""The public keys of a trusted identity provider as a JWKS document gives them: parsing and
key selection (:func:`parse_jwks`). Fetching and caching them is :mod:`authsvc.issuers.jwks_cache`.

A JWKS (RFC 7517 §5) becomes ``kid → IssuerKey``, a ``cryptography`` public key with the set
of algorithms it may verify. Allowed algorithms are RS256, PS256, ES256 and EdDSA only (never
``none``, never HS*: a symmetric key in a public document would be a shared secret).

* RSA (RFC 7518 §6.3.1): 2048 to 8192 bits, odd public exponent 3 .. 2**32 (a huge exponent
  or modulus would make every verification slow);
* EC (RFC 7518 §6.2.1): ``crv`` P-256 only, ``x`` and ``y`` exactly 32 bytes, point on the curve;
* OKP (RFC 8037 §2): ``crv`` Ed25519 only, ``x`` exactly 32 bytes.

A key's usable algorithms are its ``alg`` member if present (RFC 7517 §4.4), else those of its
type (RSA → RS256, PS256; EC P-256 → ES256; OKP → EdDSA), intersected with the issuer's
configured ``algorithms``. A key is skipped, with a logged reason and never its material, when:
``kid`` is missing (the verifier requires one); ``use`` is present and not ``sig`` (§4.2);
``key_ops`` is present without ``verify`` (§4.3); ``kty``/``crv``/``alg`` is unsupported or
inconsistent; no algorithm remains; it carries private members (``d``, ``p``, ``q``, ``dp``,
``dq``, ``qi``, ``oth``, or an ``oct`` ``k``: a JWKS must never carry secrets, so such a key is
refused); or its ``kid`` is shared with another usable key (the key would be ambiguous, and
the key pins the algorithm). ``x5c``/``x5t`` are ignored: the key is ``n``/``e`` or ``x``/``y``.
A document that is not ``{"keys": [...]}`` or has more than ``max_keys`` (100) keys is refused
whole (:class:`InvalidJwks`); its size is capped by the fetcher.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias, get_args

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from authsvc.errors import Code, InvalidRequest

__all__ = [
    "MAX_KEYS",
    "SUBJECT_ALGORITHMS",
    "InvalidJwks",
    "IssuerKey",
    "IssuerPublicKey",
    "KeySet",
    "SubjectAlg",
    "is_valid_kid",
    "parse_algorithms",
    "parse_jwks",
]

SubjectAlg: TypeAlias = Literal["RS256", "PS256", "ES256", "EdDSA"]
SUBJECT_ALGORITHMS: Final[tuple[SubjectAlg, ...]] = get_args(SubjectAlg)
IssuerPublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | Ed25519PublicKey

MAX_KEYS: Final = 100
_RSA_MIN_BITS: Final = 2048  # RFC 7518 §3.3
_RSA_MAX_BITS: Final = 8192
_RSA_MAX_EXPONENT: Final = 2**32
_TYPE_ALGS: Final[Mapping[str, frozenset[str]]] = {
    "RSA": frozenset({"RS256", "PS256"}),
    "EC": frozenset({"ES256"}),
    "OKP": frozenset({"EdDSA"}),
}
_PRIVATE_MEMBERS: Final = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_LAST_CHAR_OK: Final = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
# Printable ASCII without spaces: what real IdPs use, and nothing that can break a log line.
_KID: Final = re.compile(r"[\x21-\x7e]{1,256}")


class InvalidJwks(Exception):
    """The document is not a usable JWKS (not ``{"keys": [...]}``, or too many keys)."""


@dataclass(frozen=True, slots=True)
class IssuerKey:
    """One verification key of an identity provider and the algorithms it may verify."""

    kid: str
    algorithms: frozenset[str]
    public_key: IssuerPublicKey = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeySet:
    keys: Mapping[str, IssuerKey]
    #: ``(kid or None, reason)`` for every key left out; for logs and admin diagnostics.
    skipped: tuple[tuple[str | None, str], ...] = ()


def is_valid_kid(kid: object) -> bool:
    """A ``kid`` we look up: 1-256 printable ASCII characters without spaces."""
    return isinstance(kid, str) and _KID.fullmatch(kid) is not None


def parse_algorithms(value: object) -> frozenset[str]:
    """The ``algorithms`` of a trusted issuer (creation time); ``None`` means all allowed."""
    if value is None:
        return frozenset(SUBJECT_ALGORITHMS)
    if not isinstance(value, list | tuple) or not value:
        raise InvalidRequest("algorithms must be a non-empty list.", code=Code.INVALID_ALG)
    algs = set()
    for item in value:
        if item not in SUBJECT_ALGORITHMS:
            raise InvalidRequest(
                f"algorithms may contain only {', '.join(SUBJECT_ALGORITHMS)}.",
                code=Code.INVALID_ALG,
            )
        algs.add(item)
    return frozenset(algs)


# --------------------------------------------------------------------------- parsing


def _b64(value: object) -> bytes | None:
    """Strict unpadded, canonical base64url (RFC 7515 §2, RFC 7518 §2 Base64urlUInt)."""
    if not isinstance(value, str) or not _B64URL.fullmatch(value):
        return None
    rem = len(value) % 4
    if rem == 1 or (rem and value[-1] not in _LAST_CHAR_OK[rem]):
        return None
    std = value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4)
    return binascii.a2b_base64(std)


def _rsa(jwk: Mapping[str, Any]) -> IssuerPublicKey | str:
    n_raw, e_raw = _b64(jwk.get("n")), _b64(jwk.get("e"))
    if n_raw is None or e_raw is None:
        return "RSA key without valid n and e"
    n, e = int.from_bytes(n_raw, "big"), int.from_bytes(e_raw, "big")
    if not _RSA_MIN_BITS <= n.bit_length() <= _RSA_MAX_BITS:
        return "RSA modulus outside 2048-8192 bits"
    if e < 3 or e % 2 == 0 or e > _RSA_MAX_EXPONENT:
        return "RSA public exponent not accepted"
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError:
        return "invalid RSA key"


def _ec(jwk: Mapping[str, Any]) -> IssuerPublicKey | str:
    if jwk.get("crv") != "P-256":
        return "unsupported EC curve"
    x, y = _b64(jwk.get("x")), _b64(jwk.get("y"))
    if x is None or y is None or len(x) != 32 or len(y) != 32:  # RFC 7518 §6.2.1.2-3: full size
        return "EC key coordinates are not 32 bytes"
    try:  # SEC 1 §2.3.4: the uncompressed point, checked to be on the curve
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
    except ValueError:
        return "EC point is not on the curve"


def _okp(jwk: Mapping[str, Any]) -> IssuerPublicKey | str:
    if jwk.get("crv") != "Ed25519":  # RFC 8037 §2; Ed448 and X25519/X448 are not signatures here
        return "unsupported OKP curve"
    x = _b64(jwk.get("x"))
    if x is None or len(x) != 32:
        return "Ed25519 key is not 32 bytes"
    try:
        return Ed25519PublicKey.from_public_bytes(x)
    except ValueError:
        return "invalid Ed25519 key"


_PARSERS: Final[Mapping[str, Callable[[Mapping[str, Any]], IssuerPublicKey | str]]] = {
    "RSA": _rsa,
    "EC": _ec,
    "OKP": _okp,
}


def _parse_key(jwk: object, allowed: frozenset[str]) -> IssuerKey | str:
    if not isinstance(jwk, Mapping):
        return "not a JSON object"
    kid = jwk.get("kid")
    if not is_valid_kid(kid):
        return "missing or invalid kid"
    assert isinstance(kid, str)
    if any(name in jwk for name in _PRIVATE_MEMBERS):
        return "private key material present; key refused"
    use = jwk.get("use")
    if use is not None and use != "sig":  # RFC 7517 §4.2
        return "use is not sig"
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):  # RFC 7517 §4.3
        return "key_ops does not include verify"
    kty = jwk.get("kty")
    parser = _PARSERS.get(kty) if isinstance(kty, str) else None
    if parser is None:
        return "unsupported kty"
    assert isinstance(kty, str)
    alg = jwk.get("alg")
    if alg is None:
        usable = _TYPE_ALGS[kty]
    elif isinstance(alg, str) and alg in _TYPE_ALGS[kty]:  # RFC 7517 §4.4
        usable = frozenset({alg})
    else:
        return "alg not supported for this key type"
    usable = usable & allowed
    if not usable:
        return "no algorithm allowed for this issuer"
    key = parser(jwk)
    if isinstance(key, str):
        return key
    return IssuerKey(kid=kid, algorithms=usable, public_key=key)


def parse_jwks(
    document: object, *, algorithms: Collection[str], max_keys: int = MAX_KEYS
) -> KeySet:
    """The usable keys of a JWKS document; :class:`InvalidJwks` if it is not one at all."""
    allowed = frozenset(algorithms) & frozenset(SUBJECT_ALGORITHMS)
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise InvalidJwks("The document is not a JWK Set.")  # RFC 7517 §5: "keys" REQUIRED
    items: list[object] = document["keys"]
    if len(items) > max_keys:
        raise InvalidJwks(f"The JWK Set has more than {max_keys} keys.")
    keys: dict[str, IssuerKey] = {}
    duplicated: set[str] = set()
    skipped: list[tuple[str | None, str]] = []
    for item in items:
        parsed = _parse_key(item, allowed)
        if isinstance(parsed, str):
            kid = item.get("kid") if isinstance(item, Mapping) else None
            skipped.append((kid if is_valid_kid(kid) else None, parsed))
            continue
        if parsed.kid in keys or parsed.kid in duplicated:
            duplicated.add(parsed.kid)
            keys.pop(parsed.kid, None)
            skipped.append((parsed.kid, "kid used by several keys"))
            continue
        keys[parsed.kid] = parsed
    return KeySet(keys=keys, skipped=tuple(skipped))
