"""The JWT attack battery: every known trick is refused, with the documented code.

Codes (see authsvc.tokens.jwt): INVALID_SIGNATURE = authenticity not established,
MALFORMED = unparseable or not our access-token profile, EXPIRED = past exp.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import get_default_algorithms

from authsvc.signing.crypto import (
    ALGORITHMS,
    Alg,
    SigningPrivateKey,
    generate_private_key,
    load_private_key,
    new_kid,
    public_jwk,
)
from authsvc.tokens.jwt import (
    REQUIRED_CLAIMS,
    Rejected,
    ResolvedKey,
    Verified,
    VerifyResult,
    encode_access_token,
    verify_access_token,
)

NOW = 1_800_000_000.0
ISSUER_A = "https://auth.example.com/t/tenant-a"
ISSUER_B = "https://auth.example.com/t/tenant-b"
AUDIENCE = "https://api.example.com"
ATTACKER_URL = "https://attacker.example/jwks.json"
# Order of the P-256 group (SEC 2 §2.4.2), for the r = s = n variant of CVE-2022-21449.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class Tenant:
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
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

    def claims(self, **overrides: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "customer-42",
            "aud": AUDIENCE,
            "exp": NOW + 300,
            "iat": NOW - 10,
            "jti": "jti-1",
            "client_id": "key-1",
            "scope": "PIPES:READ:orders",
        }
        base.update(overrides)
        return {name: value for name, value in base.items() if value is not ...}

    def mint(self, alg: Alg = "ES256", **overrides: Any) -> str:
        return encode_access_token(
            self.claims(**overrides), private_key=self.private[alg], kid=self.kids[alg], alg=alg
        )

    def header(self, alg: Alg = "ES256", **extra: Any) -> dict[str, Any]:
        return {"alg": alg, "kid": self.kids[alg], "typ": "at+jwt", **extra}

    def verify(self, token: Any, **kwargs: Any) -> VerifyResult:
        options: dict[str, Any] = {"issuer": self.issuer, "audiences": {AUDIENCE}, "now": NOW}
        options.update(kwargs)
        return verify_access_token(token, resolve_key=self.resolve, **options)


@pytest.fixture(scope="module")
def tenant_a() -> Tenant:
    return Tenant(ISSUER_A)


@pytest.fixture(scope="module")
def tenant_b() -> Tenant:
    return Tenant(ISSUER_B)


@pytest.fixture(scope="module")
def attacker() -> dict[str, SigningPrivateKey]:
    return {alg: load_private_key(generate_private_key(alg)) for alg in ALGORITHMS}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    return b64(json.dumps(value).encode())


def forge(header: Any, payload: Any, signature: bytes = b"") -> str:
    """A compact token from arbitrary JSON values and signature bytes."""
    return f"{segment(header)}.{segment(payload)}.{b64(signature)}"


def sign(header: Any, payload: Any, key: SigningPrivateKey, alg: Alg) -> str:
    """A token whose signature genuinely verifies under ``key`` (whatever the header says)."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    signature = get_default_algorithms()[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def sign_raw_payload(header: Any, payload: bytes, key: SigningPrivateKey) -> str:
    signing_input = f"{segment(header)}.{b64(payload)}"
    signature = get_default_algorithms()["ES256"].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def hs256(header: Any, payload: Any, secret: bytes) -> str:
    signing_input = f"{segment(header)}.{segment(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def expect(result: VerifyResult, code: str) -> Rejected:
    assert isinstance(result, Rejected), f"accepted: {result}"
    assert result.code == code, result
    return result


# --------------------------------------------------------------------------- sanity


def test_the_untampered_token_used_by_this_battery_verifies(tenant_a: Tenant) -> None:
    assert isinstance(tenant_a.verify(tenant_a.mint()), Verified)


# --------------------------------------------------------------------------- algorithm attacks


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", [b"", b"anything"])
def test_alg_none_is_rejected_as_invalid_signature(
    tenant_a: Tenant, alg: str, signature: bytes
) -> None:
    header = {"alg": alg, "kid": tenant_a.kids["ES256"], "typ": "at+jwt"}
    token = forge(header, tenant_a.claims(), signature)

    expect(tenant_a.verify(token), "INVALID_SIGNATURE")


