"""PyJWT (``PyJWKClient`` + ``jwt.decode``) verifies authsvc tokens fetched over real HTTP."""

from __future__ import annotations

import jwt
import pytest

from tests.interop.conftest import Live, LiveTenant, start_tenant


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_pyjwt_verifies_token_through_jwks_with_audience_and_issuer(live: Live, alg: str) -> None:
    tenant = start_tenant(live, f"PyJWT {alg}", alg)
    token = tenant.mint([{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 7}}])
    signing_key = jwt.PyJWKClient(tenant.jwks_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key,
        algorithms=[alg],
        audience=tenant.issuer,
        issuer=tenant.issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    assert claims["scopes"] == [
        {"type": "PIPES:READ", "resource": "orders", "fixed_params": {"org_id": 7}}
    ]


def test_pyjwt_refuses_token_for_another_audience_or_issuer(live_tenant: LiveTenant) -> None:
    token = live_tenant.mint(["PIPES:READ:top"])
    key = jwt.PyJWKClient(live_tenant.jwks_url).get_signing_key_from_jwt(token)
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key, algorithms=["ES256"], audience="https://other.example")
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(
            token,
            key,
            algorithms=["ES256"],
            audience=live_tenant.issuer,
            issuer="https://other.example",
        )
