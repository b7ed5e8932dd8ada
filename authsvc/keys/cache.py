"""In-process cache of API keys, and the lineages it builds: warm key checks touch no database.

Three :class:`~authsvc.cache.Cache` maps, all guarded against stale fills:

* ``secrets``: keyed hash of a presented secret (32 raw bytes) → the key's
  :class:`~authsvc.keys.state.KeyState`, or a :class:`GraceSecret` for a rerolled key's
  previous secret, or ``None`` for a secret no key has (cached briefly: a random 128-bit secret
  that does not exist now will not exist a few seconds later, and this shields the database
  from floods of well-formed garbage). Tagged with the key id, so a key event drops every
  secret of the key (current and previous).
* ``states``: key id → :class:`~authsvc.keys.state.KeyState`, for the keys others derive
  from (ancestors) and the keys JWTs were minted from (named by ``client_id``).
* ``identities``: ``(tenant, external id)`` → that identity's limits.

A check of a secret finds its key's state in one lookup, then walks ``parent_id`` through
``states`` to build its :class:`Lineage` (a dict lookup per level; none for the common root
key). Any level missing means one query (:class:`~authsvc.keys.store.KeyStore`) that reads the
key, its ancestors and their identities together and fills the maps. A lineage of several
levels (and the grants it computes) is reused while every level is still the cached object,
so a change to any ancestor is seen at once.

Memory (about 450 bytes per cached root key, measured by ``bench/keycache.py``): the digest is
kept raw, the key's state is held once (by the secrets map), grant and limit sets are shared
between keys (:mod:`authsvc.keys.store`), and nothing else is stored per key.

Lineage
-------
A key created by a non-ADMIN key derives from it (``parent_id``); ADMIN keys and keys created by
ADMIN keys are roots. A :class:`Lineage` is a key followed by its ancestors, nearest first, as
they are *now* (each level comes from the key cache, which drops a level on its revocation
event). Everything a check needs is computed here, purely:

* **status**: a lineage is ``DISABLED`` if any level is disabled, ``EXPIRED`` once the earliest
  expiry of any level has passed, ``REVOKED`` if any level is revoked (checked in that order,
  like a single key: DESIGN §3). Revoking, disabling or expiring a key therefore does the same to
  its whole subtree at once, and to every token minted from it.
* **grants**: the key's grants bounded by every ancestor's (:func:`authsvc.scopes.intersect`):
  narrowing a key narrows its subtree, and a grant whose filters no longer meet is gone rather
  than unfiltered.
* **limits** (:meth:`Lineage.specs`): a credential is charged against its own limits and those
  of its identity; a credential derived from a key (a child key, a JWT minted from the key) is
  also charged against every non-ADMIN level it derives from, and their identities'. An ADMIN
  key's own limits throttle only its own use. Counters are shared (``key:<id>:<name>``,
  ``identity:<external id>:<name>``), so a derived credential spends its ancestors' budget and
  cannot multiply it; a counter listed twice is charged once.

Invalidation
------------
Invalidation is by revocation event (:mod:`authsvc.revocation`): a ``key`` event drops that
key's state and secrets (its descendants then re-read it through their walk), or, for
``identity:<external id>``, that identity's limits. Entries also age out after ``ttl_s``; when
the database is down, aged-out entries keep serving (a warm instance keeps verifying during an
outage, revocations still arrive by broadcast).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from authsvc.cache import MISSING, Cache, CacheBounds, Counter
from authsvc.errors import Code
from authsvc.keys.secret import KeyHasher
from authsvc.keys.state import KeyState
from authsvc.keys.store import MAX_DEPTH, Chain, KeyStore
from authsvc.ratelimit.limits import RateLimitDef, specs
from authsvc.ratelimit.types import LimitSpec
from authsvc.revocation.events import RevocationEvent
from authsvc.scopes import Grant, intersect

IdentityLimits = Mapping[str, tuple[RateLimitDef, ...]]
"""Limits of the lineage's identities (by external id) as the caller knows them now."""


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


