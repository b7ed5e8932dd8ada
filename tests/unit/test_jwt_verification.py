"""verify_access_token: accepted tokens, claim and time rules, the API's own contracts, fuzzing."""

from __future__ import annotations

import base64
import json
import string
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import get_default_algorithms

from authsvc.signing.crypto import (
    ALGORITHMS,
    Alg,
    SigningPrivateKey,
    generate_private_key,
    load_private_key,
    new_kid,
)
from authsvc.tokens.jwt import (
    Rejected,
    ResolvedKey,
    Verified,
    VerifyResult,
    encode_access_token,
    unverified_kid,
    verify_access_token,
)

NOW = 1_800_000_000.0
ISSUER = "https://auth.example.com/t/acme"
AUDIENCE = "https://api.example.com"


class Tenant:
    """One tenant's signing keys (one per alg) and a resolver that records its calls."""

    def __init__(self) -> None:
        self.private: dict[str, SigningPrivateKey] = {}
        self.kids: dict[str, str] = {}
        self.keys: dict[str, ResolvedKey] = {}
        for alg in ALGORITHMS:
            kid = new_kid()
            self.private[alg] = load_private_key(generate_private_key(alg))
            self.kids[alg] = kid
            self.keys[kid] = ResolvedKey.from_key(kid, self.private[alg])
        self.calls: list[str] = []

    def resolve(self, kid: str) -> ResolvedKey | None:
        self.calls.append(kid)
        return self.keys.get(kid)


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return Tenant()


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "customer-42",
        "aud": AUDIENCE,
        "exp": NOW + 300,
        "iat": NOW,
        "jti": "jti-1",
        "client_id": "key-1",
        "scope": "PIPES:READ:orders",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not ...}


def mint(tenant: Tenant, alg: Alg = "ES256", **overrides: Any) -> str:
    return encode_access_token(
        claims(**overrides), private_key=tenant.private[alg], kid=tenant.kids[alg], alg=alg
    )


def verify(tenant: Tenant, token: Any, **kwargs: Any) -> VerifyResult:
    options: dict[str, Any] = {"issuer": ISSUER, "audiences": {AUDIENCE}, "now": NOW}
    options.update(kwargs)
    return verify_access_token(token, resolve_key=tenant.resolve, **options)


