"""Public discovery documents of a tenant: JWKS (RFC 7517 §5) and RFC 8414 metadata.

Both are cacheable (``Cache-Control: public, max-age``) and carry nothing secret. The JWKS has
the tenant's next, active and retired public keys (see :mod:`authsvc.signing.service`), so a
verifier that caches it already knows the key that will sign after the next rotation. The
metadata is served at the RFC 8414 §3.1 path-insertion location
(``/.well-known/oauth-authorization-server/t/<slug>``) and, for clients that append the
well-known suffix to the issuer instead, at ``/t/<slug>/.well-known/oauth-authorization-server``.
Unknown or disabled tenants are 404.
"""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from authsvc.errors import NotFound
from authsvc.oauth.metadata import metadata
from authsvc.settings import Settings
from authsvc.signing.keyring import Keyring
from authsvc.tenants.policy import TenantCache, TenantPolicy

METADATA_MAX_AGE_S = 300

TenantCacheDep = NamedDependency[TenantCache]
KeyringDep = NamedDependency[Keyring]
SettingsDep = NamedDependency[Settings]


async def _tenant(tenants: TenantCache, slug: str) -> TenantPolicy:
    tenant = await tenants.by_slug(slug)
    if tenant is None or not tenant.enabled:
        raise NotFound("No such tenant.")
    return tenant


def _cacheable(body: dict[str, Any], max_age: int) -> Response[dict[str, Any]]:
    # Public documents any origin may read (they hold nothing secret; no credentials).
    return Response(
        body,
        headers={
            "Cache-Control": f"public, max-age={max_age}",
            "Access-Control-Allow-Origin": "*",
        },
    )


@get("/t/{slug:str}/.well-known/jwks.json", tags=["discovery (public)"], security=[{}])
async def jwks(
    slug: FromPath[str], tenant_cache: TenantCacheDep, keyring: KeyringDep, settings: SettingsDep
) -> Response[dict[str, Any]]:
    tenant = await _tenant(tenant_cache, slug)
    return _cacheable(dict(await keyring.jwks(tenant.id)), settings.jwks_max_age_s)


@get(
    [
        "/.well-known/oauth-authorization-server/t/{slug:str}",
        "/t/{slug:str}/.well-known/oauth-authorization-server",
    ],
    tags=["discovery (public)"],
    security=[{}],
)
async def authorization_server_metadata(
    slug: FromPath[str], tenant_cache: TenantCacheDep
) -> Response[dict[str, Any]]:
    return _cacheable(metadata(await _tenant(tenant_cache, slug)), METADATA_MAX_AGE_S)


WELL_KNOWN_HANDLERS = [jwks, authorization_server_metadata]
