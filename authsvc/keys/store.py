"""The hot-path reads of API keys: a key, its ancestors and their identities' limits in one
statement.

A cold check of a key (first sight of its secret, or an ancestor dropped from the cache) costs
one round trip: a recursive common table expression walks ``parent_id`` from the key up to its
root (at most :data:`MAX_DEPTH` levels) and each level is joined with its
identity's limits. It runs on PostgreSQL and SQLite alike.

Secrets are found by their keyed hash under the current master secret and, during a rotation,
under the previous ones (``AUTHSVC_PREVIOUS_SECRET_KEYS``): the lookup asks for all of them at
once, and a key found under an old hash is re-hashed under the current secret on the spot
(DESIGN §8, "secrets rotate"), so the old secret can be dropped once every key was used.

The lookup goes through the :class:`~authsvc.db.engine.Reader` (one round trip: autocommit, no
ping). Keys are cached by the hundred thousand, so what it builds is shared where it can be:
identical grant sets and limit sets are one tuple for every key holding them, tenant ids and
identities are interned strings.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    literal,
    or_,
    select,
    update,
)

from authsvc.db.engine import Reader, SessionFactory
from authsvc.db.models import ApiKey, Identity
from authsvc.keys.state import KeyState
from authsvc.ratelimit.limits import RateLimitDef, ratelimits_from_json
from authsvc.scopes import Grant, grant_from_json

MAX_DEPTH = 8
"""A lineage (a key and its ancestors) has at most this many levels: a key derives from at
most 7 ancestors (a bound on every walk up a lineage)."""

_KEYS: Table = ApiKey.__table__  # type: ignore[assignment]
_IDENTITIES: Table = Identity.__table__  # type: ignore[assignment]
_COLUMNS = (
    "id",
    "tenant_id",
    "parent_id",
    "grants",
    "ratelimits",
    "identity",
    "expires_at",
    "enabled",
    "revoked_at",
    "key_hash",
    "previous_key_hash",
    "previous_expires_at",
)


@dataclass(frozen=True, slots=True)
class Chain:
    """A key's lineage as read: states nearest first, and the limits of their identities."""

    states: tuple[KeyState, ...]
    identity_limits: dict[str, tuple[RateLimitDef, ...]]


def _chain_query(start: ColumnElement[bool]) -> Select[Any]:
    base = select(*(_KEYS.c[name] for name in _COLUMNS), literal(0).label("depth")).where(start)
    chain = base.cte("chain", recursive=True)
    parent = _KEYS.alias("parent")
    chain = chain.union_all(
        select(*(parent.c[name] for name in _COLUMNS), (chain.c.depth + 1).label("depth")).where(
            parent.c.id == chain.c.parent_id, chain.c.depth < MAX_DEPTH
        )
    )
    joined = chain.outerjoin(
        _IDENTITIES,
        and_(
            _IDENTITIES.c.tenant_id == chain.c.tenant_id,
            _IDENTITIES.c.external_id == chain.c.identity,
        ),
    )
    return (
        select(chain, _IDENTITIES.c.ratelimits.label("identity_ratelimits"))
        .select_from(joined)
        .order_by(chain.c.depth)
    )


_DIGESTS: BindParameter[list[str]] = bindparam("digests", expanding=True)
_BY_SECRET = _chain_query(
    or_(_KEYS.c.key_hash.in_(_DIGESTS), _KEYS.c.previous_key_hash.in_(_DIGESTS))
)
_BY_ID = _chain_query(_KEYS.c.id == bindparam("key_id"))
_BY_ID_IN_TENANT = _chain_query(
    and_(_KEYS.c.id == bindparam("key_id"), _KEYS.c.tenant_id == bindparam("tenant_id"))
)
"""The three lookups, built once: building the recursive statement and its cache key took
about half of a cold lookup's time when done per call (py-spy, cold verify at ~380/s)."""


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


_SHARED_MAX = 10_000
_grant_sets: dict[str, tuple[Grant, ...]] = {}
_limit_sets: dict[str, tuple[RateLimitDef, ...]] = {}


def _shared_grants(stored: list[dict[str, Any]]) -> tuple[Grant, ...]:
    """One tuple for every key holding exactly these grants (grants are immutable values)."""
    k = json.dumps(stored, sort_keys=True, separators=(",", ":"))
    found = _grant_sets.get(k)
    if found is None:
        if len(_grant_sets) >= _SHARED_MAX:
            _grant_sets.clear()
        found = _grant_sets[k] = tuple(grant_from_json(g) for g in stored)
    return found


def _shared_limits(stored: list[dict[str, Any]] | None) -> tuple[RateLimitDef, ...]:
    if not stored:
        return ()
    k = json.dumps(stored, sort_keys=True, separators=(",", ":"))
    found = _limit_sets.get(k)
    if found is None:
        if len(_limit_sets) >= _SHARED_MAX:
            _limit_sets.clear()
        found = _limit_sets[k] = ratelimits_from_json(stored)
    return found


def _chain(rows: Sequence[Any]) -> Chain:
    states: list[KeyState] = []
    limits: dict[str, tuple[RateLimitDef, ...]] = {}
    for row in rows:
        identity = None if row.identity is None else sys.intern(row.identity)
        states.append(
            KeyState(
                id=row.id,
                tenant_id=sys.intern(row.tenant_id),
                parent_id=row.parent_id,
                grants=_shared_grants(row.grants),
                ratelimits=_shared_limits(row.ratelimits),
                identity=identity,
                expires_at=_ts(row.expires_at),
                enabled=row.enabled,
                revoked=row.revoked_at is not None,
            )
        )
        if identity is not None:
            limits[identity] = _shared_limits(row.identity_ratelimits)
    return Chain(tuple(states), limits)


class KeyStore:
    def __init__(self, reader: Reader, db: SessionFactory) -> None:
        self._reader, self._db = reader, db

    async def by_secret(self, digests: Sequence[str]) -> tuple[Chain, float | None] | None:
        """The key whose current or previous secret has one of ``digests`` (the current
        master secret's first), with its lineage and, for a rerolled key's previous secret,
        when its grace ends; re-hashes a key found under an old master secret."""
        rows = await self._reader.rows(_BY_SECRET, {"digests": list(digests)})
        if not rows:
            return None
        head = rows[0]
        if head.key_hash in digests:
            grace, column, stored = None, "key_hash", head.key_hash
        else:
            grace = _ts(head.previous_expires_at)
            column, stored = "previous_key_hash", head.previous_key_hash
        if stored != digests[0]:
            async with self._db.begin() as session:
                await session.execute(
                    update(_KEYS)
                    .where(_KEYS.c.id == head.id, _KEYS.c[column] == stored)
                    .values({column: digests[0]})
                )
        return _chain(rows), grace

    async def by_id(self, tenant_id: str | None, key_id: str) -> Chain | None:
        if tenant_id is None:
            rows = await self._reader.rows(_BY_ID, {"key_id": key_id})
        else:
            rows = await self._reader.rows(
                _BY_ID_IN_TENANT, {"key_id": key_id, "tenant_id": tenant_id}
            )
        return _chain(rows) if rows else None
