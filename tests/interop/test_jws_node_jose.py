"""npm ``jose`` verifies the lean JWS encoder's tokens: every algorithm, awkward claims.

Tokens are signed in-process with :class:`authsvc.signing.jws.JwsSigner` (a fixed corpus of
awkward claim sets plus seeded random ones, per algorithm) and handed to ONE node process
(``node/verify_batch.mjs``, JSON over stdin/stdout), which runs ``compactVerify`` (the signed
octets) and ``jwtVerify`` (RFC 9068 ``typ``, issuer, audience, times) on each against a local
JWK Set of authsvc's public JWKs. Every payload must come back equal to the claims, and the
signed octets must be exactly ``msgspec.json.encode(claims)``. One tampered token must be
refused, so a verifier that accepts anything cannot pass. Fails, never skips, without node.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
import time
from typing import Any

import msgspec
import pytest

from authsvc.signing.crypto import (
    ALGORITHMS,
    Alg,
    generate_private_key,
    load_private_key,
    new_kid,
    public_jwk,
)
from authsvc.signing.jws import JwsSigner, b64url
from authsvc.tokens.jwt import sign_access_token
from tests.interop.conftest import NODE, NODE_DIR

RANDOM_PER_ALG = 150
ISSUER = "https://auth.example.com/t/acme"
AUDIENCE = "https://api.example.com"
AWKWARD = '"\\/\x00\x01\x08\t\n\x0c\r\x1f\x7f\x80\xa0\u2028\u2029\ufeff\uffff\U0001f600é€'


def base_claims(now: int, n: int) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "sub": f"customer-{n}",
        "aud": AUDIENCE,
        "exp": now + 3600,
        "iat": now - 5,
        "jti": f"jti-{n}",
        "client_id": "key_1",
        "scope": "PIPES:READ:orders",
        "scopes": [
            {"type": "PIPES:READ", "resource": "orders", "fixed_params": {"org_id": [1, 2]}}
        ],
    }


CORPUS: list[dict[str, Any]] = [
    {"name": AWKWARD},
    {"name": "\"quoted\" and 'single' and \\backslash\\ and </script>"},
    {"control": "".join(chr(c) for c in range(0x20))},
    {"separators": "line\u2028para\u2029end", "bom": "\ufeffx", "nonchar": "\uffff"},
    {"astral": "\U0001f600\U0001f9d1\u200d\U0001f4bb\U00010348", "cjk": "日本語", "rtl": "مرحبا"},
    {"ints": [0, -1, 2**53, -(2**53), 2**53 - 1, 2**31, -(2**31) - 1]},
    {"floats": [0.1, -0.0, 1.5, 1e-7, 1e21, 5e-324, 1.7976931348623157e308, 2.0**-1074]},
    {"nested": {"a": [[], {}, [[[]]], {"b": {"c": {"d": [None, True, False]}}}]}},
    {"": "empty member name", " ": "space", "null": None, "true": "true"},
    {"\u00e9t\u00e9": 1, "\U0001f511": {"\u2028": "\u2029"}, "a\x00b": "nul in a name"},
    {"long": "x" * 3000, "long_list": list(range(200))},
    {"aud": [AUDIENCE, "https://other.example", "é"]},
    {"nbf": 1_000_000_000, "act": {"sub": "admin\n"}, "parent_jtis": ["a", "b"]},
    {
        "scopes": [
            {
                "type": "PIPES:READ",
                "resource": "orders",
                "fixed_params": {"org": "o'\"\\", "ids": [1, 2.5, True, "x"], "neg": -7},
            },
            {"type": "DATASOURCES:APPEND", "resource": "events"},
        ],
        "ratelimits": [{"name": "rps", "limit": 10, "window_s": 1}],
        "limits": {"rps": 5},
    },
]


def random_text(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randrange(0, 16)):
        roll = rng.random()
        if roll < 0.3:
            out.append(rng.choice(AWKWARD))
        elif roll < 0.6:
            out.append(chr(rng.randrange(0x20, 0x7F)))
        else:
            code = rng.randrange(0x80, 0x110000)
            out.append(chr(code) if not 0xD800 <= code <= 0xDFFF else "\ufffd")
    return "".join(out)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(2**53), 2**53)
    if kind == 2:
        return rng.choice(
            [rng.uniform(-1e6, 1e6), rng.uniform(-1, 1) * 10.0 ** rng.randint(-300, 300)]
        )
    if kind in (3, 4, 5):
        return random_text(rng)
    if kind == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {random_text(rng): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def claim_sets(now: int) -> list[dict[str, Any]]:
    rng = random.Random(9068)
    sets = [base_claims(now, n) | extra for n, extra in enumerate(CORPUS)]
    for n in range(RANDOM_PER_ALG):
        extra = {random_text(rng): random_value(rng) for _ in range(rng.randrange(1, 6))}
        sets.append(base_claims(now, len(CORPUS) + n) | extra)
    return sets


def jose_verify_batch(jwks: dict[str, Any], tokens: list[str]) -> list[dict[str, Any]]:
    assert NODE is not None, "node is not installed"
    request = {"jwks": jwks, "issuer": ISSUER, "audience": AUDIENCE, "tokens": tokens}
    proc = subprocess.run(
        [NODE, "verify_batch.mjs"],
        cwd=NODE_DIR,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results: list[dict[str, Any]] = json.loads(proc.stdout)["results"]
    assert len(results) == len(tokens)
    return results


@pytest.mark.usefixtures("jose_ready")
def test_node_jose_verifies_every_encoded_token_to_exactly_the_claims() -> None:
    now = int(time.time())
    signers, jwks = {}, []
    for alg in ALGORITHMS:
        key, kid = load_private_key(generate_private_key(alg)), new_kid()
        signers[alg] = JwsSigner(key, kid=kid, alg=alg)
        jwks.append(public_jwk(key, kid=kid, alg=alg))
    expected: list[tuple[Alg, dict[str, Any]]] = [
        (alg, claims) for alg in ALGORITHMS for claims in claim_sets(now)
    ]
    tokens = [sign_access_token(claims, signers[alg]) for alg, claims in expected]
    header_b64, _, signature_b64 = tokens[0].split(".")
    forged = b64url(msgspec.json.encode(expected[0][1] | {"sub": "someone-else"})).decode()
    tampered = f"{header_b64}.{forged}.{signature_b64}"

    results = jose_verify_batch({"keys": jwks}, [*tokens, tampered])

    assert results[-1] == {"ok": False, "code": "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"}
    for (alg, claims), result in zip(expected, results[:-1], strict=True):
        assert result["ok"] is True, (alg, result)
        assert result["header"] == {"alg": alg, "kid": signers[alg].kid, "typ": "at+jwt"}
        assert base64.b64decode(result["raw"]) == msgspec.json.encode(claims)
        assert result["payload"] == claims