def test_alg_none_token_made_by_pyjwt_is_rejected_as_invalid_signature(tenant_a: Tenant) -> None:
    token = jwt.encode(
        tenant_a.claims(),
        "",
        algorithm="none",
        headers={"kid": tenant_a.kids["ES256"], "typ": "at+jwt"},
    )
    assert token.endswith(".")

    expect(tenant_a.verify(token), "INVALID_SIGNATURE")


@pytest.mark.parametrize("header_alg", [None, 256, ["ES256"], {"alg": "ES256"}])
def test_missing_or_non_string_alg_is_rejected_as_invalid_signature(
    tenant_a: Tenant, header_alg: Any
) -> None:
    header = {"kid": tenant_a.kids["ES256"], "typ": "at+jwt"}
    if header_alg is not None:
        header["alg"] = header_alg
    token = sign(header, tenant_a.claims(), tenant_a.private["ES256"], "ES256")

    expect(tenant_a.verify(token), "INVALID_SIGNATURE")


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("form", ["pem", "der", "jwk", "raw-jwk-members"])
def test_hs256_signed_with_the_public_key_is_rejected_as_invalid_signature(
    tenant_a: Tenant, alg: Alg, form: str
) -> None:
    # The classic key-confusion attack: use the published public key as an HMAC secret.
    public = tenant_a.private[alg].public_key()
    jwk = public_jwk(public, kid=tenant_a.kids[alg], alg=alg)
    secrets = {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk": json.dumps(jwk).encode(),
        "raw-jwk-members": (jwk.get("x") or jwk["n"]).encode(),
    }
    header = {"alg": "HS256", "kid": tenant_a.kids[alg], "typ": "at+jwt"}
    token = hs256(header, tenant_a.claims(), secrets[form])

    expect(tenant_a.verify(token), "INVALID_SIGNATURE")


@pytest.mark.parametrize(
    ("kid_alg", "header_alg"),
    [("ES256", "RS256"), ("ES256", "EdDSA"), ("RS256", "ES256"), ("EdDSA", "ES256")],
)
def test_an_attacker_key_of_another_algorithm_under_a_real_kid_is_rejected_as_invalid_signature(
    tenant_a: Tenant, attacker: dict[str, SigningPrivateKey], kid_alg: Alg, header_alg: Alg
) -> None:
    header = {"alg": header_alg, "kid": tenant_a.kids[kid_alg], "typ": "at+jwt"}
    token = sign(header, tenant_a.claims(), attacker[header_alg], header_alg)

    expect(tenant_a.verify(token), "INVALID_SIGNATURE")


@pytest.mark.parametrize("header_alg", ["ES384", "ES256K", "PS256", "RS512", "Ed25519", "es256"])
def test_a_real_signature_under_a_neighbouring_alg_name_is_rejected_as_invalid_signature(
    tenant_a: Tenant, header_alg: str
) -> None:
    alg: Alg = "EdDSA" if header_alg == "Ed25519" else "ES256"
    header = {"alg": header_alg, "kid": tenant_a.kids[alg], "typ": "at+jwt"}
    token = sign(header, tenant_a.claims(), tenant_a.private[alg], alg)

    expect(tenant_a.verify(token), "INVALID_SIGNATURE")


# --------------------------------------------------------------------------- kid attacks


@pytest.mark.parametrize(
    "kid",
    [
        "../../etc/passwd",
        "' OR 1=1 --",
        "/dev/null",
        "kid\x00",
        "k" * 65,
        "",
        "é",
        "a b",
    ],
)
def test_hostile_kid_is_rejected_as_invalid_signature_without_reaching_the_resolver(
    tenant_a: Tenant, attacker: dict[str, SigningPrivateKey], kid: str
) -> None:
    header = {"alg": "ES256", "kid": kid, "typ": "at+jwt"}
    token = sign(header, tenant_a.claims(), attacker["ES256"], "ES256")
    tenant_a.calls.clear()

    expect(tenant_a.verify(token), "INVALID_SIGNATURE")
    assert tenant_a.calls == []


