"""The lean JWS encoder (authsvc.signing.jws + sign_access_token) against three verifiers.

Properties, for generated claim sets (any Unicode incl. quotes, backslashes and control
characters, integers up to 2^53, finite floats, nested lists and objects, fixed params) and
each algorithm: authsvc's own ``verify_access_token`` and PyJWT's ``jwt.decode`` return
exactly the claims (same types, same member order); the header is exactly ``{alg, kid,
typ}``; an ES256 signature is 64 raw bytes. Byte for byte: the header segment is PyJWT's for
the same parameters, the payload segment is ``msgspec.json.encode(claims)``, PyJWT's JWS layer
verifies the signature over exactly those bytes, and for the deterministic algorithms (RS256,
EdDSA) the whole token equals the one PyJWT's JWS layer signs from the same octets.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import jwt
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.api_jws import PyJWS

from authsvc.signing.crypto import (
    ALGORITHMS,
    Alg,
    SigningPrivateKey,
    generate_private_key,
    load_private_key,
    new_kid,
    public_key_of,
)
from authsvc.signing.jws import JwsSigner, b64url
from authsvc.signing.keyring import Signer
from authsvc.tokens.jwt import (
    ResolvedKey,
    Verified,
    encode_access_token,
    sign_access_token,
    verify_access_token,
)

NOW = int(time.time())  # PyJWT checks exp and iat against the wall clock
ISSUER = "https://auth.example.com/t/acme"
AUDIENCE = "https://api.example.com"
RESERVED = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id"})

KEYS: dict[str, SigningPrivateKey] = {
    alg: load_private_key(generate_private_key(alg)) for alg in ALGORITHMS
}
KIDS: dict[str, str] = {alg: new_kid() for alg in ALGORITHMS}
SIGNERS = {alg: JwsSigner(KEYS[alg], kid=KIDS[alg], alg=alg) for alg in ALGORITHMS}
RESOLVED = {KIDS[alg]: ResolvedKey.from_key(KIDS[alg], KEYS[alg]) for alg in ALGORITHMS}

AWKWARD_CHARS = '"\\/\x00\x01\x08\t\n\x0c\r\x1f\x7f\x80\xa0\u2028\u2029\ufeff\uffff\U0001f600é€'
text = st.text(st.one_of(st.characters(codec="utf-8"), st.sampled_from(AWKWARD_CHARS)), max_size=24)
names = text.filter(lambda name: name not in RESERVED)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(names, inner, max_size=4)),
    max_leaves=12,
)
fixed_params = st.dictionaries(
    st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True),
    st.one_of(scalars, st.lists(scalars, min_size=1, max_size=3)),
    max_size=3,
)
scope_claims = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["PIPES:READ", "DATASOURCES:APPEND"]), "resource": text},
        optional={"fixed_params": fixed_params},
    ),
    max_size=3,
)
non_empty = text.filter(bool)


@st.composite
def claim_sets(draw: st.DrawFn) -> dict[str, Any]:
    required: dict[str, Any] = {
        "iss": ISSUER,
        "sub": draw(non_empty),
        "aud": draw(
            st.one_of(
                st.just(AUDIENCE),
                st.lists(text, max_size=2).map(lambda others: [*others, AUDIENCE]),
            )
        ),
        "exp": NOW + draw(st.one_of(st.integers(3600, 2**31), st.floats(3600, 1e9))),
        "iat": NOW - draw(st.one_of(st.integers(0, 10**6), st.floats(0, 1e6))),
        "jti": draw(non_empty),
        "client_id": draw(non_empty),
        "scopes": draw(scope_claims),
    }
    extra = draw(st.dictionaries(names, json_values, max_size=6))
    items = draw(st.permutations([*required.items(), *extra.items()]))
    return dict(items)


def assert_identical(got: Any, want: Any) -> None:
    """Equal, and of the same JSON types and member order (1 vs 1.0 vs True, -0.0 vs 0.0)."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, dict):
        assert list(got) == list(want)
        for name in want:
            assert_identical(got[name], want[name])
    elif isinstance(want, list):
        assert len(got) == len(want)
        for got_item, want_item in zip(got, want, strict=True):
            assert_identical(got_item, want_item)
    elif isinstance(want, float):
        assert repr(got) == repr(want)
    else:
        assert got == want


def segments(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]


def pyjwt_decode(token: str, alg: str, claims: Mapping[str, Any]) -> Any:
    return jwt.decode(
        token,
        public_key_of(KEYS[alg]),
        algorithms=[alg],
        audience=AUDIENCE,
        issuer=claims["iss"],
    )


