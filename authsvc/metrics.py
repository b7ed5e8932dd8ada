"""Prometheus metrics of one application instance, and the ``/metrics`` endpoint.

Each :class:`Metrics` owns its own ``CollectorRegistry`` (not the process-global one), so
several applications in one process (tests, embedded use) never collide. Label values are
bounded sets (route templates, verdict codes, cache names): never a key, a token, a tenant or
a subject, so the series count stays small and no secret can reach a scrape.

The HTTP side (the request-counting middleware and ``/metrics``) is :mod:`authsvc.web.metrics`.
"""

from __future__ import annotations

from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

_M = TypeVar("_M", Counter, Histogram)
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class Metrics:
    """Every metric the service exports. Cheap to call on the hot path (a dict lookup each)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self._children: dict[tuple[int, tuple[str, ...]], object] = {}
        self.requests = Counter(
            "authsvc_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "authsvc_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.verdicts = Counter(
            "authsvc_verify_verdicts",
            "Credential checks (verify and authz) by credential kind and verdict code.",
            ["kind", "code"],
            registry=r,
        )
        self.ratelimit = Counter(
            "authsvc_ratelimit_decisions",
            "Rate-limit decisions: allowed, limited, degraded_allowed, degraded_refused.",
            ["outcome"],
            registry=r,
        )
        self.revocations = Counter(
            "authsvc_revocation_events_applied",
            "Revocation events applied to this instance, by kind and source.",
            ["kind", "source"],
            registry=r,
        )
        self.revocation_errors = Counter(
            "authsvc_revocation_sync_errors",
            "Failed broadcast publishes, subscriber disconnects and failed polls.",
            ["what"],
            registry=r,
        )
        self.cache = Counter(
            "authsvc_cache_lookups",
            "In-process cache lookups by cache and result (hit, miss, stale).",
            ["cache", "result"],
            registry=r,
        )

    def child(self, metric: _M, *labels: str) -> _M:
        """``metric.labels(*labels)``, memoised: the hot path pays a dict lookup, not the
        client library's label validation and lock (a few microseconds per call)."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found  # type: ignore[return-value]

    def inc(self, metric: Counter, *labels: str) -> None:
        self.child(metric, *labels).inc()

    def count_cache(self, name: str, outcome: str) -> None:
        """A cache lookup (``hit``, ``miss``, ``stale``); see :mod:`authsvc.cache`."""
        self.inc(self.cache, name, outcome)

    def rate_limit(self, allowed: bool, degraded: bool) -> None:
        if degraded:
            self.inc(self.ratelimit, "degraded_allowed" if allowed else "degraded_refused")
        else:
            self.inc(self.ratelimit, "allowed" if allowed else "limited")

    def render(self) -> bytes:
        return generate_latest(self.registry)
