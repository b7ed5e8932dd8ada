"""The hierarchy of API keys in SQL: the recursive queries for a key's subtree (the keys that
derive from it) and for its ancestors. The lineage a check reads is :mod:`authsvc.keys.store`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, literal, select

from authsvc.db.models import ApiKey
from authsvc.keys.store import MAX_DEPTH


def subtree_of(tenant_id: str, root_id: str) -> Select[Any]:
    """Ids of ``root_id`` and every key that derives from it."""
    keys = ApiKey.__table__
    sub = (
        select(keys.c.id, keys.c.id.label("root"))
        .where(keys.c.id == root_id, keys.c.tenant_id == tenant_id)
        .cte("subtree", recursive=True)
    )
    child = keys.alias("child")
    sub = sub.union_all(select(child.c.id, sub.c.root).where(child.c.parent_id == sub.c.id))
    return select(sub.c.id)


def ancestors_of(key_id: str) -> Select[Any]:
    """Ids of the keys ``key_id`` derives from, its parent first (at most :data:`MAX_DEPTH`)."""
    keys = ApiKey.__table__
    up = (
        select(keys.c.parent_id.label("id"), literal(1).label("depth"))
        .where(keys.c.id == key_id)
        .cte("ancestors", recursive=True)
    )
    parent = keys.alias("parent")
    up = up.union_all(
        select(parent.c.parent_id, up.c.depth + 1).where(
            parent.c.id == up.c.id, up.c.depth < MAX_DEPTH
        )
    )
    return select(up.c.id).where(up.c.id.is_not(None)).order_by(up.c.depth)