@pytest.mark.parametrize("alg", ALGORITHMS)
@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claims=claim_sets())
def test_token_verifies_with_authsvc_and_pyjwt_to_exactly_the_claims(
    alg: Alg, claims: dict[str, Any]
) -> None:
    token = sign_access_token(claims, SIGNERS[alg])

    result = verify_access_token(
        token,
        resolve_key=RESOLVED.get,
        issuer=ISSUER,
        audiences={AUDIENCE},
        now=time.time(),
        max_token_bytes=1 << 20,
    )
    assert isinstance(result, Verified), result
    assert_identical(result.claims, claims)
    assert_identical(result.header, {"alg": alg, "kid": KIDS[alg], "typ": "at+jwt"})
    assert_identical(pyjwt_decode(token, alg, claims), claims)
    if alg == "ES256":
        assert len(segments(token)[2]) == 64  # RFC 7518 §3.4: raw R || S, not DER


@pytest.mark.parametrize("alg", ALGORITHMS)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claims=claim_sets())
def test_token_bytes_are_the_reference_construction(alg: Alg, claims: dict[str, Any]) -> None:
    token = sign_access_token(claims, SIGNERS[alg])
    payload = msgspec.json.encode(claims)
    header_b64, payload_b64, _ = token.split(".")
    reference = PyJWS().encode(
        payload, KEYS[alg], algorithm=alg, headers={"kid": KIDS[alg], "typ": "at+jwt"}
    )

    assert header_b64 == reference.split(".")[0] == SIGNERS[alg].header_b64
    assert payload_b64 == b64url(payload).decode() == reference.split(".")[1]
    assert "=" not in token  # RFC 7515 §2: no padding in any segment
    verified = PyJWS().decode_complete(token, public_key_of(KEYS[alg]), algorithms=[alg])
    assert verified["payload"] == payload
    if alg != "ES256":  # PKCS#1 v1.5 and Ed25519 are deterministic: the whole token is equal
        assert token == reference


def base_claims(**extra: Any) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "sub": "s",
        "aud": AUDIENCE,
        "exp": NOW + 60,
        "iat": NOW,
        "jti": "j",
        "client_id": "c",
        **extra,
    }


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_throwaway_and_keyring_signers_produce_the_same_token_bytes(alg: Alg) -> None:
    claims = base_claims()
    keyring_signer = Signer(KIDS[alg], alg, KEYS[alg])
    one_off = encode_access_token(claims, private_key=KEYS[alg], kid=KIDS[alg], alg=alg)
    cached = sign_access_token(claims, keyring_signer.jws)
    assert (keyring_signer.jws.kid, keyring_signer.jws.alg) == (KIDS[alg], alg)
    assert one_off.split(".")[:2] == cached.split(".")[:2]
    assert (
        sign_access_token(MappingProxyType(claims), keyring_signer.jws).split(".")[:2]
        == (cached.split(".")[:2])
    )


@pytest.mark.parametrize(
    "bad",
    [math.nan, math.inf, -math.inf, [1, {"deep": [math.nan]}], {"x": (math.inf,)}],
    ids=["nan", "inf", "-inf", "nested-nan", "inf-in-tuple"],
)
def test_non_finite_float_is_refused_not_encoded_as_null(bad: Any) -> None:
    with pytest.raises(ValueError, match="NaN and Infinity"):
        sign_access_token(base_claims(x=bad, note=None), SIGNERS["ES256"])


def test_null_and_the_text_null_encode_as_given() -> None:
    claims = base_claims(a=None, b="null", c=[None, {"null": None}])
    token = sign_access_token(claims, SIGNERS["EdDSA"])
    assert json.loads(segments(token)[1]) == claims


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        sign_access_token(base_claims(name="\ud800"), SIGNERS["ES256"])


@pytest.mark.parametrize("missing", ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"])
def test_claims_missing_a_required_claim_are_refused_by_a_cached_signer(missing: str) -> None:
    claims = base_claims()
    del claims[missing]
    with pytest.raises(ValueError, match=f"missing required claims: {missing}"):
        sign_access_token(claims, SIGNERS["ES256"])


def test_keyring_signer_refuses_a_key_of_another_algorithm_when_loaded() -> None:
    with pytest.raises(ValueError, match="does not match"):
        Signer(KIDS["ES256"], "ES256", KEYS["EdDSA"])
    with pytest.raises(ValueError, match="kid"):
        Signer("../k", "ES256", KEYS["ES256"])


def test_signer_repr_names_kid_and_alg_only() -> None:
    signer = SIGNERS["RS256"]
    assert repr(signer) == f"JwsSigner(kid={KIDS['RS256']!r}, alg='RS256')"
    assert "jws" not in repr(Signer(KIDS["RS256"], "RS256", KEYS["RS256"]))
