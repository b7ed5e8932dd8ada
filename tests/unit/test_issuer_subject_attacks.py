"""The JWT attack battery against subject tokens (an IdP's JWTs presented for exchange).

Codes (authsvc.issuers.subject): INVALID_SIGNATURE = authenticity not established, MALFORMED =
unparseable or not a token this exchange accepts, EXPIRED = past exp, CONDITION_FAILED = a
configured condition does not hold.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import get_default_algorithms

from authsvc.issuers.claims import parse_conditions
from authsvc.issuers.jwks import SUBJECT_ALGORITHMS, IssuerKey, parse_jwks
from authsvc.issuers.jwks_cache import JwksUnavailable
from authsvc.issuers.subject import (
    MAX_LEEWAY_S,
    Rejected,
    SubjectResult,
    Verified,
    verify_subject_token,
)
from tests.idp import Keys, PrivateKey, b64, public_jwk, segment, sign

NOW = 1_800_000_000.0
ISSUER = "https://idp.example.com/realms/acme"
AUDIENCE = "authsvc-acme"
ALL = frozenset(SUBJECT_ALGORITHMS)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class Idp:
    """The trusted IdP: its keys under several kids and a recording key resolver."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        document = {
            "keys": [
                public_jwk(keys.rsa, "rsa-1"),
                public_jwk(keys.rsa, "rsa-rs", alg="RS256"),
                public_jwk(keys.ec, "ec-1"),
                public_jwk(keys.ed, "ed-1"),
            ]
        }
        self.jwks = parse_jwks(document, algorithms=ALL).keys
        self.calls: list[str] = []
        self.private: dict[str, PrivateKey] = {
            "rsa-1": keys.rsa,
            "rsa-rs": keys.rsa,
            "ec-1": keys.ec,
            "ed-1": keys.ed,
        }

    async def resolve(self, kid: str) -> IssuerKey | None:
        self.calls.append(kid)
        return self.jwks.get(kid)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "user-1",
            "aud": AUDIENCE,
            "exp": NOW + 300,
            "iat": NOW - 10,
            "org_id": "acme",
            "groups": ["staff", "admins"],
            "email_verified": True,
        }
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not ...}

    def header(self, alg: str, kid: str, **extra: Any) -> dict[str, Any]:
        return {
            k: v for k, v in {"alg": alg, "kid": kid, "typ": "JWT", **extra}.items() if v is not ...
        }

    def mint(self, alg: str = "ES256", kid: str = "ec-1", header: Any = None, **claims: Any) -> str:
        return sign(header or self.header(alg, kid), self.claims(**claims), self.private[kid], alg)

    async def verify(self, token: Any, **kwargs: Any) -> SubjectResult:
        options: dict[str, Any] = {
            "issuer": ISSUER,
            "audiences": {AUDIENCE},
            "algorithms": ALL,
            "now": NOW,
        }
        options.update(kwargs)
        return await verify_subject_token(token, resolve_key=self.resolve, **options)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def idp(keys: Keys) -> Idp:
    return Idp(keys)


@pytest.fixture(scope="module")
def attacker() -> Keys:
    return Keys()


def expect(result: SubjectResult, code: str) -> Rejected:
    assert isinstance(result, Rejected), f"accepted: {result}"
    assert result.code == code, result
    return result


def forge(header: Any, payload: Any, signature: bytes = b"") -> str:
    return f"{segment(header)}.{segment(payload)}.{b64(signature)}"


def raw_token(header: bytes, payload: bytes, key: PrivateKey, alg: str) -> str:
    signing_input = f"{b64(header)}.{b64(payload)}"
    return f"{signing_input}.{b64(get_default_algorithms()[alg].sign(signing_input.encode(), key))}"


# --------------------------------------------------------------------------- sanity


@pytest.mark.parametrize(
    ("alg", "kid"),
    [
        ("RS256", "rsa-1"),
        ("PS256", "rsa-1"),
        ("RS256", "rsa-rs"),
        ("ES256", "ec-1"),
        ("EdDSA", "ed-1"),
    ],
)
async def test_a_genuine_token_of_each_algorithm_verifies(idp: Idp, alg: str, kid: str) -> None:
    result = await idp.verify(idp.mint(alg, kid))
    assert isinstance(result, Verified), result
    assert result.claims["sub"] == "user-1"
    assert result.header["kid"] == kid