@dataclass(frozen=True, slots=True)
class Lineage:
    states: tuple[KeyState, ...]
    """The key, then its parent, grandparent … up to its root."""
    grants: tuple[Grant, ...] = field(init=False)
    """What the key may exercise now: its grants bounded by each ancestor's."""
    expires_at: float | None = field(init=False)
    """The earliest expiry of any level."""

    def __post_init__(self) -> None:
        grants: tuple[Grant, ...] | None = None
        expires: float | None = None
        for state in reversed(self.states):
            grants = state.grants if grants is None else intersect(state.grants, grants)
            expires = _earliest(expires, state.expires_at)
        object.__setattr__(self, "grants", grants or ())
        object.__setattr__(self, "expires_at", expires)

    @property
    def key(self) -> KeyState:
        return self.states[0]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.states)

    @property
    def identities(self) -> tuple[str, ...]:
        return tuple(s.identity for s in self.states if s.identity is not None)

    def status(self, now: float, *, expires_at: float | None = None) -> Code:
        """``VALID`` or the first failing check (``expires_at``: an earlier expiry of the
        presented secret, e.g. a rerolled key's previous secret)."""
        if not all(s.enabled for s in self.states):
            return Code.DISABLED
        expiry = _earliest(self.expires_at, expires_at)
        if expiry is not None and expiry <= now:
            return Code.EXPIRED
        if any(s.revoked for s in self.states):
            return Code.REVOKED
        return Code.VALID

    def specs(self, identity_limits: IdentityLimits, *, derived: bool) -> list[LimitSpec]:
        """The limits one use costs: see the module docstring. ``derived``: the credential
        used is derived from the key (a JWT minted from it), not the key itself."""
        out: dict[str, LimitSpec] = {}
        for depth, state in enumerate(self.states):
            if (derived or depth > 0) and state.admin:
                continue
            for spec in specs(f"key:{state.id}", state.ratelimits):
                out.setdefault(spec.key, spec)
            if state.identity is not None:
                holder = f"identity:{state.identity}"
                for spec in specs(holder, identity_limits.get(state.identity, ())):
                    out.setdefault(spec.key, spec)
        return list(out.values())


IDENTITY_PREFIX = "identity:"
_NO_IDENTITIES: IdentityLimits = {}


@dataclass(frozen=True, slots=True)
class GraceSecret:
    """A rerolled key's previous secret: the key, until its grace period ends (Unix time)."""

    state: KeyState
    until: float | None


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """A presented secret resolved: the key's lineage, and an earlier expiry of the secret
    itself (a rerolled key's previous secret ends with its grace period)."""

    lineage: Lineage
    grace_until: float | None


