"""Pure crypto for per-tenant signing keys: generation, public JWKs, encryption at rest.

No I/O, no database, no clock: every function is a pure transformation of its inputs (plus
the operating system's CSPRNG where a fresh key, salt, nonce or kid is needed).

Algorithms
==========

======  ===============================================  ==========================================
alg     key                                              notes
======  ===============================================  ==========================================
ES256   ECDSA P-256 + SHA-256 (RFC 7518 §3.4)            default; signature is raw ``R || S``
RS256   RSA 2048 bits, PKCS#1 v1.5 + SHA-256 (§3.3)      2048 = RFC 7518 §3.3 minimum; see below
EdDSA   Ed25519 (RFC 8037 §3.1, JWK ``kty: OKP``)        PyJWT does not know RFC 9864 ``Ed25519``
======  ===============================================  ==========================================

RSA keys are 2048 bits: the RFC 7518 §3.3 floor and acceptable to NIST SP 800-57 through 2030.
3072 bits would roughly halve RS256 verification throughput on the hot path and make key
generation several times slower, for no benefit over ES256/EdDSA, which are the better choice
anyway. Loading an RSA key shorter than 2048 bits is refused.

Encryption at rest
==================

A private key (PKCS#8 PEM) is stored as an opaque, versioned blob::

    blob = b"v1" || master_version (8 ASCII hex) || salt (16) || nonce (12) || ciphertext+tag

* ``key = HKDF-SHA256(ikm=master_secret, salt=salt, info=b"authsvc signing-key encryption v1")``
  (RFC 5869), 32 bytes, used with AES-256-GCM (NIST SP 800-38D) and a random 96-bit nonce.
* The salt is **random per blob**: every blob gets its own AES key, so the random-nonce
  birthday bound (SP 800-38D §8.3) can never be approached however many keys are stored, and
  one derived key never encrypts two things. It costs one HKDF per decryption, which happens
  only when a signing key is loaded, not per token.
* The GCM additional data is the fixed-length blob header followed by the caller's ``aad``
  (e.g. ``tenant_id || kid``), so a blob copied to another row, another tenant, or with an
  edited header fails to decrypt.
* ``master_version`` = first 8 hex chars of ``SHA-256(HKDF(master_secret, info="authsvc
  master-key version v1"))``: a domain-separated, one-way label that says *which* master
  secret encrypted the blob without revealing anything about the secret. Decryption picks the
  secret with that version from the mapping it is given (current + previous secrets), which is
  what makes master-secret rotation possible: decrypt with the old, re-encrypt with the new.

Failures to decrypt (unknown format, unknown master version, wrong ``aad``, tampering,
truncation) all raise :class:`DecryptionError`, whose message never contains key material.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authsvc.algorithms import ALGORITHMS, Alg

__all__ = [
    "ALGORITHMS",
    "Alg",
    "DecryptionError",
    "ResolvedKey",
    "SigningPrivateKey",
    "SigningPublicKey",
    "alg_of_key",
    "blob_master_version",
    "decrypt_private_key",
    "encrypt_private_key",
    "generate_private_key",
    "load_private_key",
    "master_key_version",
    "master_secret_map",
    "new_kid",
    "public_jwk",
    "public_key_of",
]


SigningPrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | Ed25519PrivateKey
SigningPublicKey: TypeAlias = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | Ed25519PublicKey

RSA_KEY_BITS: Final = 2048
MIN_MASTER_SECRET_BYTES: Final = 32

_BLOB_MAGIC: Final = b"v1"
_VERSION_LEN: Final = 8
_SALT_LEN: Final = 16
_NONCE_LEN: Final = 12
_TAG_LEN: Final = 16
_HEADER_LEN: Final = len(_BLOB_MAGIC) + _VERSION_LEN + _SALT_LEN + _NONCE_LEN
_HEX_DIGITS: Final = frozenset(b"0123456789abcdef")

_ENCRYPTION_INFO: Final = b"authsvc signing-key encryption v1"
_VERSION_INFO: Final = b"authsvc master-key version v1"


class DecryptionError(Exception):
    """An encrypted private key could not be decrypted (wrong secret, aad, or tampered)."""


# --------------------------------------------------------------------------- keys


def generate_private_key(alg: Alg) -> bytes:
    """Generate a fresh private key for ``alg``; returned as unencrypted PKCS#8 PEM."""
    key: SigningPrivateKey
    if alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif alg == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    elif alg == "EdDSA":
        key = Ed25519PrivateKey.generate()
    else:
        raise ValueError("unsupported signing algorithm")
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> SigningPrivateKey:
    """Parse an unencrypted PEM private key of one of the supported kinds.

    Raises ``ValueError`` for anything else (other curves, DSA, short RSA, garbage).
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError("not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | Ed25519PrivateKey):
        raise ValueError("unsupported private key type")
    alg_of_key(key)  # validates curve / size
    return key


def alg_of_key(key: SigningPrivateKey | SigningPublicKey) -> Alg:
    """The one algorithm a key may be used with (RFC 8725 §3.1: one key, one algorithm)."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("only the P-256 curve is supported")
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < RSA_KEY_BITS:  # RFC 7518 §3.3
            raise ValueError("RSA keys must be at least 2048 bits")
        return "RS256"
    if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
        return "EdDSA"
    raise ValueError("unsupported key type")