@pytest.mark.parametrize(
    "typ", [..., "JWT", "jwt", "at+jwt", "AT+JWT", "application/at+jwt", "application/JWT"]
)
async def test_id_token_and_access_token_types_are_accepted(idp: Idp, typ: Any) -> None:
    token = idp.mint(header=idp.header("ES256", "ec-1", typ=typ))
    assert isinstance(await idp.verify(token), Verified)


async def test_an_audience_list_containing_ours_is_accepted(idp: Idp) -> None:
    token = idp.mint(aud=["other", AUDIENCE])
    assert isinstance(await idp.verify(token), Verified)


async def test_a_token_without_iat_or_nbf_is_accepted(idp: Idp) -> None:
    assert isinstance(await idp.verify(idp.mint(iat=...)), Verified)


# --------------------------------------------------------------------------- algorithm attacks


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", [b"", b"x" * 64])
async def test_unsecured_tokens_are_refused_in_any_case(
    idp: Idp, alg: str, signature: bytes
) -> None:
    token = forge({"alg": alg, "kid": "ec-1"}, idp.claims(), signature)
    result = expect(await idp.verify(token), "INVALID_SIGNATURE")
    assert "none" in result.reason
    assert idp.calls == []


@pytest.mark.parametrize("secret_form", ["pem", "der", "jwk-n"])
async def test_hs256_with_the_rsa_public_key_as_hmac_secret_is_refused(
    idp: Idp, keys: Keys, secret_form: str
) -> None:
    public = keys.rsa.public_key()
    secret = {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk-n": public_jwk(keys.rsa, "x")["n"].encode(),
    }[secret_form]
    signing_input = f"{segment({'alg': 'HS256', 'kid': 'rsa-1'})}.{segment(idp.claims())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    expect(await idp.verify(f"{signing_input}.{b64(mac)}"), "INVALID_SIGNATURE")
    assert idp.calls == []


@pytest.mark.parametrize(
    "alg", ["HS256", "HS384", "HS512", "RS384", "RS512", "ES384", "PS512", "rs256", "Ed25519"]
)
async def test_algorithms_outside_the_allow_list_are_refused_before_key_lookup(
    idp: Idp, alg: str
) -> None:
    token = forge({"alg": alg, "kid": "rsa-1"}, idp.claims(), b"x" * 256)
    expect(await idp.verify(token), "INVALID_SIGNATURE")
    assert idp.calls == []


async def test_an_algorithm_the_issuer_does_not_allow_is_refused(idp: Idp) -> None:
    token = idp.mint("RS256", "rsa-1")
    expect(await idp.verify(token, algorithms={"ES256"}), "INVALID_SIGNATURE")
    assert idp.calls == []


async def test_ps256_on_a_key_pinned_to_rs256_is_refused(idp: Idp) -> None:
    token = idp.mint("PS256", "rsa-rs")  # a genuine PS256 signature by the same RSA key
    result = expect(await idp.verify(token), "INVALID_SIGNATURE")
    assert result.reason == "algorithm is not allowed for the signing key"


async def test_an_rs256_header_over_a_ps256_signature_is_refused(idp: Idp, keys: Keys) -> None:
    header = idp.header("RS256", "rsa-1")
    token = sign(header, idp.claims(), keys.rsa, "PS256")
    expect(await idp.verify(token), "INVALID_SIGNATURE")


async def test_an_ec_key_with_an_rs256_header_is_refused(idp: Idp, keys: Keys) -> None:
    token = sign(idp.header("RS256", "ec-1"), idp.claims(), keys.rsa, "RS256")
    result = expect(await idp.verify(token), "INVALID_SIGNATURE")
    assert result.reason == "algorithm is not allowed for the signing key"


async def test_an_rsa_key_with_an_es256_header_is_refused(idp: Idp, keys: Keys) -> None:
    token = sign(idp.header("ES256", "rsa-1"), idp.claims(), keys.ec, "ES256")
    expect(await idp.verify(token), "INVALID_SIGNATURE")


async def test_eddsa_header_on_an_ec_key_is_refused(idp: Idp, keys: Keys) -> None:
    token = sign(idp.header("EdDSA", "ec-1"), idp.claims(), keys.ed, "EdDSA")
    expect(await idp.verify(token), "INVALID_SIGNATURE")


