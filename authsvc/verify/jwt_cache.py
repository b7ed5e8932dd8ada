"""Verified JWTs cached in process, by token digest, until they expire.

The first check of a JWT goes through the token verifier (parse, signature, claims, tenant,
denylist). A ``VALID`` result is kept under ``(tenant, SHA-256(token))``, never the token
itself, until the token's ``exp``. A repeat check of the same token then costs a hash, a dict
lookup and the denylist lookup (revocations arriving later must still win). Only ``VALID``
results are cached: anything else (and an entry that has expired or been revoked since) goes
back to the verifier, which gives the exact code.

Invalidation: a ``tenant`` or ``signing_key`` event drops the tenant's entries (tenant
disabled, signing key removed); a ``key`` event drops the tokens minted by that key (its state
changed). ``jti`` / ``sub`` / ``key_tokens`` events need no drop: the denylist is consulted on
every hit (for the token, its subject, its minting key and the JWTs it was exchanged from).
Memory is bounded (``max_entries``, oldest inserted evicted first).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from authsvc.clock import Clock
from authsvc.metrics import Metrics
from authsvc.revocation.denylist import Denylist
from authsvc.revocation.events import RevocationEvent
from authsvc.scopes import Grant


class TokenCheckLike(Protocol):
    """What the token verifier returns (see ``authsvc.tokens.verifier.TokenCheck``)."""

    @property
    def code(self) -> str: ...
    @property
    def tenant_id(self) -> str | None: ...
    @property
    def tenant_slug(self) -> str | None: ...
    @property
    def claims(self) -> Mapping[str, Any] | None: ...
    @property
    def grants(self) -> tuple[Grant, ...]: ...
    @property
    def sub(self) -> str | None: ...
    @property
    def client_id(self) -> str | None: ...
    @property
    def jti(self) -> str | None: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def reason(self) -> str | None: ...


class TokenVerifierLike(Protocol):
    async def verify(self, token: str, *, tenant_id: str) -> TokenCheckLike: ...


@dataclass(frozen=True, slots=True)
class _Entry:
    check: TokenCheckLike
    exp: float
    iat: float
    parents: tuple[str, ...]
    """``parent_jtis``: the JWTs this one was exchanged from (revoking one revokes it)."""


class VerifiedTokenCache:
    def __init__(
        self,
        verifier: TokenVerifierLike,
        denylist: Denylist,
        clock: Clock,
        metrics: Metrics,
        *,
        max_entries: int = 100_000,
    ) -> None:
        self.verifier, self._denylist, self._clock, self._metrics = (
            verifier,
            denylist,
            clock,
            metrics,
        )
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str], _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def verify(self, token: str, *, tenant_id: str) -> TokenCheckLike:
        k = (tenant_id, hashlib.sha256(token.encode()).hexdigest())
        entry = self._entries.get(k)
        if entry is not None:
            if self._usable(entry, tenant_id):
                self._metrics.inc(self._metrics.cache, "jwt", "hit")
                return entry.check
            del self._entries[k]
        self._metrics.inc(self._metrics.cache, "jwt", "miss")
        check = await self.verifier.verify(token, tenant_id=tenant_id)
        if check.code == "VALID" and check.expires_at is not None:
            self._store(k, check)
        return check

    def _usable(self, entry: _Entry, tenant_id: str) -> bool:
        if self._clock.time() >= entry.exp:
            return False
        check, deny = entry.check, self._denylist
        if deny.token_revoked(
            tenant_id, jti=check.jti or "", sub=check.sub, client_id=check.client_id, iat=entry.iat
        ):
            return False
        return not any(
            deny.token_revoked(tenant_id, jti=p, sub=None, client_id=None, iat=entry.iat)
            for p in entry.parents
        )

    def _store(self, k: tuple[str, str], check: TokenCheckLike) -> None:
        assert check.expires_at is not None
        claims = check.claims or {}
        iat = claims.get("iat")
        iat_f = float(iat) if isinstance(iat, int | float) and not isinstance(iat, bool) else 0.0
        parents = claims.get("parent_jtis") or []
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            return
        if len(self._entries) >= self.max_entries:
            now = self._clock.time()
            self._entries = {key: e for key, e in self._entries.items() if e.exp > now}
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
        self._entries[k] = _Entry(check, check.expires_at.timestamp(), iat_f, tuple(parents))

    def on_event(self, event: RevocationEvent) -> None:
        if event.kind in ("tenant", "signing_key"):
            self._drop(lambda k, e: k[0] == event.tenant_id)
        elif event.kind == "key":
            self._drop(lambda k, e: k[0] == event.tenant_id and e.check.client_id == event.value)

    def _drop(self, match: Callable[[tuple[str, str], _Entry], bool]) -> None:
        doomed = [k for k, e in self._entries.items() if match(k, e)]
        for k in doomed:
            del self._entries[k]
