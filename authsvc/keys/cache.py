"""In-process cache of API-key records and identity limits: warm key checks touch no database.

Algorithm
---------
Records are cached by the key's keyed hash (HMAC-SHA256 under the server secret, the same
digest the database is indexed by), never by the key itself. Misses go to
:meth:`KeyService.lookup` through a single flight per digest, so a burst of requests with a
cold key costs one query. Unknown digests are cached negatively for a short time (a random
128-bit secret that does not exist now will not exist a few seconds later, so this is safe and
shields the database from floods of well-formed garbage). Identity limits are cached by
``(tenant, external id)``.

Invalidation is by revocation event (see :mod:`authsvc.revocation`), delivered through the
:class:`~authsvc.revocation.denylist.Denylist` listeners: a ``key`` event drops every digest of
that key id (current and previous secret) or, for ``identity:<external_id>``, that identity's
limits; a ``tenant`` event drops everything of the tenant. Status (expiry, grace end of a
rerolled secret) is evaluated on every check from the cached record, so time-based changes
need no event.

Consistency trade-offs
----------------------
* A lookup that started before an invalidation may return the older record: the result is
  used for that request but not cached (a global invalidation epoch detects the overlap).
* Entries also age out after ``ttl_s`` (belt and braces against a missed event). When the
  refresh fails because the database is down, the stale entry keeps serving: a warm instance
  keeps verifying during a database outage, and revocations still arrive by broadcast.
* Memory is bounded: at most ``max_entries`` records (oldest inserted evicted first).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from authsvc.identities.service import IdentityService
from authsvc.keys.limits import RateLimitDef
from authsvc.keys.service import KeyRecord, KeyService
from authsvc.metrics import Metrics
from authsvc.revocation.events import RevocationEvent

V = TypeVar("V")
IDENTITY_PREFIX = "identity:"


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    fetched: float


class KeyCache:
    def __init__(
        self,
        keys: KeyService,
        identities: IdentityService,
        metrics: Metrics,
        *,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 30.0,
        max_entries: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys, self._identities, self._metrics = keys, identities, metrics
        self.ttl_s, self.negative_ttl_s, self.max_entries = ttl_s, negative_ttl_s, max_entries
        self._now = monotonic
        self._records: dict[str, _Entry[KeyRecord | None]] = {}
        self._by_key: dict[str, set[str]] = {}
        self._limits: dict[tuple[str, str], _Entry[tuple[RateLimitDef, ...]]] = {}
        self._inflight: dict[object, asyncio.Future[object]] = {}
        self._epoch = 0

    def __len__(self) -> int:
        return len(self._records)

    # --- reads ----------------------------------------------------------------------------

    def digest(self, secret: str) -> str:
        return self._keys.hash(secret)

    def hit(self, secret: str) -> tuple[bool, KeyRecord | None]:
        """``(True, record-or-None)`` when a fresh entry answers without I/O, else
        ``(False, None)``. An entry exists only for a string that passed the format check
        (and a positive one only for a real key), so a hit needs no format check again."""
        entry = self._records.get(self._keys.hash(secret))
        if entry is not None and self._fresh(entry):
            self._metrics.inc(self._metrics.cache, "key", "hit")
            return True, entry.value
        return False, None

    async def record(self, secret: str) -> KeyRecord | None:
        """The record of a well-formed API key, or ``None`` when no key has this secret."""
        found, cached = self.hit(secret)
        if found:
            return cached
        digest = self._keys.hash(secret)
        entry = self._records.get(digest)

        async def fetch() -> KeyRecord | None:
            return await self._keys.lookup(secret)

        self._metrics.inc(self._metrics.cache, "key", "miss")
        try:
            value = await self._single_flight(
                ("key", digest), fetch, lambda r: self._store_record(digest, r)
            )
        except Exception:
            if entry is not None:
                self._metrics.inc(self._metrics.cache, "key", "stale")
                return entry.value
            raise
        return value

    async def identity_limits(self, tenant_id: str, external_id: str) -> tuple[RateLimitDef, ...]:
        k = (tenant_id, external_id)
        entry = self._limits.get(k)
        if entry is not None and self._now() - entry.fetched < self.ttl_s:
            self._metrics.inc(self._metrics.cache, "identity", "hit")
            return entry.value

        async def fetch() -> tuple[RateLimitDef, ...]:
            return await self._identities.limits(tenant_id, external_id)

        self._metrics.inc(self._metrics.cache, "identity", "miss")
        try:
            return await self._single_flight(
                ("identity", k), fetch, lambda v: self._store_limits(k, v)
            )
        except Exception:
            if entry is not None:
                self._metrics.inc(self._metrics.cache, "identity", "stale")
                return entry.value
            raise

    # --- invalidation ---------------------------------------------------------------------

    def on_event(self, event: RevocationEvent) -> None:
        """Denylist listener: drop what the event invalidates."""
        if event.kind == "key":
            self._epoch += 1
            if event.value.startswith(IDENTITY_PREFIX):
                self._limits.pop((event.tenant_id, event.value[len(IDENTITY_PREFIX) :]), None)
            else:
                for digest in self._by_key.pop(event.value, ()):
                    self._records.pop(digest, None)
        elif event.kind == "tenant":
            self._epoch += 1
            self.drop_tenant(event.tenant_id)

    def drop_tenant(self, tenant_id: str) -> None:
        for digest, entry in list(self._records.items()):
            if entry.value is not None and entry.value.tenant_id == tenant_id:
                self._forget(digest)
        for k in [k for k in self._limits if k[0] == tenant_id]:
            del self._limits[k]

    def clear(self) -> None:
        self._epoch += 1
        self._records.clear()
        self._by_key.clear()
        self._limits.clear()

    # --- internals ------------------------------------------------------------------------

    def _fresh(self, entry: _Entry[KeyRecord | None]) -> bool:
        ttl = self.ttl_s if entry.value is not None else self.negative_ttl_s
        return self._now() - entry.fetched < ttl

    def _forget(self, digest: str) -> None:
        entry = self._records.pop(digest, None)
        if entry is not None and entry.value is not None:
            digests = self._by_key.get(entry.value.id)
            if digests is not None:
                digests.discard(digest)
                if not digests:
                    del self._by_key[entry.value.id]

    def _store_record(self, digest: str, record: KeyRecord | None) -> None:
        self._forget(digest)
        while len(self._records) >= self.max_entries:
            self._forget(next(iter(self._records)))
        self._records[digest] = _Entry(record, self._now())
        if record is not None:
            self._by_key.setdefault(record.id, set()).add(digest)

    def _store_limits(self, k: tuple[str, str], limits: tuple[RateLimitDef, ...]) -> None:
        if k not in self._limits and len(self._limits) >= self.max_entries:
            self._limits.pop(next(iter(self._limits)))
        self._limits[k] = _Entry(limits, self._now())

    async def _single_flight(
        self,
        k: tuple[str, object],
        fetch: Callable[[], Awaitable[V]],
        store: Callable[[V], None],
    ) -> V:
        pending = self._inflight.get(k)
        if pending is not None:
            return cast(V, await asyncio.shield(pending))
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._inflight[k] = future
        epoch = self._epoch
        try:
            value = await fetch()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) re-raise it themselves
            raise
        else:
            future.set_result(value)
            if epoch == self._epoch:
                store(value)
            return value
        finally:
            del self._inflight[k]