# --------------------------------------------------------------------------- key attacks


@pytest.mark.parametrize(
    "kid", ["../../../../etc/passwd", "'OR'1'='1'--", "https://evil/jwks", "*"]
)
async def test_path_and_query_shaped_kids_are_only_dictionary_keys(
    idp: Idp, keys: Keys, kid: str
) -> None:
    token = sign({"alg": "ES256", "kid": kid}, idp.claims(), keys.ec, "ES256")
    result = expect(await idp.verify(token), "INVALID_SIGNATURE")
    assert result.reason == "unknown signing key"
    assert idp.calls == [kid]


@pytest.mark.parametrize(
    "kid", ["a b", "k\n1", "", "x" * 257, "\u00e9t\u00e9", 7, ["ec-1"], {"kid": "ec-1"}, True]
)
async def test_kids_outside_printable_ascii_are_refused_without_lookup(
    idp: Idp, keys: Keys, kid: Any
) -> None:
    token = sign({"alg": "ES256", "kid": kid}, idp.claims(), keys.ec, "ES256")
    expect(await idp.verify(token), "INVALID_SIGNATURE")
    assert idp.calls == []


async def test_a_missing_kid_is_refused(idp: Idp, keys: Keys) -> None:
    token = sign({"alg": "ES256"}, idp.claims(), keys.ec, "ES256")
    result = expect(await idp.verify(token), "INVALID_SIGNATURE")
    assert result.reason == "header has no key id"


async def test_an_unknown_kid_is_looked_up_once_and_refused(idp: Idp, keys: Keys) -> None:
    token = sign({"alg": "ES256", "kid": "gone"}, idp.claims(), keys.ec, "ES256")
    expect(await idp.verify(token), "INVALID_SIGNATURE")
    assert idp.calls == ["gone"]


async def test_a_token_signed_by_another_key_under_our_kid_is_refused(
    idp: Idp, attacker: Keys
) -> None:
    cases: list[tuple[str, str, PrivateKey]] = [
        ("ES256", "ec-1", attacker.ec),
        ("RS256", "rsa-1", attacker.rsa),
        ("EdDSA", "ed-1", attacker.ed),
    ]
    for alg, kid, key in cases:
        token = sign(idp.header(alg, kid), idp.claims(), key, alg)
        expect(await idp.verify(token), "INVALID_SIGNATURE")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("jwk", {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
        ("x5c", ["MIIB"]),
        ("b64", False),
    ],
)
async def test_key_bearing_headers_are_refused_even_on_a_valid_signature(
    idp: Idp, name: str, value: Any
) -> None:
    token = idp.mint(header=idp.header("ES256", "ec-1", **{name: value}))
    result = expect(await idp.verify(token), "MALFORMED")
    assert name in result.reason
    assert idp.calls == []


async def test_the_attackers_embedded_jwk_is_never_used(idp: Idp, attacker: Keys) -> None:
    header = idp.header("ES256", "ec-1", jwk=public_jwk(attacker.ec, "evil"))
    token = sign(header, idp.claims(), attacker.ec, "ES256")
    expect(await idp.verify(token), "MALFORMED")


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "x"])
async def test_crit_headers_are_refused(idp: Idp, crit: Any) -> None:
    token = idp.mint(header=idp.header("ES256", "ec-1", crit=crit))
    expect(await idp.verify(token), "MALFORMED")


# --------------------------------------------------------------------------- signature bytes


async def test_psychic_signatures_are_refused(idp: Idp) -> None:
    """CVE-2022-21449: r = s = 0 (and r = s = n) must never verify."""
    for value in (0, P256_ORDER):
        sig = value.to_bytes(32, "big") * 2
        token = forge(idp.header("ES256", "ec-1"), idp.claims(), sig)
        expect(await idp.verify(token), "INVALID_SIGNATURE")


async def test_der_encoded_ecdsa_signatures_are_refused(idp: Idp, keys: Keys) -> None:
    signing_input = f"{segment(idp.header('ES256', 'ec-1'))}.{segment(idp.claims())}"
    der = keys.ec.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    expect(await idp.verify(f"{signing_input}.{b64(der)}"), "INVALID_SIGNATURE")


