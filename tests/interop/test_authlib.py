"""authlib's OAuth 2.0 client gets tokens by client credentials with both client
authentication methods, then introspects and revokes them, over real HTTP."""

from __future__ import annotations

import warnings
from typing import Any

import authlib.deprecate  # noqa: F401 (installs its "always" filter before ours below)
import jwt
import pytest

from tests.interop.conftest import LiveTenant

with warnings.catch_warnings():  # authlib 1.9 warns that it prefers httpx2 over httpx
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import OAuth2Client


def oauth_client(tenant: LiveTenant, method: str, **kw: Any) -> Any:
    return OAuth2Client(
        client_id=tenant.client_id,
        client_secret=tenant.client_secret,
        token_endpoint_auth_method=method,
        revocation_endpoint_auth_method=method,
        timeout=10,
        **kw,
    )


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_credentials_fetches_a_verifiable_token(
    live_tenant: LiveTenant, method: str
) -> None:
    with oauth_client(live_tenant, method, scope="PIPES:READ:orders") as client:
        token = client.fetch_token(live_tenant.token_url, grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "PIPES:READ:orders"
    assert 0 < token["expires_in"] <= 900
    key = jwt.PyJWKClient(live_tenant.jwks_url).get_signing_key_from_jwt(token["access_token"])
    claims = jwt.decode(
        token["access_token"],
        key,
        algorithms=["ES256"],
        audience=live_tenant.issuer,
        issuer=live_tenant.issuer,
    )
    assert claims["client_id"] == live_tenant.client_id
    assert claims["scopes"] == [
        {"type": "PIPES:READ", "resource": "orders", "fixed_params": {"org_id": 42}}
    ]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_with_wrong_secret_gets_invalid_client(
    live_tenant: LiveTenant, method: str
) -> None:
    from authlib.integrations.base_client import OAuthError

    client = OAuth2Client(
        client_id=live_tenant.client_id,
        client_secret="ask_" + "A" * 28,
        token_endpoint_auth_method=method,
        timeout=10,
    )
    with client, pytest.raises(OAuthError) as raised:
        client.fetch_token(live_tenant.token_url, grant_type="client_credentials")
    assert raised.value.error == "invalid_client"


def test_authlib_client_revokes_its_own_token(live_tenant: LiveTenant) -> None:
    with oauth_client(live_tenant, "client_secret_basic") as client:
        token = client.fetch_token(live_tenant.token_url, grant_type="client_credentials")
        revoked = client.revoke_token(
            f"{live_tenant.issuer}/oauth2/revoke", token=token["access_token"]
        )
        assert revoked.status_code == 200
    with live_tenant.live.client() as c:
        r = c.post(
            f"/t/{live_tenant.slug}/oauth2/introspect",
            data={"token": token["access_token"]},
            headers={"Authorization": f"Bearer {live_tenant.admin_key}"},
        )
    assert r.json() == {"active": False}