class KeyCache:
    def __init__(
        self,
        store: KeyStore,
        hasher: KeyHasher,
        *,
        count: Counter,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 30.0,
        max_entries: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self._hasher = store, hasher
        bounds = CacheBounds(
            ttl_s=ttl_s,
            max_entries=max_entries,
            negative_ttl_s=negative_ttl_s,
            count=count,
            monotonic=monotonic,
        )
        self.secrets: Cache[bytes, KeyState | GraceSecret | None] = bounds.cache("key")
        self.states: Cache[str, KeyState | None] = bounds.cache("key_state")
        self.identities: Cache[tuple[str, str], tuple[RateLimitDef, ...]] = Cache(
            "identity", ttl_s=ttl_s, max_entries=max_entries, count=count, monotonic=monotonic
        )
        self._lineages: dict[str, Lineage] = {}
        self.max_entries = max_entries

    def __len__(self) -> int:
        return len(self.secrets)

    # --- reads ----------------------------------------------------------------------------

    def digest(self, secret: str) -> bytes:
        """The keyed hash of a secret under the current master secret (the cache key)."""
        return self._hasher.raw(secret)

    async def by_secret(self, secret: str, digest: bytes) -> KeyMatch | None:
        """The key a well-formed API key belongs to, or ``None``; ``digest`` is
        :meth:`digest` of it (computed once per request by the caller)."""

        async def load() -> KeyState | GraceSecret | None:
            return await self._load_secret(secret, digest)

        found = await self.secrets.get(digest, load, _secret_tag)
        if found is None:
            return None
        if isinstance(found, GraceSecret):
            state, grace = found.state, found.until
        else:
            state, grace = found, None
        if state.parent_id is None:
            return KeyMatch(Lineage((state,)), grace)
        lineage = await self._lineage_of(state, None)
        return None if lineage is None else KeyMatch(lineage, grace)

    async def lineage(self, key_id: str, tenant_id: str | None = None) -> Lineage | None:
        """The lineage of the key ``key_id`` as cached now (one query if a level is missing),
        or ``None`` if there is no such key (in ``tenant_id``, when given)."""
        state = self.states.peek(key_id)
        if state is MISSING:
            states = await self._load_lineage(key_id, tenant_id)
            if states is None:
                return None
            state = states[0]
        if state is None or (tenant_id is not None and state.tenant_id != tenant_id):  # type: ignore[union-attr]
            return None
        return await self._lineage_of(state, tenant_id)  # type: ignore[arg-type]

    async def identity_limits(self, lineage: Lineage) -> IdentityLimits:
        """The limits of the lineage's identities (one query when one is not cached)."""
        if not lineage.identities:
            return _NO_IDENTITIES
        tenant_id = lineage.key.tenant_id
        out: dict[str, tuple[RateLimitDef, ...]] = {}
        for external_id in lineage.identities:
            limits = self.identities.peek((tenant_id, external_id))
            if limits is MISSING:
                break
            out[external_id] = limits  # type: ignore[assignment]
        else:
            return out
        try:
            chain = await self._read_by_id(tenant_id, lineage.key.id)
        except Exception:
            stale = {i: self.identities.last((tenant_id, i)) for i in lineage.identities}
            if any(v is MISSING for v in stale.values()):
                raise
            return stale  # type: ignore[return-value]
        found = {} if chain is None else chain.identity_limits
        return {i: found.get(i, ()) for i in lineage.identities}

    # --- invalidation ---------------------------------------------------------------------

    def on_event(self, event: RevocationEvent) -> None:
        """Denylist listener: drop what the event invalidates."""
        if event.kind != "key":
            return
        if event.value.startswith(IDENTITY_PREFIX):
            external_id = event.value[len(IDENTITY_PREFIX) :]
            self.identities.invalidate((event.tenant_id, external_id))
        else:
            self.states.invalidate(event.value)
            self.secrets.invalidate_tag(event.value)
            self._lineages.pop(event.value, None)

    def clear(self) -> None:
        self.secrets.clear()
        self.states.clear()
        self.identities.clear()
        self._lineages.clear()

    # --- internals ------------------------------------------------------------------------

    async def _lineage_of(self, state: KeyState, tenant_id: str | None) -> Lineage | None:
        """``state`` and its ancestors from ``states`` (one query if one is missing)."""
        if state.parent_id is None:
            return Lineage((state,))
        states = self._walk(state)
        if states is None:
            loaded = await self._load_lineage(state.id, tenant_id)
            if loaded is None:
                return None
            states = loaded
        memo = self._lineages.get(state.id)
        if (
            memo is not None
            and len(memo.states) == len(states)
            and all(a is b for a, b in zip(memo.states, states, strict=True))
        ):
            return memo
        lineage = Lineage(states)
        if len(self._lineages) >= self.max_entries:
            self._lineages.clear()
        self._lineages[state.id] = lineage
        return lineage

    def _walk(self, state: KeyState, *, stale: bool = False) -> tuple[KeyState, ...] | None:
        """``state`` and its cached ancestors, or ``None`` when one is not cached."""
        states = [state]
        current = state.parent_id
        while current is not None and len(states) <= MAX_DEPTH:
            found = self.states.last(current) if stale else self.states.peek(current)
            if found is MISSING or found is None:
                return None
            states.append(found)  # type: ignore[arg-type]
            current = found.parent_id  # type: ignore[union-attr]
        return tuple(states)

    async def _load_secret(self, secret: str, digest: bytes) -> KeyState | GraceSecret | None:
        generations = self._generations()
        found = await self._store.by_secret(self._hasher.digests(secret, digest))
        if found is None:
            return None
        chain, grace = found
        self._fill(chain, generations, head=False)
        head = chain.states[0]
        return head if grace is None else GraceSecret(head, grace)

    async def _load_lineage(
        self, key_id: str, tenant_id: str | None
    ) -> tuple[KeyState, ...] | None:
        try:
            chain = await self._read_by_id(tenant_id, key_id)
        except Exception:
            head = self.states.last(key_id)
            stale = None if head is MISSING or head is None else self._walk(head, stale=True)  # type: ignore[arg-type]
            if stale is None:
                raise
            return stale  # database down: serve the last known states
        return None if chain is None else chain.states

    async def _read_by_id(self, tenant_id: str | None, key_id: str) -> Chain | None:
        generations = self._generations()
        chain = await self._store.by_id(tenant_id, key_id)
        if chain is None:
            self.states.put(key_id, None, since=generations[0])
            return None
        self._fill(chain, generations, head=True)
        return chain

    def _generations(self) -> tuple[int, int]:
        return self.states.generation, self.identities.generation

    def _fill(self, chain: Chain, generations: tuple[int, int], *, head: bool) -> None:
        """Store what a query read: the ancestors (and the key itself when asked by id; a key
        found by its secret is held by the secrets map)."""
        for state in chain.states if head else chain.states[1:]:
            self.states.put(state.id, state, since=generations[0])
        tenant_id = chain.states[0].tenant_id
        for external_id, limits in chain.identity_limits.items():
            self.identities.put((tenant_id, external_id), limits, since=generations[1])


def _secret_tag(found: KeyState | GraceSecret | None) -> str | None:
    if found is None:
        return None
    return found.state.id if isinstance(found, GraceSecret) else found.id