def resign(tenant: Tenant, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """A token with an arbitrary header, genuinely signed by the tenant's ES256 key."""
    return jwt.encode(payload, tenant.private["ES256"], algorithm="ES256", headers=header)


def sign_raw(tenant: Tenant, header: dict[str, Any], payload: bytes) -> str:
    """Any header and payload bytes, genuinely signed by the tenant's ES256 key."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(payload)
    signature = get_default_algorithms()["ES256"].sign(
        signing_input.encode(), tenant.private["ES256"]
    )
    return signing_input + "." + _b64(signature)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def expect(result: VerifyResult, code: str) -> Rejected:
    assert isinstance(result, Rejected), result
    assert result.code == code, result
    return result


# --------------------------------------------------------------------------- accepted


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_valid_token_verifies_for_each_algorithm(tenant: Tenant, alg: Alg) -> None:
    result = verify(tenant, mint(tenant, alg))

    assert isinstance(result, Verified)
    assert result.claims == claims()
    assert result.header == {"alg": alg, "kid": tenant.kids[alg], "typ": "at+jwt"}


def test_encoded_header_is_exactly_alg_kid_and_at_jwt_type(tenant: Tenant) -> None:
    header = jwt.get_unverified_header(mint(tenant))

    assert header == {"alg": "ES256", "kid": tenant.kids["ES256"], "typ": "at+jwt"}


def test_resolver_is_called_once_with_the_header_kid(tenant: Tenant) -> None:
    tenant.calls.clear()

    verify(tenant, mint(tenant, "EdDSA"))

    assert tenant.calls == [tenant.kids["EdDSA"]]


def test_token_given_as_ascii_bytes_verifies(tenant: Tenant) -> None:
    assert isinstance(verify(tenant, mint(tenant).encode()), Verified)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_typ_is_compared_case_insensitively_with_or_without_application_prefix(
    tenant: Tenant, typ: str
) -> None:
    token = resign(tenant, {"kid": tenant.kids["ES256"], "typ": typ}, claims())

    assert isinstance(verify(tenant, token), Verified)


def test_aud_list_with_one_matching_audience_verifies(tenant: Tenant) -> None:
    token = mint(tenant, aud=["https://other.example.com", AUDIENCE])

    assert isinstance(verify(tenant, token), Verified)


def test_any_of_several_accepted_audiences_matches(tenant: Tenant) -> None:
    token = mint(tenant, aud="https://second.example.com")

    result = verify(tenant, token, audiences=[AUDIENCE, "https://second.example.com"])

    assert isinstance(result, Verified)


def test_integer_and_float_numeric_dates_are_both_accepted(tenant: Tenant) -> None:
    token = mint(tenant, exp=int(NOW) + 60, iat=int(NOW), nbf=NOW - 0.5)

    assert isinstance(verify(tenant, token), Verified)


def test_extra_claims_are_returned_untouched(tenant: Tenant) -> None:
    scopes = [{"type": "PIPES:READ", "resource": "orders", "fixed_params": {"org_id": 42}}]
    token = mint(tenant, scopes=scopes, limits={"rps": 5}, name="dash")

    result = verify(tenant, token)

    assert isinstance(result, Verified)
    assert result.claims["scopes"] == scopes
    assert result.claims["limits"] == {"rps": 5}


# --------------------------------------------------------------------------- time and leeway


def test_leeway_is_honoured_just_before_the_exp_boundary(tenant: Tenant) -> None:
    token = mint(tenant, exp=NOW)

    assert isinstance(verify(tenant, token, now=NOW + 9.999, leeway_s=10), Verified)


def test_token_is_expired_at_exp_plus_leeway(tenant: Tenant) -> None:
    token = mint(tenant, exp=NOW)

    expect(verify(tenant, token, now=NOW + 10, leeway_s=10), "EXPIRED")


def test_without_leeway_the_token_expires_exactly_at_exp(tenant: Tenant) -> None:
    token = mint(tenant, exp=NOW, iat=NOW - 60)

    assert isinstance(verify(tenant, token, now=NOW - 0.001, leeway_s=0), Verified)
    expect(verify(tenant, token, now=NOW, leeway_s=0), "EXPIRED")


def test_nbf_within_leeway_is_accepted_and_beyond_it_refused(tenant: Tenant) -> None:
    token = mint(tenant, nbf=NOW + 10, iat=NOW - 1)

    assert isinstance(verify(tenant, token, leeway_s=10), Verified)
    expect(verify(tenant, token, leeway_s=9), "MALFORMED")


def test_iat_within_leeway_is_accepted_and_beyond_it_refused(tenant: Tenant) -> None:
    token = mint(tenant, iat=NOW + 5)

    assert isinstance(verify(tenant, token, leeway_s=5), Verified)
    expect(verify(tenant, token, leeway_s=4.9), "MALFORMED")


def test_time_comes_only_from_the_injected_now(tenant: Tenant) -> None:
    # The wall clock is far from NOW; a token valid at NOW verifies, one expired at NOW does not.
    long_ago = 1_000_000_000.0
    token = mint(tenant, exp=long_ago + 60, iat=long_ago)

    assert isinstance(verify(tenant, token, now=long_ago), Verified)
    expect(verify(tenant, token, now=long_ago + 3600), "EXPIRED")


# --------------------------------------------------------------------------- caller contract


@pytest.mark.parametrize("leeway", [30.001, 60, -1, float("nan")])
def test_leeway_outside_0_to_30_seconds_is_a_value_error(tenant: Tenant, leeway: float) -> None:
    with pytest.raises(ValueError, match="leeway"):
        verify(tenant, mint(tenant), leeway_s=leeway)


def test_leeway_of_exactly_30_seconds_is_allowed(tenant: Tenant) -> None:
    assert isinstance(verify(tenant, mint(tenant), leeway_s=30), Verified)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"issuer": ""}, "issuer"),
        ({"audiences": set()}, "audiences"),
        ({"audiences": AUDIENCE}, "audiences"),  # a bare string would match by substring
        ({"now": float("nan")}, "now"),
        ({"max_token_bytes": 0}, "max_token_bytes"),
    ],
)
def test_misconfigured_verifier_is_a_value_error(
    tenant: Tenant, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        verify(tenant, mint(tenant), **kwargs)


def test_resolver_failure_propagates_instead_of_becoming_a_verdict(tenant: Tenant) -> None:
    def broken(kid: str) -> ResolvedKey | None:
        raise ConnectionError("key store down")

    with pytest.raises(ConnectionError):
        verify_access_token(
            mint(tenant), resolve_key=broken, issuer=ISSUER, audiences={AUDIENCE}, now=NOW
        )


def test_resolved_key_refuses_a_private_key(tenant: Tenant) -> None:
    with pytest.raises(ValueError, match="public"):
        ResolvedKey(kid="k", alg="ES256", public_key=tenant.private["ES256"])  # type: ignore[arg-type]


def test_resolved_key_refuses_an_algorithm_that_is_not_the_keys(tenant: Tenant) -> None:
    with pytest.raises(ValueError, match="pinned"):
        ResolvedKey(kid="k", alg="RS256", public_key=tenant.private["ES256"].public_key())


def test_encoder_refuses_claims_missing_an_rfc_9068_required_claim(tenant: Tenant) -> None:
    with pytest.raises(ValueError, match="client_id"):
        encode_access_token(
            claims(client_id=...),
            private_key=tenant.private["ES256"],
            kid=tenant.kids["ES256"],
            alg="ES256",
        )


def test_encoder_refuses_a_key_of_another_algorithm(tenant: Tenant) -> None:
    with pytest.raises(ValueError, match="does not match"):
        encode_access_token(
            claims(), private_key=tenant.private["EdDSA"], kid=tenant.kids["EdDSA"], alg="ES256"
        )


@pytest.mark.parametrize("kid", ["", "../x", "a b", "k" * 65])
def test_encoder_refuses_a_kid_outside_the_kid_alphabet(tenant: Tenant, kid: str) -> None:
    with pytest.raises(ValueError, match="kid"):
        encode_access_token(claims(), private_key=tenant.private["ES256"], kid=kid, alg="ES256")


def test_unverified_kid_reads_the_header_kid(tenant: Tenant) -> None:
    assert unverified_kid(mint(tenant, "RS256")) == tenant.kids["RS256"]
    assert unverified_kid(mint(tenant, "RS256").encode()) == tenant.kids["RS256"]


@pytest.mark.parametrize(
    "token",
    ["", "abc", "!!.x.y", "e30.e30.", "eyJraWQiOjF9.e30.", "eyJraWQiOiIuLi8ifQ.e30.", None, 5],
)
def test_unverified_kid_is_none_for_anything_without_a_valid_kid(token: Any) -> None:
    assert unverified_kid(token) is None


def test_rejection_reasons_are_short_and_never_echo_token_content(tenant: Tenant) -> None:
    marker = "ZZMARKERZZ"
    tokens = [
        mint(tenant, iss=marker),
        mint(tenant, aud=marker),
        mint(tenant, sub=marker, exp=NOW - 100),
        resign(tenant, {"kid": marker, "typ": "at+jwt"}, claims()),
        resign(tenant, {"kid": tenant.kids["ES256"], "typ": marker}, claims()),
        marker,
        marker + "." + marker + "." + marker,
    ]
    for token in tokens:
        result = verify(tenant, token)
        assert isinstance(result, Rejected)
        assert marker not in result.reason
        assert len(result.reason) <= 80


# --------------------------------------------------------------------------- fuzzing

_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_B64URL = string.ascii_letters + string.digits + "-_"

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_header_keys = st.sampled_from(["alg", "typ", "kid", "crit", "jku", "jwk", "b64", "x5c", "cty"])


@_FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text_never_raises_and_is_never_accepted(tenant: Tenant, text: str) -> None:
    assert isinstance(verify(tenant, text), Rejected)
    unverified_kid(text)


@_FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise_and_are_never_accepted(tenant: Tenant, data: bytes) -> None:
    assert isinstance(verify(tenant, data), Rejected)
    unverified_kid(data)


@_FUZZ
@given(st.lists(st.text(alphabet=_B64URL, max_size=120), min_size=1, max_size=5))
def test_arbitrary_base64url_segments_never_raise(tenant: Tenant, segments: list[str]) -> None:
    assert isinstance(verify(tenant, ".".join(segments)), Rejected)


@_FUZZ
@given(
    header=st.dictionaries(_header_keys | st.text(max_size=5), _json_values, max_size=6),
    payload=_json_values,
    signature=st.binary(max_size=300),
    use_real_kid=st.booleans(),
)
def test_arbitrary_json_headers_and_payloads_never_raise(
    tenant: Tenant, header: dict[str, Any], payload: Any, signature: bytes, use_real_kid: bool
) -> None:
    if use_real_kid:
        header = {**header, "kid": tenant.kids["ES256"], "alg": "ES256", "typ": "at+jwt"}
    token = ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode()), _b64(signature)]
    )

    assert isinstance(verify(tenant, token), Rejected)


@_FUZZ
@given(
    payload=st.dictionaries(
        st.sampled_from(["iss", "aud", "exp", "iat", "nbf", "sub", "jti", "client_id"]),
        _json_values,
    )
)
def test_genuinely_signed_arbitrary_claims_never_raise(
    tenant: Tenant, payload: dict[str, Any]
) -> None:
    header = {"alg": "ES256", "kid": tenant.kids["ES256"], "typ": "at+jwt"}
    token = sign_raw(tenant, header, json.dumps(payload).encode())

    result = verify(tenant, token)

    assert isinstance(result, Verified | Rejected)


_VALID: dict[str, str] = {}


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_single_character_change_to_a_valid_token_is_rejected(
    tenant: Tenant, data: st.DataObject
) -> None:
    alg: Alg = data.draw(st.sampled_from(ALGORITHMS))
    token = _VALID.setdefault(alg, mint(tenant, alg))
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from(_B64URL + ".=+/ "))
    mutated = token[:position] + replacement + token[position + 1 :]
    if mutated == token:
        return

    assert isinstance(verify(tenant, mutated), Rejected)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_every_truncation_of_a_valid_token_is_rejected(tenant: Tenant, alg: Alg) -> None:
    token = mint(tenant, alg)

    for length in range(len(token)):
        assert isinstance(verify(tenant, token[:length]), Rejected)
