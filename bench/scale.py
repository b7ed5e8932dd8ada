"""Scale check: verify latency with 1,000 vs 1,000,000 API keys in Postgres, and the RSS of
one instance holding 100,000 cached keys.

Keys are bulk-inserted with COPY straight into ``api_keys`` of a dedicated database: valid
keys (``authsvc.keys.secret.generate``) whose keyed hash comes from the running
configuration's ``KeyService.hash``, so each of them verifies like a key created through the
API. One uvicorn worker serves; it is restarted for every run so each starts cold. The 1,000-key
and the 1,000,000-key databases exist side by side and are measured in alternation (3 rounds,
median reported), so a noisy neighbour hits both alike.

* cold verify: 1,000 distinct keys, each verified once (each one a Postgres lookup by hash);
* warm verify: one of them, repeated (cache hit, no database);
* RSS: the server's resident memory after start and one verify, then after verifying 100,000
  distinct keys (the key cache holds at most 100,000 records).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Http, Load, Results, Row, load_note, measure, rss_bytes, write_pool, wrk
from bench.endpoints import JSON, verify_body
from bench.servers import SCOPE, Fixture, Stack, bearer, bootstrap, serve

POOL = 1000
RSS_KEYS = 100_000
BIG = 1_000_000
ROUNDS = 3
TARGET = "uvicorn 1w"
COLUMNS = [
    "id",
    "tenant_id",
    "name",
    "key_hash",
    "start",
    "previous_key_hash",
    "previous_expires_at",
    "grants",
    "ratelimits",
    "identity",
    "expires_at",
    "enabled",
    "revoked_at",
    "metadata",
    "created_by",
    "created_at",
    "updated_at",
    "last_used_at",
]


def make_keys(count: int) -> list[str]:
    from authsvc.keys import secret

    return [secret.generate() for _ in range(count)]


async def _copy(dsn: str, rows: Sequence[tuple[object, ...]]) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table("api_keys", records=rows, columns=COLUMNS)
        await conn.execute("ANALYZE api_keys")
    finally:
        await conn.close()


def insert_keys(st: Stack, tenant_id: str, keys: Sequence[str]) -> float:
    """COPY rows for ``keys``; returns the seconds it took (hashing included)."""
    from authsvc.ids import new_id
    from authsvc.keys import secret
    from authsvc.services import build_services
    from authsvc.settings import Settings

    t0 = time.perf_counter()
    services = build_services(Settings.from_env(st.env))
    subkeys = services.secrets.key_hash_secrets
    hasher = secret.KeyHasher(subkeys[0], subkeys[1:])
    grants = json.dumps([{"scope": SCOPE, "fixed_params": {"org_id": 42}}])
    now = datetime.now(UTC)
    ts = now.timestamp()
    rows = [
        (
            new_id("key", ts),
            tenant_id,
            "bulk",
            hasher.digest(k),
            secret.display_start(k),
            None,
            None,
            grants,
            "[]",
            None,
            None,
            True,
            None,
            "{}",
            None,
            now,
            now,
            None,
        )
        for k in keys
    ]
    asyncio.run(services.aclose())
    asyncio.run(_copy(st.db.dsn, rows))
    return time.perf_counter() - t0


def _verify(fx: Fixture, pool: Path | None = None, key: str = "") -> Http:
    token = "{{item}}" if pool is not None else key
    return Http(
        "/v1/verify",
        "POST",
        {**JSON, **bearer(fx.verifier.key)},
        verify_body(token),
        pool=pool,
        once=pool is not None,
    )


def _median_load(loads: list[Load]) -> Load:
    """The run with the median rate (its own p50/p99), to damp a noisy neighbour."""
    return sorted(loads, key=lambda x: x.rps)[len(loads) // 2]


def _round(st: Stack, fx: Fixture, pool: Path, key: str, seconds: float) -> tuple[Load, Load]:
    with serve(st.env, "uvicorn", 1) as srv:
        cold = wrk(srv.base, _verify(fx, pool), seconds=60)
        warm = measure(srv.base, _verify(fx, key=key), seconds)
    return cold, warm


def run(
    st_small: Stack, st_big: Stack, results: Results, tmp: Path, seconds: float, rss: bool = True
) -> None:
    """``st_small`` gets 1,000 keys, ``st_big`` 1,000,000; both are measured in alternation."""
    fixtures = []
    for st in (st_small, st_big):
        with serve(st.env, "uvicorn", 1) as srv:
            fixtures.append(bootstrap(st.env, srv.base))
    rng = random.Random(5)
    small = make_keys(POOL)
    insert_keys(st_small, fixtures[0].tenant_id, small)
    big = make_keys(BIG)
    took = insert_keys(st_big, fixtures[1].tenant_id, big)
    print(f"scale: generated, hashed and inserted {BIG:,} keys in {took:.1f} s", flush=True)
    sample = rng.sample(big, POOL + RSS_KEYS)
    pools = [write_pool(tmp / "scale-small", small), write_pool(tmp / "scale-big", sample[:POOL])]
    runs: list[list[tuple[Load, Load]]] = [[], []]
    for _ in range(ROUNDS):
        for i, st in enumerate((st_small, st_big)):
            key = small[0] if i == 0 else sample[0]
            runs[i].append(_round(st, fixtures[i], pools[i], key, seconds))

    for i, size in enumerate(("1,000 keys", "1,000,000 keys")):
        cold = _median_load([c for c, _ in runs[i]])
        warm = _median_load([w for _, w in runs[i]])
        for kind, load in (("cold (first verify of a key)", cold), ("warm (cached key)", warm)):
            results.add(
                Row(
                    "scale",
                    f"verify API key, {kind}, {size} in Postgres",
                    TARGET,
                    load.rps,
                    p50_ms=load.p50_ms,
                    p99_ms=load.p99_ms,
                    note=load_note(load)
                    or f"median of {ROUNDS} alternating runs"
                    + (
                        f", {load.requests:,} distinct keys each" if kind.startswith("cold") else ""
                    ),
                    extra={"requests": load.requests},
                )
            )

    if rss:
        _rss(st_big, fixtures[1], sample[POOL:], results, tmp)


def _rss(st: Stack, fx: Fixture, keys: list[str], results: Results, tmp: Path) -> None:
    pool = write_pool(tmp / "scale-rss", keys)
    with serve(st.env, "uvicorn", 1) as srv:
        wrk(srv.base, _verify(fx, key=keys[0]), seconds=1)
        before = rss_bytes(srv.process.pid)
        load = wrk(srv.base, _verify(fx, pool), seconds=400)
        time.sleep(0.5)
        after = rss_bytes(srv.process.pid)
    per_key = (after - before) / max(1, load.requests)
    results.add(
        Row(
            "scale",
            f"RSS holding {RSS_KEYS:,} cached keys",
            TARGET,
            note=f"{after / 2**20:.0f} MiB after verifying {load.requests:,} distinct keys "
            f"(was {before / 2**20:.0f} MiB warm with 1 key; ~{per_key:,.0f} B per cached key); "
            f"cold verify of those ran at {load.rps:,.0f} req/s"
            + (f"; {load_note(load)}" if load_note(load) else ""),
            extra={
                "rss_before_bytes": before,
                "rss_after_bytes": after,
                "keys_verified": load.requests,
                "bytes_per_key": per_key,
            },
        )
    )
