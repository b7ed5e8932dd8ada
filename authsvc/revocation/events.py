"""Revocation events: the rows of the ``revocations`` table and what instances exchange.

A service that revokes something calls :func:`record` inside its transaction, then, after the
commit, hands the events to the :class:`RevocationBus`. The database row is the truth; the
broadcast only makes other instances learn it sooner than their next poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from authsvc.clock import MAX_CLOCK_SKEW_S
from authsvc.db.models import Revocation

Kind = Literal["jti", "sub", "key_tokens", "key", "tenant", "signing_key", "issuer"]


@dataclass(frozen=True, slots=True)
class RevocationEvent:
    tenant_id: str
    kind: Kind
    value: str
    cutoff: datetime
    expires_at: datetime | None = None


class RevocationBus(Protocol):
    async def publish(self, events: Sequence[RevocationEvent]) -> None: ...


def horizon(now: datetime, max_token_ttl_s: int, tokens_live_until: datetime | None) -> datetime:
    """Until when a revocation issued ``now`` can match a live token of a tenant whose tokens
    live at most ``max_token_ttl_s``, and those minted under an earlier, higher maximum until
    ``tokens_live_until`` (DESIGN §8, "revocations outlive every token they refuse")."""
    latest = now + timedelta(seconds=max_token_ttl_s)
    if tokens_live_until is not None:
        latest = max(latest, tokens_live_until)
    return latest + timedelta(seconds=MAX_CLOCK_SKEW_S)


def record(session: AsyncSession, event: RevocationEvent, *, now: datetime) -> None:
    session.add(
        Revocation(
            tenant_id=event.tenant_id,
            kind=event.kind,
            value=event.value,
            cutoff=event.cutoff,
            expires_at=event.expires_at,
            created_at=now,
        )
    )