@pytest.mark.parametrize(("alg", "kid"), [("ES256", "ec-1"), ("RS256", "rsa-1"), ("EdDSA", "ed-1")])
@pytest.mark.parametrize("change", ["short", "long", "empty"])
async def test_signatures_of_the_wrong_length_are_refused(
    idp: Idp, alg: str, kid: str, change: str
) -> None:
    head, payload, sig = idp.mint(alg, kid).split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    raw = {"short": raw[:-1], "long": raw + b"\x00", "empty": b""}[change]
    expect(await idp.verify(f"{head}.{payload}.{b64(raw)}"), "INVALID_SIGNATURE")


async def test_a_left_padded_rsa_signature_is_refused(idp: Idp) -> None:
    head, payload, sig = idp.mint("RS256", "rsa-1").split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    padded = b64(bytes(1) + raw)
    expect(await idp.verify(f"{head}.{payload}.{padded}"), "INVALID_SIGNATURE")


async def test_a_changed_payload_breaks_the_signature(idp: Idp) -> None:
    head, _, sig = idp.mint().split(".")
    payload = segment(idp.claims(org_id="other-org"))
    expect(await idp.verify(f"{head}.{payload}.{sig}"), "INVALID_SIGNATURE")


# --------------------------------------------------------------------------- encoding


async def test_non_canonical_base64_is_refused(idp: Idp) -> None:
    head, payload, sig = idp.mint("EdDSA", "ed-1").split(".")  # 64 bytes: rem 2 in base64url
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(sig[-1])
    sloppy = sig[:-1] + alphabet[index | 1]  # same bytes, non-zero unused bits
    assert sloppy != sig
    expect(await idp.verify(f"{head}.{payload}.{sloppy}"), "MALFORMED")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "=",
        lambda t: t.replace("-", "+").replace("_", "/") + "+/",
        lambda t: t + ".extra",
        lambda t: ".".join(t.split(".")[:2]),
        lambda t: t + "..",
        lambda t: " " + t,
        lambda t: t + "\n",
        lambda t: t.split(".")[0] + "..." + t.split(".")[2],
    ],
)
async def test_tokens_that_are_not_one_compact_jws_are_refused(idp: Idp, mangle: Any) -> None:
    expect(await idp.verify(mangle(idp.mint())), "MALFORMED")
    assert idp.calls == []


async def test_a_jwe_is_refused(idp: Idp) -> None:
    jwe = ".".join(
        b64(part) for part in [b'{"alg":"RSA-OAEP","enc":"A256GCM"}', b"k", b"iv", b"ct", b"tag"]
    )
    expect(await idp.verify(jwe), "MALFORMED")


async def test_the_json_serialization_is_refused(idp: Idp) -> None:
    head, payload, sig = idp.mint().split(".")
    general = json.dumps({"payload": payload, "protected": head, "signature": sig})
    expect(await idp.verify(general), "MALFORMED")


@pytest.mark.parametrize(
    "token", [None, 42, 4.2, ["a.b.c"], {"t": 1}, b"\xff.\xff.\xff", "", "é.é.é"]
)
async def test_non_token_values_are_refused(idp: Idp, token: Any) -> None:
    expect(await idp.verify(token), "MALFORMED")


async def test_an_oversized_token_is_refused_before_any_parsing(idp: Idp) -> None:
    token = idp.mint(padding="x" * 9000)
    result = expect(await idp.verify(token), "MALFORMED")
    assert result.reason == "token is too large"
    assert idp.calls == []


@pytest.mark.parametrize(
    "header",
    [
        b'{"alg":"ES256","kid":"ec-1","alg":"none"}',
        b'{"alg":"none","kid":"ec-1","alg":"ES256"}',
        b'["ES256"]',
        b'"ES256"',
        b"\xff\xfe{}",
        b'{"alg":"ES256","kid":"ec-1",}',
        b'{"alg":"ES256","kid":"ec-1","n":NaN}',
    ],
)
async def test_a_header_that_is_not_one_json_object_is_refused(
    idp: Idp, keys: Keys, header: bytes
) -> None:
    token = raw_token(header, json.dumps(idp.claims()).encode(), keys.ec, "ES256")
    expect(await idp.verify(token), "MALFORMED")
    assert idp.calls == []


