"""The keys of trusted identity providers, fetched and cached per issuer (:class:`JwksClient`).

Parsing a JWKS document is :mod:`authsvc.issuers.jwks`.

One entry per trusted issuer (``JwksSource.cache_id``), LRU-bounded (``max_issuers``). Keys come
from the inline ``jwks``, else the configured ``jwks_uri``, else OIDC discovery
(``<issuer>/.well-known/openid-configuration``, whose ``issuer`` must equal the configured one
exactly, OIDC Discovery §4.3) and its ``jwks_uri``. Times are monotonic (injected).

* Freshness: ``Cache-Control: max-age`` of the JWKS response (RFC 9111 §5.2.2.1), clamped to
  [60 s, 24 h]; ``no-store``/``no-cache`` mean the minimum; default 5 min without a header.
* Unknown ``kid`` in a fresh set: refetch, at most once every ``refetch_interval_s`` (5 s)
  per issuer; a miss inside that window answers "unknown key" at once.
* Single flight: concurrent refreshes of one issuer share one fetch; a cancelled caller does not
  cancel it for the others.
* Failure: the previous keys keep being served, for at most ``max_stale_s`` (24 h) past their
  expiry (a key the IdP removed must not live forever because its JWKS is unreachable). When
  no key set is available at all, :meth:`JwksClient.get_key` raises :class:`JwksUnavailable`
  (→ 503), distinct from ``None`` (an unknown key → ``invalid_grant``). Failed attempts are
  throttled by the same interval, so an outage is not hammered.
* An entry whose ``JwksSource`` differs from the requested one is refetched (a changed issuer
  can never be served stale keys); :meth:`JwksClient.invalidate` drops an entry explicitly.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from authsvc.clock import Clock
from authsvc.issuers.fetch import JsonDocument
from authsvc.issuers.jwks import (
    MAX_KEYS,
    SUBJECT_ALGORITHMS,
    InvalidJwks,
    IssuerKey,
    KeySet,
    parse_jwks,
)
from authsvc.issuers.urls import FetchError
from authsvc.revocation.events import RevocationEvent

__all__ = [
    "DocumentFetcher",
    "JwksClient",
    "JwksSource",
    "JwksStatus",
    "JwksUnavailable",
    "discovery_url",
    "ttl_from_cache_control",
]

log = logging.getLogger(__name__)

_MAX_AGE: Final = re.compile(r'\s*max-age\s*=\s*"?(\d{1,12})"?\s*', re.IGNORECASE)


class JwksUnavailable(Exception):
    """No key set of this issuer is available (never fetched, or too stale): a 503.

    ``reason`` is a :data:`~authsvc.issuers.urls.FetchReason` or one of ``bad_jwks``,
    ``bad_discovery``, ``issuer_mismatch``.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


def ttl_from_cache_control(
    value: str | None, *, default: float = 300.0, minimum: float = 60.0, maximum: float = 86400.0
) -> float:
    """Seconds to keep a response: ``max-age`` (RFC 9111 §5.2.2.1) clamped to the bounds.

    ``no-store``/``no-cache`` give the minimum (the keys must be cached a little anyway, or
    every exchange would fetch); several ``max-age`` directives, the smallest.
    """
    if not value:
        return default
    ages: list[int] = []
    for directive in value.split(","):
        name = directive.strip().lower()
        if name in ("no-store", "no-cache"):
            return minimum
        match = _MAX_AGE.fullmatch(directive)
        if match is not None:
            ages.append(int(match.group(1)))
    if not ages:
        return default
    return float(min(max(min(ages), minimum), maximum))


def discovery_url(issuer: str) -> str:
    """OIDC Discovery §4.1: the issuer, without a trailing ``/``, + the well-known path."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


class DocumentFetcher(Protocol):
    async def get_json(self, url: str) -> JsonDocument: ...


@dataclass(frozen=True, slots=True)
class JwksSource:
    """Where one trusted issuer's keys come from. ``cache_id`` is the trusted issuer's id.

    Two sources with the same ``cache_id`` but different fields are different configurations:
    the cached keys of the old one are never served for the new one.
    """

    cache_id: str
    issuer: str
    jwks_uri: str | None = None
    jwks: Mapping[str, Any] | None = None
    algorithms: frozenset[str] = frozenset(SUBJECT_ALGORITHMS)


@dataclass(frozen=True, slots=True)
class JwksStatus:
    """What an admin may see about an issuer's key cache (no key material)."""

    fetched_at: datetime | None
    kids: tuple[str, ...]
    last_error: str | None


@dataclass(slots=True, eq=False)
class _Entry:
    source: JwksSource
    keys: Mapping[str, IssuerKey] | None = None
    expires_at: float = 0.0
    fetched_at: datetime | None = None
    last_attempt: float | None = None
    last_error: str | None = None
    inflight: asyncio.Task[None] | None = None