@pytest.mark.parametrize("kid", [None, 7, ["k"], {"k": 1}])
def test_missing_or_non_string_kid_is_rejected_as_invalid_signature(
    tenant_a: Tenant, kid: Any
) -> None:
    header: dict[str, Any] = {"alg": "ES256", "typ": "at+jwt"}
    if kid is not None:
        header["kid"] = kid
    token = sign(header, tenant_a.claims(), tenant_a.private["ES256"], "ES256")

    expect(tenant_a.verify(token), "INVALID_SIGNATURE")


def test_unknown_kid_is_rejected_as_invalid_signature(
    tenant_a: Tenant, attacker: dict[str, SigningPrivateKey]
) -> None:
    unknown = new_kid()
    token = sign(
        {"alg": "ES256", "kid": unknown, "typ": "at+jwt"},
        tenant_a.claims(),
        attacker["ES256"],
        "ES256",
    )
    tenant_a.calls.clear()

    expect(tenant_a.verify(token), "INVALID_SIGNATURE")
    assert tenant_a.calls == [unknown]


def test_resolver_returning_a_key_for_another_kid_is_treated_as_unknown(tenant_a: Tenant) -> None:
    real = tenant_a.keys[tenant_a.kids["ES256"]]

    def sloppy_resolver(kid: str) -> ResolvedKey:
        return ResolvedKey(kid="someone-else", alg="ES256", public_key=real.public_key)

    result = verify_access_token(
        tenant_a.mint(),
        resolve_key=sloppy_resolver,
        issuer=ISSUER_A,
        audiences={AUDIENCE},
        now=NOW,
    )

    expect(result, "INVALID_SIGNATURE")


# --------------------------------------------------------------------------- key-bearing headers


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jku", ATTACKER_URL),
        ("x5u", "https://attacker.example/cert.pem"),
        ("x5c", ["MIIBszCCAVmgAwIBAgIUQ"]),
        ("b64", False),
        ("b64", True),
    ],
)
def test_key_locating_headers_are_rejected_as_malformed_even_on_a_valid_token(
    tenant_a: Tenant, name: str, value: Any
) -> None:
    # Signed by the real key: only the header parameter's presence causes the refusal.
    token = sign(
        tenant_a.header(**{name: value}), tenant_a.claims(), tenant_a.private["ES256"], "ES256"
    )

    result = expect(tenant_a.verify(token), "MALFORMED")
    assert name in result.reason


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_embedded_jwk_with_a_valid_attacker_signature_is_rejected_as_malformed(
    tenant_a: Tenant, attacker: dict[str, SigningPrivateKey], alg: Alg
) -> None:
    embedded = public_jwk(attacker[alg], kid=tenant_a.kids[alg], alg=alg)
    header = {"alg": alg, "kid": tenant_a.kids[alg], "typ": "at+jwt", "jwk": embedded}
    token = sign(header, tenant_a.claims(sub="admin"), attacker[alg], alg)
    # The signature is genuinely valid for the embedded key:
    signing_input, _, signature = token.rpartition(".")
    assert get_default_algorithms()[alg].verify(
        signing_input.encode(),
        jwt.PyJWK(embedded).key,
        base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
    )

    expect(tenant_a.verify(token), "MALFORMED")


def test_jku_pointing_at_an_attacker_jwks_is_rejected_before_any_key_lookup(
    tenant_a: Tenant, attacker: dict[str, SigningPrivateKey]
) -> None:
    header = {"alg": "ES256", "kid": "attacker-kid", "typ": "at+jwt", "jku": ATTACKER_URL}
    token = sign(header, tenant_a.claims(), attacker["ES256"], "ES256")
    tenant_a.calls.clear()

    expect(tenant_a.verify(token), "MALFORMED")
    assert tenant_a.calls == []


@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["urn:example:ext"], [], "exp", None])
def test_crit_header_is_rejected_as_malformed(tenant_a: Tenant, crit: Any) -> None:
    header = tenant_a.header(crit=crit)
    token = sign(header, tenant_a.claims(), tenant_a.private["ES256"], "ES256")

    expect(tenant_a.verify(token), "MALFORMED")


