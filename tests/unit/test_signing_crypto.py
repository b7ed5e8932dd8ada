"""Signing-key crypto: key generation, public JWKs, encryption at rest, master rotation."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import get_default_algorithms

from authsvc.signing.crypto import (
    ALGORITHMS,
    Alg,
    DecryptionError,
    blob_master_version,
    decrypt_private_key,
    encrypt_private_key,
    generate_private_key,
    load_private_key,
    master_key_version,
    master_secret_map,
    new_kid,
    public_jwk,
    public_key_of,
)

MASTER_OLD = b"old-master-secret-0123456789abcdefghijklmnop"
MASTER_NEW = b"new-master-secret-0123456789abcdefghijklmnop"
AAD = b"tenant-1|kid-1"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
PUBLIC_MEMBERS: dict[str, set[str]] = {
    "ES256": {"kty", "crv", "x", "y", "kid", "alg", "use"},
    "RS256": {"kty", "n", "e", "kid", "alg", "use"},
    "EdDSA": {"kty", "crv", "x", "kid", "alg", "use"},
}


@pytest.fixture(scope="module")
def pems() -> dict[str, bytes]:
    return {alg: generate_private_key(alg) for alg in ALGORITHMS}


def _b64u_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


# --------------------------------------------------------------------------- keys and JWKs


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_token_signed_with_generated_key_verifies_with_key_rebuilt_from_public_jwk(
    alg: Alg, pems: dict[str, bytes]
) -> None:
    private = load_private_key(pems[alg])
    token = jwt.encode({"sub": "alice"}, private, algorithm=alg, headers={"kid": "k1"})

    jwk = jwt.PyJWK(public_jwk(pems[alg], kid="k1", alg=alg))

    assert jwk.key_id == "k1"
    assert jwk.public_key_use == "sig"
    assert jwt.decode(token, jwk.key, algorithms=[alg]) == {"sub": "alice"}


def test_generated_keys_are_pkcs8_pem_of_the_documented_kind(pems: dict[str, bytes]) -> None:
    for pem in pems.values():
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    es = load_private_key(pems["ES256"])
    rs = load_private_key(pems["RS256"])
    ed = load_private_key(pems["EdDSA"])
    assert isinstance(es, ec.EllipticCurvePrivateKey)
    assert isinstance(es.curve, ec.SECP256R1)
    assert isinstance(rs, rsa.RSAPrivateKey)
    assert rs.key_size == 2048
    assert rs.public_key().public_numbers().e == 65537
    assert isinstance(ed, Ed25519PrivateKey)


def test_each_generation_yields_a_new_key() -> None:
    assert generate_private_key("ES256") != generate_private_key("ES256")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_public_jwk_has_exactly_the_public_members(alg: Alg, pems: dict[str, bytes]) -> None:
    jwk = public_jwk(pems[alg], kid="kid-1", alg=alg)

    assert set(jwk) == PUBLIC_MEMBERS[alg]
    assert not PRIVATE_MEMBERS & set(jwk)
    assert jwk["kid"] == "kid-1"
    assert jwk["alg"] == alg
    assert jwk["use"] == "sig"
    assert all(isinstance(value, str) for value in jwk.values())
    assert all("=" not in value for value in jwk.values())  # base64url without padding


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_public_jwk_is_the_same_from_pem_private_object_and_public_object(
    alg: Alg, pems: dict[str, bytes]
) -> None:
    private = load_private_key(pems[alg])
    from_pem = public_jwk(pems[alg], kid="k", alg=alg)

    assert public_jwk(private, kid="k", alg=alg) == from_pem
    assert public_jwk(private.public_key(), kid="k", alg=alg) == from_pem


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_public_jwk_key_members_match_pyjwt_serialisation(alg: Alg, pems: dict[str, bytes]) -> None:
    public = public_key_of(pems[alg])
    reference = get_default_algorithms()[alg].to_jwk(public, as_dict=True)

    ours = public_jwk(pems[alg], kid="k", alg=alg)

    for member in PUBLIC_MEMBERS[alg] - {"kid", "alg", "use"}:
        assert ours[member] == reference[member]


def test_public_jwk_ec_coordinates_keep_leading_zero_octets() -> None:
    # RFC 7518 §6.2.1.2: x and y are always 32 octets for P-256, even with leading zeros.
    for _ in range(5000):
        key = ec.generate_private_key(ec.SECP256R1())
        if key.public_key().public_numbers().x.bit_length() <= 248:
            break
    else:  # pragma: no cover - probability ~1e-9
        pytest.fail("no key with a leading zero octet found")

    jwk = public_jwk(key, kid="k", alg="ES256")

    assert len(_b64u_decode(jwk["x"])) == 32
    assert len(_b64u_decode(jwk["y"])) == 32
    assert _b64u_decode(jwk["x"])[0] == 0


def test_public_jwk_rsa_exponent_is_minimal_base64url_uint(pems: dict[str, bytes]) -> None:
    jwk = public_jwk(pems["RS256"], kid="k", alg="RS256")

    assert jwk["e"] == "AQAB"
    assert len(_b64u_decode(jwk["n"])) == 256


@pytest.mark.parametrize(("key_alg", "claimed"), [("ES256", "RS256"), ("EdDSA", "ES256")])
def test_public_jwk_refuses_an_algorithm_that_is_not_the_keys(
    key_alg: Alg, claimed: Alg, pems: dict[str, bytes]
) -> None:
    with pytest.raises(ValueError, match="does not match"):
        public_jwk(pems[key_alg], kid="k", alg=claimed)


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    "pem",
    [
        pytest.param(_pem(ec.generate_private_key(ec.SECP384R1())), id="p384"),
        pytest.param(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", id="junk"),
        pytest.param(b"", id="empty"),
        pytest.param(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"pw"),
            ),
            id="encrypted-pem",
        ),
    ],
)
def test_load_private_key_refuses_unsupported_or_invalid_keys(pem: bytes) -> None:
    with pytest.raises(ValueError, match=r"unencrypted PEM private key|P-256"):
        load_private_key(pem)


def test_load_private_key_refuses_rsa_shorter_than_2048_bits() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505

    with pytest.raises(ValueError, match="2048"):
        load_private_key(_pem(weak))


def test_public_key_of_returns_the_public_half(pems: dict[str, bytes]) -> None:
    public = public_key_of(pems["EdDSA"])

    assert isinstance(public, Ed25519PublicKey)
    assert public_key_of(public) is public


def test_new_kid_is_22_url_safe_chars_and_unique() -> None:
    kids = {new_kid() for _ in range(2000)}

    assert len(kids) == 2000
    for kid in kids:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{21}", kid)


# --------------------------------------------------------------------------- encryption at rest


def test_encrypted_private_key_round_trips(pems: dict[str, bytes]) -> None:
    blob = encrypt_private_key(pems["ES256"], master_secret=MASTER_NEW, aad=AAD)

    assert (
        decrypt_private_key(blob, master_secrets=master_secret_map(MASTER_NEW), aad=AAD)
        == (pems["ES256"])
    )


def test_blob_is_versioned_and_reveals_no_plaintext(pems: dict[str, bytes]) -> None:
    blob = encrypt_private_key(pems["RS256"], master_secret=MASTER_NEW, aad=AAD)

    assert blob.startswith(b"v1" + master_key_version(MASTER_NEW).encode())
    assert b"PRIVATE KEY" not in blob
    assert MASTER_NEW not in blob
    assert blob_master_version(blob) == master_key_version(MASTER_NEW)
    # header (2 + 8 + 16 salt + 12 nonce) + ciphertext + 16-byte tag
    assert len(blob) == 38 + len(pems["RS256"]) + 16


def test_encrypting_twice_gives_different_blobs(pems: dict[str, bytes]) -> None:
    first = encrypt_private_key(pems["EdDSA"], master_secret=MASTER_NEW, aad=AAD)
    second = encrypt_private_key(pems["EdDSA"], master_secret=MASTER_NEW, aad=AAD)

    assert first != second
    assert first[10:38] != second[10:38]  # fresh salt and nonce


@pytest.mark.parametrize("aad", [b"", b"tenant-2|kid-1", b"tenant-1|kid-2", AAD + b"\x00"])
def test_decrypting_with_another_aad_raises_decryption_error(
    aad: bytes, pems: dict[str, bytes]
) -> None:
    blob = encrypt_private_key(pems["ES256"], master_secret=MASTER_NEW, aad=AAD)

    with pytest.raises(DecryptionError):
        decrypt_private_key(blob, master_secrets=master_secret_map(MASTER_NEW), aad=aad)


@pytest.mark.parametrize(
    "position",
    [
        pytest.param(0, id="magic"),
        pytest.param(5, id="master-version"),
        pytest.param(12, id="salt"),
        pytest.param(30, id="nonce"),
        pytest.param(60, id="ciphertext"),
        pytest.param(-1, id="tag"),
    ],
)
def test_tampered_blob_raises_decryption_error(position: int, pems: dict[str, bytes]) -> None:
    blob = bytearray(encrypt_private_key(pems["ES256"], master_secret=MASTER_NEW, aad=AAD))
    blob[position] ^= 0x01

    with pytest.raises(DecryptionError):
        decrypt_private_key(bytes(blob), master_secrets=master_secret_map(MASTER_NEW), aad=AAD)


@pytest.mark.parametrize("length", [0, 2, 10, 37, 53])
def test_truncated_blob_raises_decryption_error(length: int, pems: dict[str, bytes]) -> None:
    blob = encrypt_private_key(pems["ES256"], master_secret=MASTER_NEW, aad=AAD)

    with pytest.raises(DecryptionError):
        decrypt_private_key(blob[:length], master_secrets=master_secret_map(MASTER_NEW), aad=AAD)


def test_decrypting_without_the_right_master_raises_decryption_error(
    pems: dict[str, bytes],
) -> None:
    blob = encrypt_private_key(pems["ES256"], master_secret=MASTER_OLD, aad=AAD)

    with pytest.raises(DecryptionError, match="no master secret") as excinfo:
        decrypt_private_key(blob, master_secrets=master_secret_map(MASTER_NEW), aad=AAD)
    assert MASTER_OLD.decode() not in str(excinfo.value)
    assert MASTER_NEW.decode() not in str(excinfo.value)


def test_blob_from_old_master_decrypts_when_old_is_passed_as_previous(
    pems: dict[str, bytes],
) -> None:
    old_blob = encrypt_private_key(pems["EdDSA"], master_secret=MASTER_OLD, aad=AAD)
    secrets_after_rotation = master_secret_map(MASTER_NEW, MASTER_OLD)

    pem = decrypt_private_key(old_blob, master_secrets=secrets_after_rotation, aad=AAD)
    new_blob = encrypt_private_key(pem, master_secret=MASTER_NEW, aad=AAD)

    assert pem == pems["EdDSA"]
    assert blob_master_version(old_blob) == master_key_version(MASTER_OLD)
    assert blob_master_version(new_blob) == master_key_version(MASTER_NEW)
    only_new = master_secret_map(MASTER_NEW)
    assert decrypt_private_key(new_blob, master_secrets=only_new, aad=AAD) == pem


def test_a_secret_filed_under_another_version_is_refused_as_a_caller_bug(
    pems: dict[str, bytes],
) -> None:
    blob = encrypt_private_key(pems["ES256"], master_secret=MASTER_OLD, aad=AAD)
    mislabelled = {master_key_version(MASTER_OLD): MASTER_NEW}

    with pytest.raises(ValueError, match="keyed by"):
        decrypt_private_key(blob, master_secrets=mislabelled, aad=AAD)


def test_master_versions_differ_between_masters_and_are_stable() -> None:
    old, new = master_key_version(MASTER_OLD), master_key_version(MASTER_NEW)

    assert old != new
    assert master_key_version(MASTER_OLD) == old
    for version in (old, new):
        assert re.fullmatch(r"[0-9a-f]{8}", version)


def test_master_version_is_not_a_plain_hash_of_the_secret() -> None:
    version = master_key_version(MASTER_NEW)

    assert version != hashlib.sha256(MASTER_NEW).hexdigest()[:8]
    assert version != hashlib.sha256(MASTER_NEW).hexdigest()[-8:]


def test_short_master_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        encrypt_private_key(b"pem", master_secret=b"x" * 31, aad=AAD)


def test_decryption_error_messages_carry_no_secret_material(pems: dict[str, bytes]) -> None:
    blob = encrypt_private_key(pems["ES256"], master_secret=MASTER_NEW, aad=AAD)

    with pytest.raises(DecryptionError) as excinfo:
        decrypt_private_key(blob, master_secrets=master_secret_map(MASTER_NEW), aad=b"other")

    message = str(excinfo.value)
    assert "PRIVATE" not in message
    assert MASTER_NEW.decode() not in message
    assert json.dumps(message)  # plain text
