"""Parsing an identity provider's JWKS: only sound public signature keys survive."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from authsvc.errors import InvalidRequest
from authsvc.issuers.jwks import (
    SUBJECT_ALGORITHMS,
    InvalidJwks,
    parse_algorithms,
    parse_jwks,
)
from authsvc.issuers.jwks_cache import ttl_from_cache_control
from tests.idp import Keys, b64, private_jwk, public_jwk, uint

ALL = frozenset(SUBJECT_ALGORITHMS)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


def test_each_supported_key_type_parses_with_the_algorithms_of_its_type(keys: Keys) -> None:
    parsed = parse_jwks(keys.jwks(), algorithms=ALL)
    assert set(parsed.keys) == {"rsa-1", "ec-1", "ed-1"}
    assert parsed.keys["rsa-1"].algorithms == {"RS256", "PS256"}
    assert parsed.keys["ec-1"].algorithms == {"ES256"}
    assert parsed.keys["ed-1"].algorithms == {"EdDSA"}
    assert isinstance(parsed.keys["rsa-1"].public_key, rsa.RSAPublicKey)
    assert isinstance(parsed.keys["ec-1"].public_key, ec.EllipticCurvePublicKey)
    assert isinstance(parsed.keys["ed-1"].public_key, Ed25519PublicKey)
    assert parsed.skipped == ()


def test_the_alg_member_pins_a_key_to_one_algorithm(keys: Keys) -> None:
    doc = {"keys": [public_jwk(keys.rsa, "r", alg="PS256")]}
    assert parse_jwks(doc, algorithms=ALL).keys["r"].algorithms == {"PS256"}


def test_the_issuer_algorithms_narrow_each_key(keys: Keys) -> None:
    parsed = parse_jwks(keys.jwks(), algorithms={"RS256"})
    assert set(parsed.keys) == {"rsa-1"}
    assert parsed.keys["rsa-1"].algorithms == {"RS256"}
    assert {kid for kid, _ in parsed.skipped} == {"ec-1", "ed-1"}


@pytest.mark.parametrize("alg", ["HS256", "none", "RS512", "ES384", "RSA-OAEP", "rs256", 7])
def test_a_key_with_an_algorithm_outside_the_allow_list_is_skipped(keys: Keys, alg: Any) -> None:
    doc = {"keys": [public_jwk(keys.rsa, "r", alg=alg)]}
    parsed = parse_jwks(doc, algorithms=ALL)
    assert parsed.keys == {}
    assert parsed.skipped == (("r", "alg not supported for this key type"),)


def test_an_alg_of_another_key_type_is_skipped(keys: Keys) -> None:
    doc = {"keys": [public_jwk(keys.ec, "e", alg="RS256"), public_jwk(keys.rsa, "r", alg="ES256")]}
    assert parse_jwks(doc, algorithms=ALL).keys == {}


def test_a_key_carrying_private_members_is_refused(keys: Keys) -> None:
    doc = {"keys": [private_jwk(keys.rsa, "leaky"), public_jwk(keys.ec, "ec-1")]}
    parsed = parse_jwks(doc, algorithms=ALL)
    assert set(parsed.keys) == {"ec-1"}
    assert parsed.skipped == (("leaky", "private key material present; key refused"),)


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth"])
def test_any_single_private_member_refuses_the_key(keys: Keys, member: str) -> None:
    jwk = {**public_jwk(keys.rsa, "r"), member: "AQAB"}
    assert parse_jwks({"keys": [jwk]}, algorithms=ALL).keys == {}


def test_an_ec_or_okp_key_with_d_is_refused(keys: Keys) -> None:
    doc = {
        "keys": [
            {**public_jwk(keys.ec, "e"), "d": "AQAB"},
            {**public_jwk(keys.ed, "o"), "d": "AQAB"},
        ]
    }
    assert parse_jwks(doc, algorithms=ALL).keys == {}


def test_symmetric_and_unknown_key_types_are_skipped() -> None:
    doc = {
        "keys": [
            {"kty": "oct", "kid": "hmac", "k": b64(b"secret" * 6)},
            {"kty": "oct", "kid": "hmac2"},
            {"kty": "XYZ", "kid": "weird"},
            {"kid": "nokty"},
        ]
    }
    parsed = parse_jwks(doc, algorithms=ALL)
    assert parsed.keys == {}
    assert len(parsed.skipped) == 4


def test_unsupported_curves_are_skipped() -> None:
    p384 = public_jwk(ec.generate_private_key(ec.SECP384R1()), "p384")
    x25519_raw = X25519PrivateKey.generate().public_key().public_bytes_raw()
    doc = {
        "keys": [
            p384,
            {"kty": "OKP", "crv": "X25519", "kid": "x", "x": b64(x25519_raw)},
            {"kty": "OKP", "crv": "Ed448", "kid": "ed448", "x": b64(b"\x01" * 57)},
        ]
    }
    parsed = parse_jwks(doc, algorithms=ALL)
    assert parsed.keys == {}
    assert [reason for _, reason in parsed.skipped] == [
        "unsupported EC curve",
        "unsupported OKP curve",
        "unsupported OKP curve",
    ]


def test_an_rsa_key_below_2048_bits_is_skipped() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the point)
    parsed = parse_jwks({"keys": [public_jwk(small, "small")]}, algorithms=ALL)
    assert parsed.skipped == (("small", "RSA modulus outside 2048-8192 bits"),)


@pytest.mark.parametrize("exponent", [1, 2, 65536, 2**33 + 1])
def test_an_rsa_key_with_a_bad_exponent_is_skipped(keys: Keys, exponent: int) -> None:
    jwk = {**public_jwk(keys.rsa, "r"), "e": uint(exponent)}
    assert parse_jwks({"keys": [jwk]}, algorithms=ALL).keys == {}


def test_an_ec_point_off_the_curve_is_skipped(keys: Keys) -> None:
    jwk = public_jwk(keys.ec, "e")
    jwk["y"] = b64(b"\x01" * 32)
    parsed = parse_jwks({"keys": [jwk]}, algorithms=ALL)
    assert parsed.skipped == (("e", "EC point is not on the curve"),)


def test_short_ec_coordinates_are_skipped(keys: Keys) -> None:
    jwk = public_jwk(keys.ec, "e")
    jwk["x"] = b64(b"\x01" * 31)
    assert parse_jwks({"keys": [jwk]}, algorithms=ALL).keys == {}


@pytest.mark.parametrize("bad", ["AQAB=", "AQ+B", "AQ/B", "", " AQAB", "AQAC" + "x", 65537])
def test_key_members_must_be_strict_base64url(keys: Keys, bad: Any) -> None:
    jwk = {**public_jwk(keys.rsa, "r"), "e": bad}
    assert parse_jwks({"keys": [jwk]}, algorithms=ALL).keys == {}


@pytest.mark.parametrize(
    ("extra", "usable"),
    [
        ({"use": "sig"}, True),
        ({"use": "enc"}, False),
        ({"use": "SIG"}, False),
        ({"key_ops": ["verify"]}, True),
        ({"key_ops": ["encrypt"]}, False),
        ({"key_ops": "verify"}, False),
    ],
)
def test_use_and_key_ops_must_allow_verification(
    keys: Keys, extra: dict[str, Any], usable: bool
) -> None:
    parsed = parse_jwks({"keys": [public_jwk(keys.ec, "e", **extra)]}, algorithms=ALL)
    assert ("e" in parsed.keys) is usable


@pytest.mark.parametrize("kid", [None, "", 5, "a b", "x" * 257, "tab\tkid"])
def test_a_key_without_a_usable_kid_is_skipped(keys: Keys, kid: Any) -> None:
    jwk = public_jwk(keys.ec, "placeholder")
    if kid is None:
        del jwk["kid"]
    else:
        jwk["kid"] = kid
    parsed = parse_jwks({"keys": [jwk]}, algorithms=ALL)
    assert parsed.keys == {}
    assert parsed.skipped == ((None, "missing or invalid kid"),)


def test_a_kid_used_by_two_keys_makes_both_unusable(keys: Keys) -> None:
    doc = {
        "keys": [
            public_jwk(keys.rsa, "same"),
            public_jwk(keys.ec, "same"),
            public_jwk(keys.ed, "same"),
            public_jwk(keys.ec, "other"),
        ]
    }
    parsed = parse_jwks(doc, algorithms=ALL)
    assert set(parsed.keys) == {"other"}


def test_a_kid_shared_with_a_skipped_key_is_not_ambiguous(keys: Keys) -> None:
    doc = {"keys": [public_jwk(keys.rsa, "k", use="enc"), public_jwk(keys.ec, "k", use="sig")]}
    assert set(parse_jwks(doc, algorithms=ALL).keys) == {"k"}


def test_more_keys_than_the_cap_refuse_the_document(keys: Keys) -> None:
    many = {"keys": [public_jwk(keys.ec, f"k{i}") for i in range(101)]}
    with pytest.raises(InvalidJwks):
        parse_jwks(many, algorithms=ALL)
    assert len(parse_jwks({"keys": many["keys"][:100]}, algorithms=ALL).keys) == 100


@pytest.mark.parametrize("doc", [[], {}, {"keys": {}}, {"keys": "x"}, "keys", None])
def test_a_document_that_is_not_a_jwk_set_is_refused(doc: Any) -> None:
    with pytest.raises(InvalidJwks):
        parse_jwks(doc, algorithms=ALL)


def test_non_object_entries_are_skipped(keys: Keys) -> None:
    parsed = parse_jwks({"keys": [1, "x", None, public_jwk(keys.ec, "e")]}, algorithms=ALL)
    assert set(parsed.keys) == {"e"}
    assert len(parsed.skipped) == 3


def test_skip_reasons_never_contain_key_material(keys: Keys) -> None:
    doc = {"keys": [private_jwk(keys.rsa, "leaky")]}
    numbers = private_jwk(keys.rsa, "leaky")
    for _, reason in parse_jwks(doc, algorithms=ALL).skipped:
        for member in ("n", "d", "p", "q"):
            assert numbers[member] not in reason


@pytest.mark.parametrize(
    ("header", "ttl"),
    [
        (None, 300),
        ("", 300),
        ("max-age=3600", 3600),
        ("public, max-age=120, must-revalidate", 120),
        ("MAX-AGE=600", 600),
        ('max-age="900"', 900),
        ("max-age=5", 60),
        ("max-age=0", 60),
        ("max-age=99999999", 86400),
        ("no-store", 60),
        ("no-cache, max-age=3600", 60),
        ("max-age=300, max-age=100", 100),
        ("max-age=abc", 300),
        ("s-maxage=500", 300),
        ("private", 300),
    ],
)
def test_cache_lifetime_follows_max_age_within_bounds(header: str | None, ttl: float) -> None:
    assert ttl_from_cache_control(header) == ttl


def test_issuer_algorithms_default_to_the_whole_allow_list() -> None:
    assert parse_algorithms(None) == ALL
    assert parse_algorithms(["ES256", "ES256"]) == {"ES256"}


@pytest.mark.parametrize("value", [[], ["HS256"], ["none"], ["RS256", "RS384"], "RS256", [None]])
def test_issuer_algorithms_outside_the_allow_list_are_a_400(value: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_algorithms(value)
    assert caught.value.code == "INVALID_ALG"
