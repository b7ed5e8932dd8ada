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
from litestar.params import FromPath

from authsvc.errors import NotFound
from authsvc.oauth.metadata import metadata
from authsvc.services import Services
from authsvc.tokens.policy import TenantPolicy
from authsvc.web.deps import ServicesDep

METADATA_MAX_AGE_S = 300


async def _policy(services: Services, slug: str) -> TenantPolicy:
    policy = await services.policies.by_slug(slug)
    if policy is None or not policy.enabled:
        raise NotFound("No such tenant.")
    return policy


def _cacheable(body: dict[str, Any], max_age: int) -> Response[dict[str, Any]]:
    return Response(body, headers={"Cache-Control": f"public, max-age={max_age}"})


@get("/t/{slug:str}/.well-known/jwks.json", tags=["discovery (public)"], security=[{}])
async def jwks(slug: FromPath[str], services: ServicesDep) -> Response[dict[str, Any]]:
    policy = await _policy(services, slug)
    keys = await services.signing.jwks(policy.id)
    return _cacheable(dict(keys), services.settings.jwks_max_age_s)


@get(
    [
        "/.well-known/oauth-authorization-server/t/{slug:str}",
        "/t/{slug:str}/.well-known/oauth-authorization-server",
    ],
    tags=["discovery (public)"],
    security=[{}],
)
async def authorization_server_metadata(
    slug: FromPath[str], services: ServicesDep
) -> Response[dict[str, Any]]:
    return _cacheable(metadata(await _policy(services, slug)), METADATA_MAX_AGE_S)


WELL_KNOWN_HANDLERS = [jwks, authorization_server_metadata]