# --------------------------------------------------------------------------- typ


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt ", "application/jwt", "at-jwt", "", 1])
def test_wrong_typ_is_rejected_as_malformed(tenant_a: Tenant, typ: Any) -> None:
    token = sign(tenant_a.header(typ=typ), tenant_a.claims(), tenant_a.private["ES256"], "ES256")

    expect(tenant_a.verify(token), "MALFORMED")


def test_missing_typ_is_rejected_as_malformed(tenant_a: Tenant) -> None:
    header = {"alg": "ES256", "kid": tenant_a.kids["ES256"]}
    token = sign(header, tenant_a.claims(), tenant_a.private["ES256"], "ES256")

    expect(tenant_a.verify(token), "MALFORMED")


def test_an_id_token_style_jwt_from_pyjwt_defaults_is_rejected_as_malformed(
    tenant_a: Tenant,
) -> None:
    token = jwt.encode(
        tenant_a.claims(),
        tenant_a.private["ES256"],
        algorithm="ES256",
        headers={"kid": tenant_a.kids["ES256"]},  # PyJWT's default typ is "JWT"
    )

    expect(tenant_a.verify(token), "MALFORMED")


# --------------------------------------------------------------------------- time


def test_expired_token_is_rejected_as_expired(tenant_a: Tenant) -> None:
    token = tenant_a.mint(exp=NOW - 11, iat=NOW - 300)

    expect(tenant_a.verify(token), "EXPIRED")


def test_nbf_in_the_future_is_rejected_as_malformed(tenant_a: Tenant) -> None:
    token = tenant_a.mint(nbf=NOW + 60)

    assert "not yet valid" in expect(tenant_a.verify(token), "MALFORMED").reason


def test_iat_in_the_future_is_rejected_as_malformed(tenant_a: Tenant) -> None:
    token = tenant_a.mint(iat=NOW + 60, exp=NOW + 600)

    assert "future" in expect(tenant_a.verify(token), "MALFORMED").reason


# --------------------------------------------------------------------------- iss / aud / claims


@pytest.mark.parametrize(
    "iss", [ISSUER_B, ISSUER_A + "/", ISSUER_A.upper(), ISSUER_A[:-1], [ISSUER_A], None]
)
def test_wrong_issuer_is_rejected_as_malformed(tenant_a: Tenant, iss: Any) -> None:
    token = sign(tenant_a.header(), tenant_a.claims(iss=iss), tenant_a.private["ES256"], "ES256")

    assert "issuer" in expect(tenant_a.verify(token), "MALFORMED").reason


@pytest.mark.parametrize(
    "aud",
    [
        "https://other.example.com",
        AUDIENCE + "/",
        AUDIENCE[:-1],
        ["https://other.example.com"],
        [],
        [["https://api.example.com"]],
        {"aud": AUDIENCE},
        7,
    ],
)
def test_wrong_audience_is_rejected_as_malformed(tenant_a: Tenant, aud: Any) -> None:
    token = sign(tenant_a.header(), tenant_a.claims(aud=aud), tenant_a.private["ES256"], "ES256")

    assert "audience" in expect(tenant_a.verify(token), "MALFORMED").reason


def test_missing_audience_is_rejected_as_malformed(tenant_a: Tenant) -> None:
    token = sign(tenant_a.header(), tenant_a.claims(aud=...), tenant_a.private["ES256"], "ES256")

    expect(tenant_a.verify(token), "MALFORMED")


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_missing_required_claim_is_rejected_as_malformed(tenant_a: Tenant, claim: str) -> None:
    payload = tenant_a.claims(**{claim: ...})
    token = sign(tenant_a.header(), payload, tenant_a.private["ES256"], "ES256")

    expect(tenant_a.verify(token), "MALFORMED")


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("exp", "1900000000"),
        ("exp", True),
        ("exp", None),
        ("exp", [NOW + 60]),
        ("exp", 1e400),  # json.dumps writes Infinity
        ("iat", "now"),
        ("nbf", "0"),
        ("nbf", None),
        ("sub", ""),
        ("sub", 42),
        ("client_id", None),
        ("jti", ["a"]),
    ],
)
def test_required_claim_of_the_wrong_type_is_rejected_as_malformed(
    tenant_a: Tenant, claim: str, value: Any
) -> None:
    payload = tenant_a.claims(**{claim: value})
    token = sign(tenant_a.header(), payload, tenant_a.private["ES256"], "ES256")

    expect(tenant_a.verify(token), "MALFORMED")


