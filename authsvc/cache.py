"""The one in-process cache primitive: every cache of the service is a :class:`Cache`.

Algorithm
---------
A bounded dict ``key -> (value, stored_at)``. :meth:`Cache.get` answers a fresh entry without
I/O; on a miss it runs the caller's loader through a *single flight* per key (concurrent misses
share one load) and stores the result. Entries age out after ``ttl_s`` (``negative_ttl_s`` for
``None``, "no such thing"), and the oldest inserted entry goes first when ``max_entries`` is
reached.

The guard against stale fills
-----------------------------
A load reads the source of truth at some instant; an invalidation (a revocation event: key
revoked, tenant disabled, signing key removed) may complete while the load is still in flight.
Storing that load's result would undo the invalidation until the entry ages out. So an
invalidation marks every in-flight load it could concern as *stale*: :meth:`invalidate` the load
of that key, :meth:`invalidate_where` and :meth:`clear` every load in flight (a predicate cannot
be evaluated on a value not loaded yet). A stale load still answers the requests that started or
joined it before the invalidation (they are as fresh as a request that arrived a moment
earlier), but is never stored, and it is detached from its key: a request that arrives after the
invalidation starts a load of its own instead of joining one that read before. A loader that
fills several keys at once (a key and its ancestors, read in one query) takes
:attr:`Cache.generation` before it reads and stores with ``put(..., since=generation)``, which
refuses once any invalidation happened in between. Hence: **no cache stores a value read before
an invalidation that has completed** (DESIGN §8).

Tags
----
An entry may carry a tag (the key id a secret belongs to, the tenant of a token):
:meth:`invalidate_tag` drops every entry with that tag in O(entries tagged), without scanning
the cache, which is what a revocation event needs ("drop every secret of key K").

Memory
------
A cache holds up to 100,000 entries in the key cache, so an entry is kept small: one
``(value, stored_at, tag)`` tuple in one dict, and the tag index holds the one key of a tag
itself, a set only once a tag has several.

Failure
-------
When a load raises and an expired entry exists, the expired value is served (``stale_on_error``):
a warm instance keeps answering while the database is down, and invalidations still arrive by
broadcast and drop such entries. Without an entry the error propagates (the caller answers 503).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()
"""What :meth:`Cache.peek` answers when no fresh entry exists."""

Counter = Callable[[str, str], None]
"""``count(cache name, outcome)`` with outcome ``hit``, ``miss`` or ``stale``."""


def _no_count(_name: str, _outcome: str) -> None:
    return None


@dataclass(slots=True)
class _Flight:
    future: asyncio.Future[object]
    stale: bool = False


class Cache(Generic[K, V]):
    def __init__(
        self,
        name: str,
        *,
        ttl_s: float,
        max_entries: int,
        negative_ttl_s: float | None = None,
        stale_on_error: bool = True,
        count: Counter = _no_count,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or ttl_s <= 0:
            raise ValueError("a cache needs max_entries >= 1 and ttl_s > 0")
        self.name, self.ttl_s, self.max_entries = name, ttl_s, max_entries
        self.negative_ttl_s = ttl_s if negative_ttl_s is None else negative_ttl_s
        self.stale_on_error = stale_on_error
        self._count, self._now = count, monotonic
        self._entries: dict[K, tuple[V, float, Hashable]] = {}
        self._flights: dict[K, _Flight] = {}
        self._tagged: dict[Hashable, K | set[K]] = {}
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def values(self) -> Iterator[V]:
        return (entry[0] for entry in self._entries.values())

    @property
    def generation(self) -> int:
        """Bumped by every invalidation; see :meth:`put`."""
        return self._generation

    # --- reads ----------------------------------------------------------------------------

    def peek(self, key: K) -> V | _Missing:
        """The fresh value for ``key`` without I/O, else :data:`MISSING`."""
        entry = self._entries.get(key)
        if entry is None:
            return MISSING
        value, stored, _ = entry
        ttl = self.negative_ttl_s if value is None else self.ttl_s
        if self._now() - stored >= ttl:
            return MISSING
        return value

    def last(self, key: K) -> V | _Missing:
        """The stored value for ``key`` even if it has aged out (a fallback while the source
        of truth is down), else :data:`MISSING`."""
        entry = self._entries.get(key)
        return MISSING if entry is None else entry[0]

    async def get(
        self,
        key: K,
        load: Callable[[], Awaitable[V]],
        tag: Callable[[V], Hashable] | None = None,
    ) -> V:
        """The value for ``key``: fresh from the cache, or loaded once for all concurrent
        callers and stored unless an invalidation overtook the load."""
        value = self.peek(key)
        if value is not MISSING:
            self._count(self.name, "hit")
            return cast(V, value)
        self._count(self.name, "miss")
        flight = self._flights.get(key)
        if flight is not None:
            return cast(V, await asyncio.shield(flight.future))
        flight = _Flight(asyncio.get_running_loop().create_future())
        self._flights[key] = flight
        try:
            value = await load()
        except asyncio.CancelledError:
            flight.future.cancel()
            raise
        except Exception as exc:
            flight.future.set_exception(exc)
            flight.future.exception()  # retrieved: waiters re-raise it themselves
            stale = self._entries.get(key)
            if stale is not None and self.stale_on_error:
                self._count(self.name, "stale")
                return stale[0]
            raise
        else:
            flight.future.set_result(value)
            if not flight.stale:
                self.put(key, value, tag=None if tag is None else tag(value))
            return value
        finally:
            if self._flights.get(key) is flight:  # not detached by an invalidation
                del self._flights[key]

    # --- writes ---------------------------------------------------------------------------

    def put(
        self,
        key: K,
        value: V,
        *,
        since: int | None = None,
        tag: Hashable = None,
    ) -> bool:
        """Store ``value`` (tagged ``tag`` unless ``None``); with ``since`` (a
        :attr:`generation` taken before the value was read) only if no invalidation happened
        since. Returns whether it was stored."""
        if since is not None and since != self._generation:
            return False
        self._remove(key)
        while len(self._entries) >= self.max_entries:
            self._remove(next(iter(self._entries)))
        self._entries[key] = (value, self._now(), tag)
        if tag is not None:
            present = self._tagged.get(tag)
            if present is None:
                self._tagged[tag] = key
            elif isinstance(present, set):
                present.add(key)
            elif present != key:
                self._tagged[tag] = {present, key}
        return True

    def invalidate(self, key: K) -> None:
        self._generation += 1
        self._remove(key)
        flight = self._flights.pop(key, None)
        if flight is not None:
            flight.stale = True

    def invalidate_tag(self, tag: Hashable) -> None:
        self._generation += 1
        tagged = self._tagged.pop(tag, None)
        for key in tagged if isinstance(tagged, set) else () if tagged is None else (tagged,):
            self._remove(key)
        self._stale_flights()

    def invalidate_where(self, predicate: Callable[[K, V], bool]) -> None:
        self._generation += 1
        for key in [k for k, entry in self._entries.items() if predicate(k, entry[0])]:
            self._remove(key)
        self._stale_flights()

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._tagged.clear()
        self._stale_flights()

    def _remove(self, key: K) -> None:
        entry = self._entries.pop(key, None)
        if entry is None or entry[2] is None:
            return
        tag = entry[2]
        present = self._tagged.get(tag)
        if isinstance(present, set):
            present.discard(key)
            if len(present) == 1:
                self._tagged[tag] = next(iter(present))
        elif present == key:
            del self._tagged[tag]

    def _stale_flights(self) -> None:
        for flight in self._flights.values():
            flight.stale = True
        self._flights.clear()


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheBounds:
    """What the caches of one owner share (lifetimes, size, counter, clock):
    ``bounds.cache("name")`` is one more cache under them."""

    ttl_s: float
    max_entries: int
    negative_ttl_s: float | None = None
    count: Counter = _no_count
    monotonic: Callable[[], float] = time.monotonic

    def cache(self, name: str) -> Cache[K, V]:
        return Cache(
            name,
            ttl_s=self.ttl_s,
            max_entries=self.max_entries,
            negative_ttl_s=self.negative_ttl_s,
            count=self.count,
            monotonic=self.monotonic,
        )
