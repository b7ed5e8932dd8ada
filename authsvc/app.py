"""``create_app(settings)``: the one place where the service is wired together.

Routes get their services by name through Litestar's dependency injection (``keys:
KeyService``, ``caller: Principal`` …), registered here once; no route reaches for a service
container. The two hot routes (``POST /v1/verify``, ``/v1/authz``) take no injected
dependencies and read the verify service and the tenant cache from ``app.state``.

There is no application-wide CORS: the public documents (JWKS, metadata, the browser module)
allow any origin, the token endpoint allows its tenant's trusted issuers' origins
(:mod:`authsvc.oauth.controller`), and the management API is for servers, not browsers.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import fields
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from authsvc import __version__
from authsvc.audit.controller import AuditController
from authsvc.background import background
from authsvc.identities.controller import IdentityController
from authsvc.issuers.controller import IssuerController
from authsvc.keys.controller import KeyController
from authsvc.oauth.controller import OAuthController
from authsvc.oauth.wellknown import WELL_KNOWN_HANDLERS
from authsvc.services import Services, build_services
from authsvc.settings import Settings
from authsvc.signing.controller import SigningKeyController
from authsvc.signing.rotation import rotating
from authsvc.tenants.controller import TenantController
from authsvc.tokens.controller import TokenController
from authsvc.verify.authz import AUTHZ_HANDLERS
from authsvc.verify.controller import verify
from authsvc.verify.guard import provide_caller, provide_operator
from authsvc.web.exceptions import EXCEPTION_HANDLERS
from authsvc.web.headers import add_caller_headers
from authsvc.web.health import healthz, readyz
from authsvc.web.json_guard import reject_duplicate_members
from authsvc.web.limits import request_head_limits
from authsvc.web.metrics import measure_requests, metrics_endpoint
from authsvc.web.openapi import document_error_bodies
from authsvc.web.sdk import sdk_module


def _constant(value: Any) -> Provide:
    def provide() -> Any:
        return value

    return Provide(provide, use_cache=True, sync_to_thread=False)


def dependencies(svc: Services) -> dict[str, Provide]:
    """Every service by its field name, plus the authenticated ``caller`` and ``operator``."""
    deps = {f.name: _constant(getattr(svc, f.name)) for f in fields(svc)}
    deps["caller"] = Provide(provide_caller)
    deps["operator"] = Provide(provide_operator)
    return deps


def create_app(settings: Settings, *, services: Services | None = None) -> Litestar:
    """Build the application. ``services`` may be injected (tests share a clock or engine)."""
    owned = services is None
    svc = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.verify = svc.verify
        app.state.tokens = svc.tokens
        app.state.tenants = svc.tenant_cache
        app.state.metrics = svc.metrics
        app.state.engine = svc.engine
        try:
            async with background(svc):
                yield
        finally:
            if owned:
                await svc.aclose()

    starting: Callable[[Litestar], Any] = lambda _app: rotating(svc.rotation)  # noqa: E731
    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            TenantController,
            KeyController,
            IdentityController,
            AuditController,
            verify,
            *AUTHZ_HANDLERS,
            metrics_endpoint,
            TokenController,
            SigningKeyController,
            OAuthController,
            IssuerController,
            *WELL_KNOWN_HANDLERS,
            sdk_module,
        ],
        dependencies=dependencies(svc),
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan, starting],
        middleware=[request_head_limits, measure_requests(svc.metrics)],
        before_send=[add_caller_headers],
        before_request=reject_duplicate_members,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="authsvc",
            version=__version__,
            path="/schema",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer"),
                }
            ),
            security=[{"bearer": []}],
        ),
        logging_config=None,
        debug=False,
    )
    document_error_bodies(app)
    return app


def app_from_env() -> Litestar:
    """Factory for ``uvicorn --factory authsvc.app:app_from_env``: settings read at call time."""
    settings = Settings.from_env()
    # The chosen level applies to authsvc's own loggers only: libraries stay at INFO, because at
    # DEBUG some (aiosqlite, asyncpg) log SQL parameters, which may hold misplaced credentials.
    level = logging.getLevelName(settings.log_level.upper())
    logging.basicConfig(
        level=max(logging.INFO, level if isinstance(level, int) else logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("authsvc").setLevel(settings.log_level.upper())
    app = create_app(settings)
    # The ~100k objects of the imported framework and the app live as long as the process:
    # keep them out of the cyclic GC, so a full collection no longer scans them (a 50-100 ms
    # pause on the hot path otherwise). Serving processes only; tests build many apps.
    gc.collect()
    gc.freeze()
    return app