@pytest.mark.parametrize(
    "literal", ["NaN", "Infinity", "-Infinity", "1e999", "9" * 400, "-" + "9" * 400, "9" * 5000]
)
def test_non_finite_or_huge_exp_is_rejected_as_malformed(tenant_a: Tenant, literal: str) -> None:
    # NaN compares false with everything: accepted, it would make the token immortal.
    payload = json.dumps(tenant_a.claims(exp=0)).replace('"exp": 0', f'"exp": {literal}')
    token = sign_raw_payload(tenant_a.header(), payload.encode(), tenant_a.private["ES256"])

    expect(tenant_a.verify(token), "MALFORMED")


def test_duplicate_claim_names_are_rejected_as_malformed(tenant_a: Tenant) -> None:
    # A parser that keeps the first "sub" and one that keeps the last would disagree.
    payload = json.dumps(tenant_a.claims())[:-1] + ', "sub": "admin"}'
    token = sign_raw_payload(tenant_a.header(), payload.encode(), tenant_a.private["ES256"])

    expect(tenant_a.verify(token), "MALFORMED")


def test_duplicate_header_names_are_rejected_as_malformed(tenant_a: Tenant) -> None:
    header = json.dumps(tenant_a.header())[:-1] + ', "alg": "none"}'
    signing_input = f"{b64(header.encode())}.{segment(tenant_a.claims())}"
    signature = get_default_algorithms()["ES256"].sign(
        signing_input.encode(), tenant_a.private["ES256"]
    )

    expect(tenant_a.verify(f"{signing_input}.{b64(signature)}"), "MALFORMED")


# --------------------------------------------------------------------------- tampering


def _swap_payload(token: str, payload: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{segment(payload)}.{signature}"


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize(
    "change",
    [{"sub": "admin"}, {"scope": "PIPES:READ:*"}, {"exp": NOW + 10**6}, {"aud": AUDIENCE}],
)
def test_tampered_payload_with_the_original_signature_is_rejected_as_invalid_signature(
    tenant_a: Tenant, alg: Alg, change: dict[str, Any]
) -> None:
    token = tenant_a.mint(alg)
    payload = {**tenant_a.claims(), **change}
    if payload == tenant_a.claims():  # re-serialised identically: force a byte difference
        payload["extra"] = 1

    expect(tenant_a.verify(_swap_payload(token, payload)), "INVALID_SIGNATURE")


def test_header_switched_to_another_key_of_the_tenant_is_rejected_as_invalid_signature(
    tenant_a: Tenant,
) -> None:
    second = load_private_key(generate_private_key("ES256"))
    keys = {
        "kid-one": ResolvedKey.from_key("kid-one", tenant_a.private["ES256"]),
        "kid-two": ResolvedKey.from_key("kid-two", second),
    }
    token = sign(
        {"alg": "ES256", "kid": "kid-one", "typ": "at+jwt"},
        tenant_a.claims(),
        tenant_a.private["ES256"],
        "ES256",
    )
    _, payload, signature = token.split(".")
    switched = (
        f"{segment({'alg': 'ES256', 'kid': 'kid-two', 'typ': 'at+jwt'})}.{payload}.{signature}"
    )

    def verify(candidate: str) -> VerifyResult:
        return verify_access_token(
            candidate, resolve_key=keys.get, issuer=ISSUER_A, audiences={AUDIENCE}, now=NOW
        )

    assert isinstance(verify(token), Verified)
    expect(verify(switched), "INVALID_SIGNATURE")


def test_non_canonical_base64_variant_of_a_valid_signature_is_rejected_as_malformed(
    tenant_a: Tenant,
) -> None:
    # An ES256 signature is 86 base64url chars: the last one carries 4 unused bits.
    token = tenant_a.mint("ES256")
    last = token[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) + 1]  # same high bits, a low bit set
    variant = token[:-1] + sibling
    assert base64.urlsafe_b64decode(variant.split(".")[2] + "==") == base64.urlsafe_b64decode(
        token.split(".")[2] + "=="
    )

    expect(tenant_a.verify(variant), "MALFORMED")


