"""JWS Compact Serialization (RFC 7515 §7.1) of access tokens, signed by one key.

A :class:`JwsSigner` is built once per signing key (the keyring keeps it with the decrypted
key): it checks the key against its algorithm and the kid against our alphabet, serialises and
base64url-encodes the protected header ``{"alg", "kid", "typ": "at+jwt"}`` and picks the
signature function. Signing a payload is then one base64url of the payload, one signature over
``header_b64 "." payload_b64``, one base64url of the signature and one ``bytes → str``.

Why not PyJWT's ``encode``: per token it rebuilds and re-serialises the header with
``sort_keys``, copies the payload through ``json.dumps`` and ``str.encode``, re-checks the key
type and builds the hash objects again; that plumbing cost more than the ES256 signature
itself. PyJWT stays the verifier (:mod:`authsvc.tokens.jwt`) and the reference the tests
compare this encoder with, byte for byte.

base64url is ``binascii.b2a_base64`` + one ``translate`` + ``rstrip``, which is what
``base64.urlsafe_b64encode`` does behind two more Python-level calls: measured only ~4 %
(~60 ns of ~1.4 µs on a 400-byte claim set, ``python -m bench.jws``); the copies themselves
(encode, translate, strip) are what base64 costs here, and the signature dwarfs them.

The signature functions call ``cryptography`` directly: ES256 is ECDSA P-256 with SHA-256 whose
DER ``SEQUENCE {r, s}`` is turned into the raw 64-byte ``r || s``; RS256 is RSASSA-PKCS1-v1_5
with SHA-256; EdDSA is Ed25519 (deterministic, no hash parameter).

The header is built from a fixed dict whose keys are already in sorted order, so the header
bytes are the ones PyJWT produces for the same ``alg``, ``kid`` and ``typ``.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from typing import Final

import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from authsvc.signing.crypto import ALGORITHMS, Alg, SigningPrivateKey, alg_of_key

__all__ = ["HEADER_TYP", "KID_PATTERN", "JwsSigner", "b64url"]

HEADER_TYP: Final = "at+jwt"  # RFC 9068 §2.1: the only kind of JWS this service signs
KID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""Our kid alphabet (see :func:`authsvc.signing.crypto.new_kid`): safe in URLs, logs and SQL."""

_TO_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
_b2a: Final = binascii.b2a_base64
_ES256_COORD_BYTES: Final = 32


def b64url(data: bytes) -> bytes:
    """RFC 7515 §2: base64url (RFC 4648 §5) with the trailing ``=`` padding removed."""
    return _b2a(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=")


def _es256(key: ec.EllipticCurvePrivateKey) -> Callable[[bytes], bytes]:
    algorithm = ec.ECDSA(hashes.SHA256())

    def sign(data: bytes) -> bytes:
        # RFC 7518 §3.4: the JWS Signature is R || S, each a 32-octet big-endian unsigned
        # integer, not the DER SEQUENCE that cryptography returns.
        r, s = decode_dss_signature(key.sign(data, algorithm))
        return r.to_bytes(_ES256_COORD_BYTES, "big") + s.to_bytes(_ES256_COORD_BYTES, "big")

    return sign


def _rs256(key: rsa.RSAPrivateKey) -> Callable[[bytes], bytes]:
    pkcs1v15, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def sign(data: bytes) -> bytes:
        return key.sign(data, pkcs1v15, sha256)  # RFC 7518 §3.3: RSASSA-PKCS1-v1_5 SHA-256

    return sign


def _signature_function(key: SigningPrivateKey, alg: Alg) -> Callable[[bytes], bytes]:
    if alg == "ES256" and isinstance(key, ec.EllipticCurvePrivateKey):
        return _es256(key)
    if alg == "RS256" and isinstance(key, rsa.RSAPrivateKey):
        return _rs256(key)
    if alg == "EdDSA" and isinstance(key, Ed25519PrivateKey):
        return key.sign  # RFC 8037 §3.1: Ed25519 over the signing input, 64 octets
    raise ValueError("the private key does not match the algorithm")


class JwsSigner:
    """Signs payloads as compact JWS with header ``{"alg", "kid", "typ": "at+jwt"}``.

    ``ValueError`` at construction if the key is not the one key type of ``alg`` (RFC 8725
    §3.1) or the kid is not 1-64 characters of ``[A-Za-z0-9_-]``. Holds the private key: never
    log it, never hand it to a verifier.
    """

    __slots__ = ("_prefix", "_sign", "alg", "kid")

    def __init__(self, private_key: SigningPrivateKey, *, kid: str, alg: Alg) -> None:
        if alg not in ALGORITHMS or alg_of_key(private_key) != alg:
            raise ValueError("the private key does not match the algorithm")
        if not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
            raise ValueError("kid must be 1-64 characters of [A-Za-z0-9_-]")
        self.kid: Final = kid
        self.alg: Final = alg
        self._sign: Final = _signature_function(private_key, alg)
        # RFC 7515 §5.1 steps 3-4, once per key: the JOSE header (alg §4.1.1, kid §4.1.4,
        # typ §4.1.9 per RFC 9068 §2.1) as compact UTF-8 JSON, base64url-encoded; the "." of
        # the signing input (step 5) is appended here too.
        header = msgspec.json.encode({"alg": alg, "kid": kid, "typ": HEADER_TYP})
        self._prefix: Final = b64url(header) + b"."

    def __repr__(self) -> str:
        return f"JwsSigner(kid={self.kid!r}, alg={self.alg!r})"

    @property
    def header_b64(self) -> str:
        """The encoded protected header, the first segment of every token this signs."""
        return self._prefix[:-1].decode("ascii")

    def sign(self, payload: bytes) -> str:
        """The compact JWS of ``payload`` (the octets to protect, e.g. UTF-8 JSON claims)."""
        # RFC 7515 §5.1 step 2: BASE64URL(JWS Payload); step 5: the signing input is
        # ASCII(BASE64URL(UTF8(header)) || "." || BASE64URL(payload)).
        signing_input = self._prefix + b64url(payload)
        # Step 5: the signature; step 6: BASE64URL of it; step 8 / §7.1: the three segments.
        return b".".join((signing_input, b64url(self._sign(signing_input)))).decode("ascii")
