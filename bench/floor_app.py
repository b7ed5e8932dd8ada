"""ASGI factory for the benchmarks: the authsvc app plus a no-op route, the framework floor.

``GET /bench/noop`` goes through the same server, workers, middleware (request-head limits, metrics,
CORS) and exception handlers as every authsvc endpoint, so its throughput is the ceiling any
authsvc endpoint could reach in that configuration. Serve it exactly like authsvc::

    uvicorn --factory bench.floor_app:app_from_env ...
    granian --interface asgi --factory bench.floor_app:app_from_env ...
"""

from __future__ import annotations

from litestar import Litestar, MediaType, get

from authsvc.app import app_from_env as authsvc_app_from_env


@get("/bench/noop", media_type=MediaType.TEXT, sync_to_thread=False, include_in_schema=False)
def noop() -> str:
    return "ok"


def app_from_env() -> Litestar:
    app = authsvc_app_from_env()
    app.register(noop)
    return app
