"""Soak: three real ``authsvc serve`` instances sharing a fresh Postgres database and the local
Redis, ``AUTHSVC_SOAK_S`` seconds (default 60) of mixed traffic on loopback.

What it proves: zero unexpected statuses across mint, verify, authz, management and
revocations on every instance (no 5xx at all, no 503 since nothing is down); no lost
revocation: every key or JWT revoked with 200 is refused by every instance within the
allowance (poll interval + 1 s: no VALID verdict after it, in the per-revocation probes, the
random re-checks or the final sweep of every instance; the measured lag is printed); every
process still alive; resident memory growth after warm-up bounded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REDIS_URL, empty_pg_database
from tests.reliability.conftest import (
    SECRET_KEY,
    Guard,
    Ledger,
    Server,
    operator_key_via_cli,
    run_cli,
    server_env,
    start_cluster,
)
from tests.reliability.load import ROUTES, Traffic

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

SOAK_S = float(os.environ.get("AUTHSVC_SOAK_S", "60"))
INSTANCES = 3
POLL_S = 1.0
RSS_GROWTH_MAX_KIB = 64 * 1024


@pytest.fixture
def fresh_database() -> Iterator[str]:
    with empty_pg_database("authsvc_soak") as url:
        yield url


def cluster_env(
    database_url: str, redis_url: str, poll_s: float = POLL_S, **extra: str
) -> dict[str, str]:
    return server_env(
        {
            "AUTHSVC_DATABASE_URL": database_url,
            "AUTHSVC_REDIS_URL": redis_url,
            "AUTHSVC_SECRET_KEY": SECRET_KEY,
            "AUTHSVC_BASE_URL": "http://authsvc.test",  # one issuer behind the balancer
            "AUTHSVC_REVOCATION_POLL_S": str(poll_s),
            "AUTHSVC_LOG_LEVEL": "INFO",
            **extra,
        }
    )


def require_routes(server: Server) -> None:
    """Fail (never skip) when the server lacks a route the traffic needs."""
    r = httpx.get(f"{server.base}/schema/openapi.json", timeout=10)
    assert r.status_code == 200
    paths: dict[str, Any] = r.json()["paths"]
    missing = sorted(ROUTES - set(paths))
    assert not missing, f"the traffic needs {missing}, which the server does not document"


async def test_soak_three_instances_no_unexpected_status_no_lost_revocation(
    tmp_path: Path, fresh_database: str, leak_guard: Guard, ledger: Ledger
) -> None:
    env = cluster_env(fresh_database, REDIS_URL)
    run_cli("db", "upgrade", cwd=tmp_path, env=env)
    operator = operator_key_via_cli(tmp_path, env, ledger)
    servers = start_cluster(tmp_path, env, leak_guard, INSTANCES)
    try:
        require_routes(servers[0])
        traffic = Traffic(servers, leak_guard, workers=12, allowance_s=POLL_S + 1.0)
        async with traffic:
            for name in ("Soak A", "Soak B"):
                await traffic.add_tenant(operator, name)
            warm = min(10.0, SOAK_S / 4)
            await traffic.run(warm)
            rss_warm = [s.rss_kib() for s in servers]
            started = time.monotonic()
            await traffic.run(SOAK_S - warm)
            elapsed = time.monotonic() - started + warm
            await traffic.final_sweep()
        rss_end = [s.rss_kib() for s in servers]
        print(f"\nsoak {elapsed:.0f}s x{INSTANCES}: {traffic.summary()}")
        print(f"rss KiB warm={rss_warm} end={rss_end}")
        assert all(s.alive() for s in servers), "an instance died"
        assert not traffic.unexpected, traffic.unexpected[:20]
        assert not traffic.lost, traffic.lost[:20]
        assert traffic.revoked, "no revocation happened: the soak proved nothing about them"
        # Every revocation was seen refused by every instance (a VALID verdict past the
        # allowance is counted in traffic.lost above; the lag itself is printed, not bounded:
        # under load it includes the probe's own latency).
        unseen = [r for r in traffic.revoked if len(r.lags) != INSTANCES]
        assert not unseen, f"{len(unseen)} revocations never seen refused by every instance"
        for i, (a, b) in enumerate(zip(rss_warm, rss_end, strict=True)):
            assert b - a <= max(RSS_GROWTH_MAX_KIB, a // 2), f"instance {i}: RSS {a} -> {b} KiB"
    finally:
        for s in servers:
            s.stop()
