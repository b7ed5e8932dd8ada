"""Keyset pagination over time-sortable ids: ``WHERE id > :cursor ORDER BY id LIMIT n+1``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from authsvc.errors import Code, InvalidRequest

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}.", code=Code.INVALID_LIMIT)
    return limit


async def paginate(
    session: AsyncSession,
    stmt: Select[T],
    id_column: InstrumentedAttribute[Any],
    *,
    limit: int | None,
    cursor: str | None,
) -> tuple[Sequence[T], str | None]:
    n = check_limit(limit)
    if cursor is not None:
        if not cursor or len(cursor) > 64:
            raise InvalidRequest("cursor is not valid.", code=Code.INVALID_CURSOR)
        stmt = stmt.where(id_column > cursor)
    rows = (await session.scalars(stmt.order_by(id_column).limit(n + 1))).all()
    if len(rows) > n:
        rows = rows[:n]
        return rows, str(getattr(rows[-1], id_column.key))
    return rows, None
