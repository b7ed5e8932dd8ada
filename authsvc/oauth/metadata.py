"""RFC 8414 authorization server metadata of a tenant (issuer ``<base_url>/t/<slug>``)."""

from __future__ import annotations

from typing import Any

from authsvc.oauth.service import CLIENT_CREDENTIALS, TOKEN_EXCHANGE
from authsvc.tenants.policy import TenantPolicy

AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def metadata(policy: TenantPolicy) -> dict[str, Any]:
    issuer = policy.issuer
    return {
        "issuer": issuer,  # RFC 8414 §2: identical to the issuer in the tokens (§3.3)
        "token_endpoint": f"{issuer}/oauth2/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        # §2 REQUIRED; there is no authorization endpoint, so no response type is supported.
        "response_types_supported": [],
        "grant_types_supported": [CLIENT_CREDENTIALS, TOKEN_EXCHANGE],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint": f"{issuer}/oauth2/introspect",  # RFC 8414 §2 / RFC 7662
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint": f"{issuer}/oauth2/revoke",  # RFC 8414 §2 / RFC 7009
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        # scopes_supported is left out: scopes are per key and resource (DESIGN §1).
    }
