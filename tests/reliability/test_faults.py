"""Faults under load: the private Redis killed and restarted, the private Postgres crashed and
restarted, while two real instances serve mixed traffic (loopback only, bounded in time).

Both dependencies are owned by the test (a ``redis-server`` and a PostgreSQL cluster made
with ``initdb`` on free ports, in temporary directories; Postgres runs as the ``postgres``
user when the tests run as root). Complements tests/integration/test_faults.py: this side is
about load and about nothing acknowledged being lost.

What each test proves, phase by phase: before the fault, nothing but documented statuses;
during it and while reconnecting, only 200/201/4xx/429/503 (never 500, never a dropped
connection); after it, the same instances (no restart) serve everything again with no 503;
and every key or JWT whose revocation returned 200 (before, during or after the fault) is
refused by every instance at the end.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from glob import glob
from pathlib import Path

import pytest

from tests.cluster import REDIS_SERVER, PrivateRedis
from tests.conftest import REDIS_URL, pg_admin
from tests.reliability.conftest import (
    Guard,
    Ledger,
    operator_key_via_cli,
    run_cli,
    start_cluster,
)
from tests.reliability.load import Traffic
from tests.reliability.test_soak import POLL_S, cluster_env, fresh_database, require_routes
from tests.server import free_port, require_binary

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

__all__ = ["fresh_database"]  # the fixture, shared with the soak

PHASE_S = float(os.environ.get("AUTHSVC_FAULT_PHASE_S", "5"))
RECOVERY_S = 8.0
REDIS_TEST_POLL_S = 3.0


class PrivatePostgres:
    """A throw-away cluster: initdb into a temp dir, pg_ctl on a free port."""

    def __init__(self) -> None:
        bins = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = require_binary(bins[-1] if bins else None, "initdb", "apt-get install postgresql")
        self.bin = Path(initdb).parent
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="authsvc-pg-"))
        self.data = self.root / "data"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = list(args)
        if self.as_root:  # Postgres refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        assert r.returncode == 0, f"{' '.join(args)}: {r.stdout}\n{r.stderr}"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, db: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{db}"

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.root / "pg.log"),
            "-w",
            "-t",
            "30",
            "start",
        )

    def crash(self) -> None:
        """``-m immediate``: no checkpoint, the next start replays the WAL (like a crash)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    require_binary(REDIS_SERVER, "redis-server", "apt-get install redis-server")
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        try:
            pg.stop()
        finally:
            pg.cleanup()


async def revoke_batch(traffic: Traffic, n: int) -> int:
    """Revoke ``n`` keys right away (one per call); how many were acknowledged with 200."""
    before = len(traffic.revoked)
    for _ in range(n):  # from the tenant with most keys left: the load revokes keys too
        await traffic.revoke_key(max(traffic.tenants, key=lambda t: len(t.keys)))
    return len(traffic.revoked) - before


def assert_clean(traffic: Traffic, phase: str) -> None:
    assert not traffic.unexpected, f"{phase}: {traffic.unexpected[:20]}"


async def _fault_run(
    traffic: Traffic, operator: str, inject: object, recover: object, label: str
) -> dict[str, object]:
    """before → fault (503 allowed) → recovery (503 allowed) → after (strict) → final sweep."""
    for name in ("Fault A", "Fault B"):
        await traffic.add_tenant(operator, name)
    traffic.phase = "before"
    await traffic.run(PHASE_S)
    assert_clean(traffic, f"{label}: before the fault")
    acked_before = await revoke_batch(traffic, 6)
    assert acked_before, "no revocation was acknowledged before the fault"

    traffic.extra_ok = {503}
    traffic.phase = "fault"
    await asyncio.to_thread(inject)  # type: ignore[arg-type]
    down_at = len(traffic.unexpected)
    await traffic.run(PHASE_S)
    during = dict(traffic.stats)
    await asyncio.to_thread(recover)  # type: ignore[arg-type]
    traffic.phase = "recovery"
    await traffic.run(RECOVERY_S)
    assert len(traffic.unexpected) == down_at, traffic.unexpected[down_at:][:20]

    traffic.extra_ok = set()
    traffic.phase = "after"
    mark = sum(traffic.stats.values())
    await traffic.run(PHASE_S)
    after = sum(traffic.stats.values()) - mark
    assert_clean(traffic, f"{label}: after recovery (no restart of the instances)")
    assert after > 0
    await traffic.final_sweep()
    assert not traffic.lost, traffic.lost[:20]
    assert_clean(traffic, f"{label}: final sweep")
    print(f"\n{label}: {traffic.summary()}")
    return during


async def test_redis_killed_under_load_only_documented_statuses_and_nothing_lost(
    tmp_path: Path,
    fresh_database: str,
    private_redis: PrivateRedis,
    leak_guard: Guard,
    ledger: Ledger,
) -> None:
    # A long poll interval tells the broadcast (milliseconds) from the poll (seconds) apart.
    env = cluster_env(fresh_database, private_redis.url, poll_s=REDIS_TEST_POLL_S)
    run_cli("db", "upgrade", cwd=tmp_path, env=env)
    operator = operator_key_via_cli(tmp_path, env, ledger)
    servers = start_cluster(tmp_path, env, leak_guard, 2)
    try:
        require_routes(servers[0])
        traffic = Traffic(servers, leak_guard, workers=8, allowance_s=REDIS_TEST_POLL_S + 1.0)
        async with traffic:
            await _fault_run(
                traffic, operator, private_redis.stop, private_redis.start, "redis killed"
            )
        assert all(s.alive() for s in servers)
        # The broadcast is back after the restart (instances re-subscribed), not only the poll:
        # poll-only propagation would put the median near REDIS_TEST_POLL_S / 2.
        after = traffic.lags("after")
        assert after, "no revocation after recovery"
        assert after[len(after) // 2] < REDIS_TEST_POLL_S / 4, traffic.lag_summary()
    finally:
        for s in servers:
            s.stop()


async def test_postgres_crashed_under_load_acknowledged_revocations_survive(
    tmp_path: Path,
    private_postgres: PrivatePostgres,
    leak_guard: Guard,
    ledger: Ledger,
) -> None:
    await pg_admin('CREATE DATABASE "authsvc"', private_postgres.admin_url)
    env = cluster_env(private_postgres.url("authsvc"), REDIS_URL)
    run_cli("db", "upgrade", cwd=tmp_path, env=env)
    operator = operator_key_via_cli(tmp_path, env, ledger)
    servers = start_cluster(tmp_path, env, leak_guard, 2)
    try:
        require_routes(servers[0])
        traffic = Traffic(servers, leak_guard, workers=8, allowance_s=POLL_S + 1.0)
        async with traffic:
            await _fault_run(
                traffic,
                operator,
                private_postgres.crash,
                private_postgres.start,
                "postgres crashed",
            )
        assert all(s.alive() for s in servers)
    finally:
        for s in servers:
            s.stop()