# --------------------------------------------------------------------------- cross-tenant


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_tenant_a_token_presented_to_tenant_b_is_rejected_as_invalid_signature(
    tenant_a: Tenant, tenant_b: Tenant, alg: Alg
) -> None:
    token = tenant_a.mint(alg)

    expect(tenant_b.verify(token), "INVALID_SIGNATURE")


def test_tenant_a_token_rewritten_with_tenant_b_issuer_and_kid_is_rejected_as_invalid_signature(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    header = tenant_b.header()
    token = sign(header, tenant_b.claims(), tenant_a.private["ES256"], "ES256")

    expect(tenant_b.verify(token), "INVALID_SIGNATURE")


def test_tenant_a_token_checked_against_tenant_b_issuer_is_rejected_as_malformed(
    tenant_a: Tenant,
) -> None:
    # A's keys, B's issuer: the signature holds but the token is not for this issuer.
    expect(tenant_a.verify(tenant_a.mint(), issuer=ISSUER_B), "MALFORMED")


# --------------------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(bytes(64), id="r=s=0"),
        pytest.param(P256_ORDER.to_bytes(32, "big") * 2, id="r=s=n"),
        pytest.param(bytes(31) + b"\x01" + bytes(31) + b"\x01", id="r=s=1"),
        pytest.param(b"\xff" * 64, id="r=s=2^256-1"),
    ],
)
def test_psychic_ecdsa_signature_is_rejected_as_invalid_signature(
    tenant_a: Tenant, signature: bytes
) -> None:
    # CVE-2022-21449: some ECDSA verifiers accepted r = s = 0 for any message.
    token = forge(tenant_a.header(), tenant_a.claims(), signature)

    expect(tenant_a.verify(token), "INVALID_SIGNATURE")


def test_all_zero_eddsa_signature_is_rejected_as_invalid_signature(tenant_a: Tenant) -> None:
    token = forge(tenant_a.header("EdDSA"), tenant_a.claims(), bytes(64))

    expect(tenant_a.verify(token), "INVALID_SIGNATURE")


def test_der_encoded_ecdsa_signature_is_rejected_as_invalid_signature(tenant_a: Tenant) -> None:
    # JWS wants raw R || S (RFC 7518 §3.4); a DER signature is refused, not "fixed up".
    signing_input = f"{segment(tenant_a.header())}.{segment(tenant_a.claims())}"
    key = tenant_a.private["ES256"]
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))

    expect(tenant_a.verify(f"{signing_input}.{b64(der)}"), "INVALID_SIGNATURE")


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("length", [0, 1, 63, 65, 255, 257])
def test_signature_of_the_wrong_length_is_rejected_as_invalid_signature(
    tenant_a: Tenant, alg: Alg, length: int
) -> None:
    token = forge(tenant_a.header(alg), tenant_a.claims(), b"\x01" * length)

    expect(tenant_a.verify(token), "INVALID_SIGNATURE")


def test_signature_from_another_key_of_the_same_algorithm_is_rejected_as_invalid_signature(
    tenant_a: Tenant, attacker: dict[str, SigningPrivateKey]
) -> None:
    token = sign(tenant_a.header("RS256"), tenant_a.claims(), attacker["RS256"], "RS256")

    expect(tenant_a.verify(token), "INVALID_SIGNATURE")


# --------------------------------------------------------------------------- structure


def test_truncated_token_is_rejected(tenant_a: Tenant) -> None:
    token = tenant_a.mint("ES256")
    header, payload, _ = token.split(".")

    expect(tenant_a.verify(token[:-1]), "MALFORMED")  # 85 chars: impossible base64 length
    expect(tenant_a.verify(token[:-2]), "INVALID_SIGNATURE")  # 63 bytes: wrong length
    expect(tenant_a.verify(f"{header}.{payload}"), "MALFORMED")
    expect(tenant_a.verify(f"{header}.{payload}."), "INVALID_SIGNATURE")
    expect(tenant_a.verify(header), "MALFORMED")


