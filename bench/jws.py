"""Micro-benchmark of access-token encoding: PyJWT's ``encode`` against authsvc's JWS encoder.

Per algorithm (ES256, RS256, EdDSA), one process, the same claim set (the shape of a
``client_credentials`` token: registered claims, a scope string, one grant with fixed params):

- ``pyjwt.encode``: what ``encode_access_token`` did before (the same checks, then
  ``jwt.encode`` with ``{kid, typ: at+jwt}`` headers);
- ``encode_access_token``: today's one-off path (builds a signer for the token);
- ``sign_access_token``: the mint path, with the signer the keyring keeps per key;
- ``signature only``: ``cryptography``'s ``sign`` over a signing input of the same length, the
  floor any encoder pays (for ES256 the DER signature, before its conversion to ``r || s``).

Then the base64url variants on the same payload (``base64.urlsafe_b64encode`` + ``rstrip`` vs
``binascii.b2a_base64`` + ``translate`` + ``rstrip``), in ns per call.

Each figure is the best of ``--repeat`` rounds (default 9); a round times every case of the
algorithm once, interleaved, with a loop sized to about ``--seconds`` (default 0.1), so a noisy
moment slows all of them rather than one. Time is the process's CPU time
(``time.process_time``), not wall time: on a shared machine, time spent descheduled is not the
encoder's. Noise from neighbours only ever slows a run down, hence the best. The garbage
collector is off while timing (``timeit``).

    .venv/bin/python -m bench.jws [--repeat 9] [--seconds 0.1] [--json]
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import time
import timeit
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jwt as pyjwt
import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from authsvc.signing import crypto
from authsvc.signing.crypto import ALGORITHMS, Alg, SigningPrivateKey
from authsvc.signing.jws import JwsSigner
from authsvc.tokens.jwt import REQUIRED_CLAIMS, encode_access_token, sign_access_token

NOW = int(time.time())
CLAIMS: dict[str, Any] = {
    "iss": "https://auth.example.com/t/acme",
    "sub": "customer-42",
    "aud": "https://api.example.com",
    "exp": NOW + 900,
    "iat": NOW,
    "jti": "jti_01JDQ3Z8K4W7M2N6P9R5T1V3X8",
    "client_id": "key_01JDQ3XKQ8F5B2C7D4E9G6H1J3",
    "scope": "PIPES:READ:orders DATASOURCES:READ:events",
    "scopes": [
        {"type": "PIPES:READ", "resource": "orders", "fixed_params": {"org_id": [42, 43]}},
        {"type": "DATASOURCES:READ", "resource": "events"},
    ],
}
_KID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def pyjwt_encode(
    claims: Mapping[str, Any], *, private_key: SigningPrivateKey, kid: str, alg: Alg
) -> str:
    """The encoder as it was before the JWS encoder: checks, then ``jwt.encode``."""
    if alg not in ALGORITHMS or crypto.alg_of_key(private_key) != alg:
        raise ValueError("the private key does not match the algorithm")
    if not _KID.fullmatch(kid):
        raise ValueError("kid must be 1-64 characters of [A-Za-z0-9_-]")
    if any(name not in claims for name in REQUIRED_CLAIMS):
        raise ValueError("missing required claims")
    return pyjwt.encode(
        dict(claims), private_key, algorithm=alg, headers={"kid": kid, "typ": "at+jwt"}
    )


def signature_only(key: SigningPrivateKey, data: bytes) -> Callable[[], object]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        ecdsa = ec.ECDSA(hashes.SHA256())
        return lambda: key.sign(data, ecdsa)
    if isinstance(key, rsa.RSAPrivateKey):
        pkcs1v15, sha256 = padding.PKCS1v15(), hashes.SHA256()
        return lambda: key.sign(data, pkcs1v15, sha256)
    return lambda: key.sign(data)


def best_per_call(
    cases: Sequence[tuple[str, Callable[[], object]]], repeat: int, seconds: float
) -> dict[str, float]:
    """CPU seconds per call of each case: the best of ``repeat`` rounds, each round timing
    every case once (interleaved, so a noisy moment hits all cases alike) for ~``seconds``."""
    timers = {name: timeit.Timer(fn, timer=time.process_time) for name, fn in cases}
    numbers = {}
    for name, timer in timers.items():
        number, took = timer.autorange()
        numbers[name] = max(1, int(number * seconds / max(took, 1e-9)))
    best = dict.fromkeys(timers, float("inf"))
    for _ in range(repeat):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(numbers[name]) / numbers[name])
    return best


def measure(alg: Alg, repeat: int, seconds: float) -> list[dict[str, Any]]:
    key = crypto.load_private_key(crypto.generate_private_key(alg))
    kid = crypto.new_kid()
    signer = JwsSigner(key, kid=kid, alg=alg)
    signing_input = sign_access_token(CLAIMS, signer).rsplit(".", 1)[0].encode("ascii")
    cases: list[tuple[str, Callable[[], object]]] = [
        ("pyjwt.encode", lambda: pyjwt_encode(CLAIMS, private_key=key, kid=kid, alg=alg)),
        (
            "encode_access_token",
            lambda: encode_access_token(CLAIMS, private_key=key, kid=kid, alg=alg),
        ),
        ("sign_access_token", lambda: sign_access_token(CLAIMS, signer)),
        ("signature only", signature_only(key, signing_input)),
    ]
    return [
        {"alg": alg, "name": name, "per_s": 1 / per_call, "us": per_call * 1e6}
        for name, per_call in best_per_call(cases, repeat, seconds).items()
    ]


def measure_b64(repeat: int, seconds: float) -> list[dict[str, Any]]:
    payload = msgspec.json.encode(CLAIMS)
    urlsafe = bytes.maketrans(b"+/", b"-_")
    b2a = binascii.b2a_base64
    cases: list[tuple[str, Callable[[], object]]] = [
        (
            "base64.urlsafe_b64encode + rstrip",
            lambda: base64.urlsafe_b64encode(payload).rstrip(b"="),
        ),
        (
            "binascii.b2a_base64 + translate + rstrip",
            lambda: b2a(payload, newline=False).translate(urlsafe).rstrip(b"="),
        ),
        ("msgspec.json.encode(claims)", lambda: msgspec.json.encode(CLAIMS)),
        (
            "json.dumps(claims).encode()",
            lambda: json.dumps(CLAIMS, separators=(",", ":")).encode(),
        ),
    ]
    return [
        {"name": name, "bytes": len(payload), "ns": per_call * 1e9}
        for name, per_call in best_per_call(cases, repeat, seconds).items()
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=9, help="rounds per figure (best kept)")
    parser.add_argument("--seconds", type=float, default=0.1, help="length of one timing")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    tokens = [row for alg in ALGORITHMS for row in measure(alg, args.repeat, args.seconds)]
    b64 = measure_b64(args.repeat, args.seconds)
    if args.json:
        print(json.dumps({"tokens": tokens, "b64": b64}, indent=2))
        return
    print(f"{'alg':<6} {'encoder':<22} {'tokens/s':>10} {'µs/token':>9} {'vs pyjwt':>9}")
    for alg in ALGORITHMS:
        base = next(r for r in tokens if r["alg"] == alg and r["name"] == "pyjwt.encode")
        for row in (r for r in tokens if r["alg"] == alg):
            speedup = row["per_s"] / base["per_s"]
            print(
                f"{alg:<6} {row['name']:<22} {row['per_s']:>10,.0f} {row['us']:>9.1f}"
                f" {speedup:>8.2f}x"
            )
    print()
    print(f"{'payload step (' + str(b64[0]['bytes']) + ' bytes)':<44} {'ns/call':>8}")
    for row in b64:
        print(f"{row['name']:<44} {row['ns']:>8.0f}")


if __name__ == "__main__":
    main()
