"""Bytes per cached API key: the key cache filled through its real load path, measured with
``tracemalloc`` (Python allocations only; RSS is measured on a real server by bench/scale.py).

    python -m bench.keycache [--keys 100000]

The rows come from a stand-in store that answers what ``KeyStore`` would read from the
database for N distinct root keys with the same grants (the shape of the 100,000-key RSS cell);
everything from the row on (state objects, shared grant sets, the cache entries, the tag index,
the usage recorder's entry) is the service's own code.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from authsvc.clock import SystemClock
from authsvc.keys import secret as keysecret
from authsvc.keys.cache import KeyCache
from authsvc.keys.store import Chain, _chain
from authsvc.keys.usage import UsageRecorder

GRANTS = [{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 42}}]
HASH_SECRET = secrets.token_bytes(32)


class RowStore:
    """What the database answers: one root key per secret, read as KeyStore builds it."""

    def __init__(self) -> None:
        self.n = 0

    async def by_secret(self, digests: Sequence[str]) -> tuple[Chain, float | None]:
        self.n += 1
        row = SimpleNamespace(
            id=f"key_{self.n:026d}",
            tenant_id="ten_01bench0000000000000000000",
            parent_id=None,
            grants=json.loads(json.dumps(GRANTS)),
            ratelimits=[],
            identity=None,
            expires_at=None,
            enabled=True,
            revoked_at=None,
            identity_ratelimits=None,
        )
        return _chain([row]), None

    async def by_id(self, tenant_id: str | None, key_id: str) -> Chain | None:
        return None


async def fill(n: int) -> int:
    hasher = keysecret.KeyHasher(HASH_SECRET)
    cache = KeyCache(RowStore(), hasher, count=lambda _n, _o: None, max_entries=n)  # type: ignore[arg-type]
    usage = UsageRecorder(None, SystemClock())  # type: ignore[arg-type]
    keys = [keysecret.generate("api") for _ in range(n)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for key in keys:
        match = await cache.by_secret(key, cache.digest(key))
        assert match is not None
        usage.touch(match.lineage.key.id)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(cache) == n
    return after - before


def measure(keys: int) -> dict[str, Any]:
    grown = asyncio.run(fill(keys))
    return {
        "keys": keys,
        "bytes_per_key": round(grown / keys),
        "total_mib": round(grown / 2**20, 1),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    args = parser.parse_args()
    result = measure(args.keys)
    print(json.dumps(result))
    print(
        f"{result['keys']:,} cached keys: {result['bytes_per_key']} B per key "
        f"({result['total_mib']} MiB of Python allocations)"
    )


if __name__ == "__main__":
    main()
