"""The interop checks once more against a server in production mode (PostgreSQL)."""

from __future__ import annotations

import jwt
import pytest

from tests.interop.conftest import Live, start_tenant
from tests.interop.test_authlib import oauth_client

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_and_pyjwt_interoperate_with_a_postgres_backed_server(
    live_pg: Live, method: str
) -> None:
    tenant = start_tenant(live_pg, f"Postgres {method}", "EdDSA")
    with oauth_client(tenant, method, scope="PIPES:READ:top") as client:
        token = client.fetch_token(tenant.token_url, grant_type="client_credentials")
    key = jwt.PyJWKClient(tenant.jwks_url).get_signing_key_from_jwt(token["access_token"])
    claims = jwt.decode(
        token["access_token"],
        key,
        algorithms=["EdDSA"],
        audience=tenant.issuer,
        issuer=tenant.issuer,
    )
    assert claims["scope"] == "PIPES:READ:top"
    assert claims["client_id"] == tenant.client_id