def public_key_of(key: bytes | SigningPrivateKey | SigningPublicKey) -> SigningPublicKey:
    """The public half of a private key (PEM or object); a public key is returned as is."""
    if isinstance(key, bytes):
        key = load_private_key(key)
    if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | Ed25519PrivateKey):
        return key.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | Ed25519PublicKey):
        return key
    raise ValueError("unsupported key type")


_SIG_LEN_FIXED: Final[Mapping[str, int]] = {"ES256": 64, "EdDSA": 64}  # RFC 7518 §3.4, 8032


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    """A public verification key with the one algorithm pinned to its kid.

    Build it once per key (the resolver caches it): the public key is already parsed, so the
    hot path never parses a key. Private keys are refused, so a verifier never holds one.
    """

    kid: str
    alg: Alg
    public_key: SigningPublicKey
    signature_length: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.alg not in ALGORITHMS:
            raise ValueError("unsupported algorithm")
        if public_key_of(self.public_key) is not self.public_key:
            raise ValueError("a verification key must be a public key")
        if alg_of_key(self.public_key) != self.alg:
            raise ValueError("the key does not match the pinned algorithm")
        if isinstance(self.public_key, rsa.RSAPublicKey):
            # RS256: the signature is exactly as long as the modulus (RFC 8017 §8.2.2).
            sig_len = (self.public_key.key_size + 7) // 8
        else:
            sig_len = _SIG_LEN_FIXED[self.alg]
        object.__setattr__(self, "signature_length", sig_len)

    @classmethod
    def from_key(cls, kid: str, key: SigningPrivateKey | SigningPublicKey) -> ResolvedKey:
        """From a private or public key object; the alg is the key's own."""
        public = public_key_of(key)
        return cls(kid=kid, alg=alg_of_key(public), public_key=public)


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint_b64u(value: int) -> str:
    # RFC 7518 §2 "Base64urlUInt": minimal big-endian octets (zero is one 0x00 octet).
    return _b64u(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def public_jwk(
    private_pem_or_key: bytes | SigningPrivateKey | SigningPublicKey, *, kid: str, alg: Alg
) -> dict[str, str]:
    """The public JWK (RFC 7517) for a key, with ``kid``, ``alg`` and ``use: "sig"``.

    Only public members are ever emitted (built member by member, never by filtering a
    private JWK). ``alg`` must be the key's own algorithm, else ``ValueError``.
    """
    public = public_key_of(private_pem_or_key)
    if alg_of_key(public) != alg:
        raise ValueError("the key does not match the algorithm")
    jwk: dict[str, str]
    if isinstance(public, ec.EllipticCurvePublicKey):
        # RFC 7518 §6.2.1: x and y are full-length (32 octets for P-256), not minimal.
        point = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        size = (len(point) - 1) // 2
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64u(point[1 : 1 + size]),
            "y": _b64u(point[1 + size :]),
        }
    elif isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()  # RFC 7518 §6.3.1
        jwk = {"kty": "RSA", "n": _uint_b64u(numbers.n), "e": _uint_b64u(numbers.e)}
    else:
        # RFC 8037 §2: OKP key, crv Ed25519, x = the 32-byte public key.
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64u(raw)}
    jwk.update(kid=kid, alg=alg, use="sig")  # RFC 7517 §4.2, §4.4, §4.5
    return jwk