@pytest.mark.parametrize(
    "payload",
    [
        b'{"iss":"%s","iss":"https://evil.example"}',
        b'{"sub":"a","sub":"b"}',
        b"[1,2]",
        b"null",
        b'{"exp":Infinity}',
    ],
)
async def test_a_payload_that_is_not_one_json_object_is_refused(
    idp: Idp, keys: Keys, payload: bytes
) -> None:
    header = json.dumps(idp.header("ES256", "ec-1")).encode()
    token = raw_token(header, payload, keys.ec, "ES256")
    result = expect(await idp.verify(token), "MALFORMED")
    assert result.reason == "payload is not a JSON object"


# --------------------------------------------------------------------------- typ


@pytest.mark.parametrize(
    "typ",
    [
        "dpop+jwt",
        "logout+jwt",
        "secevent+jwt",
        "application/logout+jwt",
        "oauth-authz-req+jwt",
        "JOSE",
        "",
        1,
        None,
    ],
)
async def test_other_token_types_are_refused(idp: Idp, typ: Any) -> None:
    header = {"alg": "ES256", "kid": "ec-1", "typ": typ}
    token = idp.mint(header=header)
    expect(await idp.verify(token), "MALFORMED")


async def test_an_untyped_logout_token_is_refused_by_its_events_claim(idp: Idp) -> None:
    events: dict[str, Any] = {"http://schemas.openid.net/event/backchannel-logout": {}}
    token = idp.mint(header=idp.header("ES256", "ec-1", typ=...), events=events)
    result = expect(await idp.verify(token), "MALFORMED")
    assert result.reason == "security event tokens are not accepted"


# --------------------------------------------------------------------------- claims


@pytest.mark.parametrize(
    "iss",
    [
        ...,
        None,
        "https://evil.example.com",
        ISSUER + "/",
        ISSUER.upper(),
        ISSUER + " ",
        [ISSUER],
        1,
    ],
)
async def test_a_wrong_issuer_is_refused(idp: Idp, iss: Any) -> None:
    result = expect(await idp.verify(idp.mint(iss=iss)), "MALFORMED")
    assert result.reason == "issuer is not accepted"


@pytest.mark.parametrize(
    "aud", [..., None, "other", ["other"], [], [1, None], {"aud": AUDIENCE}, AUDIENCE.upper()]
)
async def test_a_missing_or_foreign_audience_is_refused(idp: Idp, aud: Any) -> None:
    result = expect(await idp.verify(idp.mint(aud=aud)), "MALFORMED")
    assert result.reason == "audience is not accepted"


async def test_expiry_is_enforced_with_the_leeway(idp: Idp) -> None:
    assert isinstance(await idp.verify(idp.mint(exp=NOW - 29), leeway_s=30), Verified)
    expect(await idp.verify(idp.mint(exp=NOW - 30), leeway_s=30), "EXPIRED")
    expect(await idp.verify(idp.mint(exp=NOW - 3600)), "EXPIRED")
    expect(await idp.verify(idp.mint(exp=NOW), leeway_s=0), "EXPIRED")


@pytest.mark.parametrize("exp", [..., None, "1900000000", True, [NOW + 60], 2**64, 10**400])
async def test_a_missing_or_invalid_exp_is_refused(idp: Idp, exp: Any) -> None:
    result = expect(await idp.verify(idp.mint(exp=exp)), "MALFORMED")
    assert result.reason in {"claim exp is missing or invalid", "payload is not a JSON object"}


async def test_an_exp_of_infinity_written_as_a_huge_float_is_refused(idp: Idp, keys: Keys) -> None:
    header = json.dumps(idp.header("ES256", "ec-1")).encode()
    payload = json.dumps(idp.claims(exp=0)).replace('"exp": 0', '"exp": 1e400').encode()
    result = expect(await idp.verify(raw_token(header, payload, keys.ec, "ES256")), "MALFORMED")
    assert result.reason == "claim exp is missing or invalid"


async def test_a_token_not_yet_valid_is_refused(idp: Idp) -> None:
    assert isinstance(await idp.verify(idp.mint(nbf=NOW + 29), leeway_s=30), Verified)
    result = expect(await idp.verify(idp.mint(nbf=NOW + 31), leeway_s=30), "MALFORMED")
    assert result.reason == "token is not yet valid"