def test_oversized_token_is_rejected_as_malformed_before_any_key_lookup(tenant_a: Tenant) -> None:
    token = tenant_a.mint(padding="x" * 9000)
    tenant_a.calls.clear()

    assert "too large" in expect(tenant_a.verify(token), "MALFORMED").reason
    assert tenant_a.calls == []


def test_max_token_bytes_is_the_callers_choice(tenant_a: Tenant) -> None:
    token = tenant_a.mint()

    expect(tenant_a.verify(token, max_token_bytes=len(token) - 1), "MALFORMED")
    assert isinstance(tenant_a.verify(token, max_token_bytes=len(token)), Verified)


def test_multi_megabyte_garbage_is_rejected_as_malformed(tenant_a: Tenant) -> None:
    expect(tenant_a.verify("a." * 2_000_000), "MALFORMED")


@pytest.mark.parametrize("suffix", [".abc", ".", ".e30", "..", ".e30.e30"])
def test_extra_segments_are_rejected_as_malformed(tenant_a: Tenant, suffix: str) -> None:
    expect(tenant_a.verify(tenant_a.mint() + suffix), "MALFORMED")


def test_jwe_shaped_five_segment_token_is_rejected_as_malformed(tenant_a: Tenant) -> None:
    token = ".".join([segment({"alg": "dir", "enc": "A256GCM"}), "", "aaaa", "bbbb", "cccc"])

    expect(tenant_a.verify(token), "MALFORMED")


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "..",
        "!!!.@@@.###",
        "a b.c d.e f",
        "eyJ=.eyJ=.abc=",  # padding is not base64url (RFC 7515 §2)
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.abc+/",  # base64, not base64url
        "Bearer eyJhbGciOiJFUzI1NiJ9.e30.abc",
        "eyJhbGciOiJFUzI1NiJ9.e30.abc\n",
        "\u0435yJhbGciOiJFUzI1NiJ9.e30.abc",  # Cyrillic small ie
        "a.b.c",  # single char segment: impossible base64 length
    ],
)
def test_non_base64url_garbage_is_rejected_as_malformed(tenant_a: Tenant, token: str) -> None:
    expect(tenant_a.verify(token), "MALFORMED")


@pytest.mark.parametrize("header", [[], "at+jwt", None, 123, True, ["alg", "ES256"]], ids=repr)
def test_header_that_is_not_a_json_object_is_rejected_as_malformed(
    tenant_a: Tenant, header: Any
) -> None:
    expect(tenant_a.verify(forge(header, tenant_a.claims(), bytes(64))), "MALFORMED")


@pytest.mark.parametrize(
    "raw",
    [b"{", b"", b"\xff\xfe{}", '{"alg":"ES256"}'.encode("utf-16"), b"\xef\xbb\xbf{}", b"[" * 5000],
    ids=["truncated", "empty", "bad-utf8", "utf16", "bom", "deep-nesting"],
)
def test_header_that_is_not_utf8_json_is_rejected_as_malformed(
    tenant_a: Tenant, raw: bytes
) -> None:
    token = f"{b64(raw) or 'A'}.{segment(tenant_a.claims())}.{b64(bytes(64))}"

    expect(tenant_a.verify(token), "MALFORMED")


@pytest.mark.parametrize(
    "payload",
    [b"[]", b'"sub"', b"null", b"42", b"{", b"\xff", b"[" * 5000],
    ids=["array", "string", "null", "number", "truncated", "bad-utf8", "deep-nesting"],
)
def test_genuinely_signed_payload_that_is_not_a_json_object_is_rejected_as_malformed(
    tenant_a: Tenant, payload: bytes
) -> None:
    token = sign_raw_payload(tenant_a.header(), payload, tenant_a.private["ES256"])

    expect(tenant_a.verify(token), "MALFORMED")


@pytest.mark.parametrize("value", [None, 42, 4.2, ["a.b.c"], {"token": "x"}, object()])
def test_non_string_token_is_rejected_as_malformed(tenant_a: Tenant, value: Any) -> None:
    expect(tenant_a.verify(value), "MALFORMED")