def new_kid() -> str:
    """A fresh random key id: 22 url-safe chars (128 bits), never starting with ``-``/``_``.

    The alphabet is ``[A-Za-z0-9_-]`` so a kid is safe in URLs, logs, SQL parameters and on a
    command line.
    """
    while True:
        kid = secrets.token_urlsafe(16)
        if kid[0].isalnum():
            return kid


# --------------------------------------------------------------------------- encryption


def _check_master(master_secret: bytes) -> None:
    if not isinstance(master_secret, bytes) or len(master_secret) < MIN_MASTER_SECRET_BYTES:
        raise ValueError("the master secret must be at least 32 bytes")


def master_key_version(master_secret: bytes) -> str:
    """8 hex chars naming a master secret (not derived from the raw secret directly)."""
    _check_master(master_secret)
    label = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_VERSION_INFO).derive(
        master_secret
    )
    return hashlib.sha256(label).hexdigest()[:_VERSION_LEN]


def master_secret_map(*master_secrets: bytes) -> dict[str, bytes]:
    """``{master_key_version(s): s}`` for the secrets given (current first, then previous).

    This is the mapping :func:`decrypt_private_key` expects.
    """
    result: dict[str, bytes] = {}
    for secret in master_secrets:
        result.setdefault(master_key_version(secret), secret)
    return result


def _blob_key(master_secret: bytes, salt: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_ENCRYPTION_INFO).derive(
        master_secret
    )
    return AESGCM(key)


def encrypt_private_key(pem: bytes, *, master_secret: bytes, aad: bytes) -> bytes:
    """Encrypt a PEM private key under the master secret; ``aad`` binds it to its owner row."""
    header = (
        _BLOB_MAGIC
        + master_key_version(master_secret).encode("ascii")
        + secrets.token_bytes(_SALT_LEN)
        + secrets.token_bytes(_NONCE_LEN)
    )
    salt = header[len(_BLOB_MAGIC) + _VERSION_LEN : -_NONCE_LEN]
    nonce = header[-_NONCE_LEN:]
    return header + _blob_key(master_secret, salt).encrypt(nonce, pem, header + aad)


def blob_master_version(blob: bytes) -> str:
    """The master version that encrypted ``blob`` (to decide whether to re-encrypt it)."""
    if (
        not isinstance(blob, bytes)
        or len(blob) < _HEADER_LEN + _TAG_LEN
        or not blob.startswith(_BLOB_MAGIC)
    ):
        raise DecryptionError("not an encrypted signing key (unknown format)")
    version = blob[len(_BLOB_MAGIC) : len(_BLOB_MAGIC) + _VERSION_LEN]
    if not _HEX_DIGITS.issuperset(version):
        raise DecryptionError("not an encrypted signing key (bad master version)")
    return version.decode("ascii")


def decrypt_private_key(blob: bytes, *, master_secrets: Mapping[str, bytes], aad: bytes) -> bytes:
    """Decrypt a blob from :func:`encrypt_private_key`.

    ``master_secrets`` maps :func:`master_key_version` → secret (build it with
    :func:`master_secret_map`); a key that does not match its secret is a ``ValueError``
    (a caller bug). Anything wrong with the blob or ``aad`` is a :class:`DecryptionError`.
    """
    for version, secret in master_secrets.items():
        if master_key_version(secret) != version:
            raise ValueError("master_secrets must be keyed by master_key_version(secret)")
    version = blob_master_version(blob)
    found = master_secrets.get(version)
    if found is None:
        raise DecryptionError(f"no master secret with version {version} was provided")
    header = blob[:_HEADER_LEN]
    salt = header[len(_BLOB_MAGIC) + _VERSION_LEN : -_NONCE_LEN]
    nonce = header[-_NONCE_LEN:]
    try:
        return _blob_key(found, salt).decrypt(nonce, blob[_HEADER_LEN:], header + aad)
    except InvalidTag:
        raise DecryptionError("signing key decryption failed (wrong aad or tampered)") from None
