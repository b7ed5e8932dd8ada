"""The HTTP side of :mod:`authsvc.metrics`: request counting and the ``/metrics`` endpoint.

The middleware labels by the *route template* (``/v1/keys/{key_id:str}``), not the raw path;
requests that match no route are counted under ``route="unmatched"``.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, get
from litestar.response import Response
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST

from authsvc.metrics import Metrics


def measure_requests(metrics: Metrics) -> Any:
    """ASGI middleware factory counting requests and latency by route template."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def measure(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":  # type: ignore[comparison-overlap]
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = 500

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                route = str(scope.get("path_template") or "unmatched")
                metrics.inc(metrics.requests, route, str(scope.get("method", "")), str(status))
                metrics.child(metrics.latency, route).observe(time.perf_counter() - start)

        return measure

    return middleware


@get("/metrics", tags=["health"], include_in_schema=False, sync_to_thread=False)
def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