async def test_a_token_issued_in_the_future_is_refused(idp: Idp) -> None:
    assert isinstance(await idp.verify(idp.mint(iat=NOW + 29), leeway_s=30), Verified)
    result = expect(await idp.verify(idp.mint(iat=NOW + 31), leeway_s=30), "MALFORMED")
    assert result.reason == "token is issued in the future"


@pytest.mark.parametrize(
    ("claim", "value"), [("nbf", "soon"), ("iat", False), ("iat", None), ("nbf", [1])]
)
async def test_invalid_optional_times_are_refused(idp: Idp, claim: str, value: Any) -> None:
    expect(await idp.verify(idp.mint(**{claim: value})), "MALFORMED")


# --------------------------------------------------------------------------- conditions


async def test_conditions_that_hold_let_the_token_through(idp: Idp) -> None:
    conditions = parse_conditions({"email_verified": True, "/groups": "admins", "org_id": "acme"})
    assert isinstance(await idp.verify(idp.mint(), conditions=conditions), Verified)


@pytest.mark.parametrize(
    ("conditions", "claims"),
    [
        ({"email_verified": True}, {"email_verified": "true"}),
        ({"email_verified": True}, {"email_verified": 1}),
        ({"email_verified": True}, {"email_verified": ...}),
        ({"/groups": "root"}, {}),
        ({"org_id": "ACME"}, {}),
        ({"/org/id": 1}, {"org": {"id": True}}),
    ],
)
async def test_a_failed_condition_names_the_claim_and_not_its_value(
    idp: Idp, conditions: dict[str, Any], claims: dict[str, Any]
) -> None:
    parsed = parse_conditions(conditions)
    result = expect(await idp.verify(idp.mint(**claims), conditions=parsed), "CONDITION_FAILED")
    assert result.reason == f"condition on claim '{next(iter(conditions))}' is not met"


async def test_conditions_run_after_the_signature(idp: Idp, attacker: Keys) -> None:
    token = sign(idp.header("ES256", "ec-1"), idp.claims(), attacker.ec, "ES256")
    conditions = parse_conditions({"org_id": "other"})
    expect(await idp.verify(token, conditions=conditions), "INVALID_SIGNATURE")


# --------------------------------------------------------------------------- caller bugs


@pytest.mark.parametrize(
    "kwargs",
    [
        {"leeway_s": MAX_LEEWAY_S + 1},
        {"leeway_s": -1},
        {"audiences": set()},
        {"audiences": AUDIENCE},
        {"algorithms": set()},
        {"algorithms": {"HS256"}},
        {"algorithms": {"ES256", "none"}},
        {"issuer": ""},
        {"now": float("nan")},
        {"max_token_bytes": 100_000},
    ],
)
async def test_caller_bugs_raise_instead_of_deciding(idp: Idp, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must|outside"):
        await idp.verify(idp.mint(), **kwargs)


async def test_a_leeway_of_sixty_seconds_is_allowed(idp: Idp) -> None:
    assert isinstance(await idp.verify(idp.mint(exp=NOW - 59), leeway_s=60), Verified)


async def test_an_unavailable_jwks_propagates_instead_of_rejecting(idp: Idp) -> None:
    async def down(kid: str) -> IssuerKey | None:
        raise JwksUnavailable("timeout", "down")

    with pytest.raises(JwksUnavailable):
        await verify_subject_token(
            idp.mint(),
            resolve_key=down,
            issuer=ISSUER,
            audiences={AUDIENCE},
            algorithms=ALL,
            now=NOW,
        )


# --------------------------------------------------------------------------- fuzzing


@settings(max_examples=300, deadline=None)
@given(token=st.one_of(st.text(max_size=300), st.binary(max_size=300)))
async def test_arbitrary_input_is_rejected_never_raised(keys: Keys, token: str | bytes) -> None:
    result = await Idp(keys).verify(token)
    assert isinstance(result, Rejected)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
async def test_any_single_character_change_is_rejected(keys: Keys, data: st.DataObject) -> None:
    idp = Idp(keys)
    token = idp.mint("EdDSA", "ed-1")
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from("ABCabc019-_.=+/ "))
    mutated = token[:index] + replacement + token[index + 1 :]
    if mutated == token:
        return
    assert isinstance(await idp.verify(mutated), Rejected)
