"""The signing algorithms authsvc mints with: the one list settings, tenants, the signing keys
and the token encoder and verifier all read.

======  ================================================  =========================
alg     key                                               spec
======  ================================================  =========================
ES256   ECDSA P-256 + SHA-256, raw ``r || s`` signature   RFC 7518 §3.4 (default)
RS256   RSA 2048 bits, PKCS#1 v1.5 + SHA-256              RFC 7518 §3.3
EdDSA   Ed25519 (JWK ``kty: OKP``)                        RFC 8037 §3.1
======  ================================================  =========================

Tokens of identity providers are verified with another allow-list
(:data:`authsvc.issuers.jwks.SUBJECT_ALGORITHMS`): authsvc accepts PS256 from them, but never
mints it.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias, get_args

Alg: TypeAlias = Literal["ES256", "RS256", "EdDSA"]
ALGORITHMS: Final[tuple[Alg, ...]] = get_args(Alg)