class JwksClient:
    """Keys of trusted issuers, fetched through ``fetcher`` and cached (module docstring)."""

    def __init__(
        self,
        fetcher: DocumentFetcher,
        *,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        max_issuers: int = 1000,
        refetch_interval_s: float = 5.0,
        default_ttl_s: float = 300.0,
        min_ttl_s: float = 60.0,
        max_ttl_s: float = 86400.0,
        max_stale_s: float = 86400.0,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if max_issuers < 1 or not 0 < min_ttl_s <= default_ttl_s <= max_ttl_s:
            raise ValueError("invalid JWKS cache bounds")
        self._fetcher = fetcher
        self._clock = clock
        self._monotonic = monotonic
        self._max_issuers = max_issuers
        self._refetch_interval_s = refetch_interval_s
        self._ttl = (default_ttl_s, min_ttl_s, max_ttl_s)
        self._max_stale_s = max_stale_s
        self._max_keys = max_keys
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    # -- public --------------------------------------------------------------------------

    async def get_key(self, source: JwksSource, kid: str) -> IssuerKey | None:
        """The key ``kid`` of ``source``'s issuer, ``None`` if unknown (after at most one
        throttled refetch), or :class:`JwksUnavailable` if no key set is available at all."""
        entry = self._entry(source)
        now = self._monotonic()
        if entry.keys is not None and now < entry.expires_at:
            key = entry.keys.get(kid)
            if key is not None or not self._may_fetch(entry, now):
                return key
        elif not self._may_fetch(entry, now):
            return self._usable(entry, now).get(kid)
        await self._refresh(entry)
        return self._usable(entry, self._monotonic()).get(kid)

    def resolver(self, source: JwksSource) -> Callable[[str], Awaitable[IssuerKey | None]]:
        """``get_key`` bound to ``source``: the ``resolve_key`` of the subject verifier."""

        async def resolve(kid: str) -> IssuerKey | None:
            return await self.get_key(source, kid)

        return resolve

    def invalidate(self, cache_id: str) -> None:
        """Forget an issuer's keys (it was changed or deleted); an in-flight fetch is orphaned."""
        self._entries.pop(cache_id, None)

    def clear(self) -> None:
        self._entries.clear()

    def on_event(self, event: RevocationEvent) -> None:
        """Denylist listener: an issuer changed or was deleted (on any instance)."""
        if event.kind == "issuer":
            self.invalidate(event.value)

    def status(self, cache_id: str) -> JwksStatus | None:
        entry = self._entries.get(cache_id)
        if entry is None:
            return None
        kids = tuple(sorted(entry.keys)) if entry.keys is not None else ()
        return JwksStatus(entry.fetched_at, kids, entry.last_error)

    # -- internals -----------------------------------------------------------------------

    def _entry(self, source: JwksSource) -> _Entry:
        entry = self._entries.get(source.cache_id)
        if entry is not None and entry.source == source:
            self._entries.move_to_end(source.cache_id)
            return entry
        entry = _Entry(source)
        self._entries[source.cache_id] = entry
        self._entries.move_to_end(source.cache_id)
        while len(self._entries) > self._max_issuers:
            self._entries.popitem(last=False)
        return entry

    def _may_fetch(self, entry: _Entry, now: float) -> bool:
        if entry.inflight is not None:
            return True  # joining a fetch already under way costs nothing
        last = entry.last_attempt
        return last is None or now - last >= self._refetch_interval_s

    def _usable(self, entry: _Entry, now: float) -> Mapping[str, IssuerKey]:
        if entry.keys is not None and now < entry.expires_at + self._max_stale_s:
            return entry.keys
        raise JwksUnavailable(
            entry.last_error or "unavailable",
            f"The keys of issuer {entry.source.issuer} are unavailable.",
        )

    async def _refresh(self, entry: _Entry) -> None:
        task = entry.inflight
        if task is None:
            entry.last_attempt = self._monotonic()
            task = asyncio.get_running_loop().create_task(self._load(entry))
            entry.inflight = task

            def done(finished: asyncio.Task[None]) -> None:
                entry.inflight = None
                if not finished.cancelled():
                    finished.exception()  # retrieved here; awaiting callers re-raise it

            task.add_done_callback(done)
        await asyncio.shield(task)

    async def _load(self, entry: _Entry) -> None:
        source = entry.source
        try:
            keys, ttl = await self._fetch_keys(source)
        except (FetchError, JwksUnavailable) as exc:
            entry.last_error = exc.reason
            log.warning("JWKS of issuer %r unavailable (%s)", source.cache_id, exc.reason)
            return
        except InvalidJwks:
            entry.last_error = "bad_jwks"
            log.warning("JWKS of issuer %r is not a usable JWK Set", source.cache_id)
            return
        for kid, reason in keys.skipped:
            log.warning("JWKS of issuer %r: key %r skipped (%s)", source.cache_id, kid, reason)
        entry.keys = keys.keys
        entry.expires_at = self._monotonic() + ttl
        entry.fetched_at = self._clock.now()
        entry.last_error = None

    async def _fetch_keys(self, source: JwksSource) -> tuple[KeySet, float]:
        default, minimum, maximum = self._ttl
        if source.jwks is not None:
            return parse_jwks(source.jwks, algorithms=source.algorithms), maximum
        jwks_uri = source.jwks_uri
        if jwks_uri is None:
            discovery = await self._fetcher.get_json(discovery_url(source.issuer))
            if discovery.body.get("issuer") != source.issuer:  # OIDC Discovery §4.3: exact
                raise JwksUnavailable(
                    "issuer_mismatch", "The discovery document names another issuer."
                )
            found = discovery.body.get("jwks_uri")  # OIDC Discovery §3: REQUIRED
            if not isinstance(found, str) or not found:
                raise JwksUnavailable("bad_discovery", "The discovery document has no jwks_uri.")
            jwks_uri = found
        document = await self._fetcher.get_json(jwks_uri)
        keys = parse_jwks(document.body, algorithms=source.algorithms, max_keys=self._max_keys)
        ttl = ttl_from_cache_control(
            document.cache_control, default=default, minimum=minimum, maximum=maximum
        )
        return keys, ttl
