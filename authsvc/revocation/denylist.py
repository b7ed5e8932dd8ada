"""The in-memory revocation state every instance keeps.

Algorithm: the ``revocations`` table is an append-only log. Each instance loads the live part of
it at start, then applies new events as they arrive (broadcast) or are found (poll). A token is
revoked when its ``jti`` is listed, or when it was issued at or before a cutoff recorded for its
``sub`` or for the key that minted it (``client_id``).

"Issued" uses the token's ``jti``: authsvc jtis are time-sortable ids carrying the minting time
in milliseconds, so "revoke everything of sub X up to now" does not catch a token minted a few
milliseconds later in the same second (``iat`` has one-second resolution). Tokens whose jti
carries no time fall back to ``iat``.

Consistency: the check is a dict lookup, never I/O. An instance is at most one poll interval
behind the database if a broadcast is lost; entries are dropped once nothing they could match
is still valid (``expires_at``), so memory is bounded by the revocations of live tokens.
Listeners (the caches, given at construction) are told of every event so they can drop what it
invalidates (:mod:`authsvc.cache`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from authsvc.ids import time_of
from authsvc.revocation.events import RevocationEvent

Listener = Callable[[RevocationEvent], None]


class Denylist:
    def __init__(self, listeners: Sequence[Listener] = ()) -> None:
        self._jti: dict[tuple[str, str], float | None] = {}
        self._sub: dict[tuple[str, str], tuple[float, float | None]] = {}
        self._key: dict[tuple[str, str], tuple[float, float | None]] = {}
        self._listeners = tuple(listeners)

    def __len__(self) -> int:
        return len(self._jti) + len(self._sub) + len(self._key)

    def apply(self, event: RevocationEvent) -> None:
        key = (event.tenant_id, event.value)
        expires = _ts(event.expires_at)
        cutoff = event.cutoff.timestamp()
        if event.kind == "jti":
            self._jti[key] = expires
        elif event.kind == "sub":
            self._sub[key] = _later(self._sub.get(key), cutoff, expires)
        elif event.kind == "key_tokens":
            self._key[key] = _later(self._key.get(key), cutoff, expires)
        for listener in self._listeners:
            listener(event)

    def apply_all(self, events: Iterable[RevocationEvent]) -> None:
        for event in events:
            self.apply(event)

    def token_revoked(
        self, tenant_id: str, *, jti: str, sub: str | None, client_id: str | None, iat: float
    ) -> bool:
        if (tenant_id, jti) in self._jti:
            return True
        issued = time_of(jti)
        issued = iat if issued is None else issued
        if sub is not None:
            entry = self._sub.get((tenant_id, sub))
            if entry is not None and issued <= entry[0]:
                return True
        if client_id is not None:
            entry = self._key.get((tenant_id, client_id))
            if entry is not None and issued <= entry[0]:
                return True
        return False

    def prune(self, now: float) -> int:
        """Drop entries that can no longer match a valid token. Returns how many went."""
        before = len(self)
        self._jti = {k: e for k, e in self._jti.items() if e is None or e > now}
        self._sub = {k: v for k, v in self._sub.items() if v[1] is None or v[1] > now}
        self._key = {k: v for k, v in self._key.items() if v[1] is None or v[1] > now}
        return before - len(self)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _later(
    current: tuple[float, float | None] | None, cutoff: float, expires: float | None
) -> tuple[float, float | None]:
    if current is None:
        return (cutoff, expires)
    keep_until = None if current[1] is None or expires is None else max(current[1], expires)
    return (max(current[0], cutoff), keep_until)
