"""Revocation buses: how a committed revocation reaches every instance's :class:`Denylist`.

Both buses apply the events to the local denylist first (synchronously, so the instance that
made the change refuses the credential on its very next request), then tell the others.

* :class:`LocalBus` (embedded mode): there are no others. Another process writing to the same
  SQLite file (the CLI) is picked up by the poller.
* :class:`RedisBus`: ``PUBLISH`` on one channel; every instance runs :meth:`RedisBus.run`, a
  subscriber that applies what it receives, then acknowledges it (``INCR`` of a per-message
  key). ``PUBLISH`` answers how many subscribers received the message; the publisher waits
  (up to ``ACK_TIMEOUT_S``) until that many have acknowledged, so when a revoking API call
  returns, every live instance already refuses the credential: "the very next request" holds
  by construction, not by racing the broadcast. An instance too slow to acknowledge in time
  is logged and counted, and catches up by broadcast or poll.
  Pub/sub is fire-and-forget: a message sent while an instance is disconnected is lost to
  it. That is acceptable because the database row is the truth and the poller re-reads it
  every ``AUTHSVC_REVOCATION_POLL_S``; the broadcast only makes propagation take milliseconds
  instead of up to one poll interval. A publish that fails (Redis down) is logged and
  counted, never raised: the revocation is already committed and the caller must not see an
  error for it. The subscriber reconnects by itself with a capped backoff and, once back,
  asks the poller for an immediate catch-up.

Messages carry no secret: tenant id, kind, value (a key id, a jti, a subject, a kid), cutoff
and expiry. Applying an event twice is harmless (the denylist and the caches are idempotent);
an instance acknowledges its own broadcast without applying it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast, get_args

from redis.asyncio import Redis

from authsvc.metrics import Metrics
from authsvc.revocation.denylist import Denylist
from authsvc.revocation.events import Kind, RevocationEvent

log = logging.getLogger(__name__)

CHANNEL = "authsvc:revocations"
ACK_PREFIX = "authsvc:revocations:ack:"
ACK_TTL_MS = 10_000
ACK_TIMEOUT_S = 0.2
_KINDS = frozenset(get_args(Kind))
_BACKOFF_START_S = 0.05
_BACKOFF_MAX_S = 2.0


def encode(events: Sequence[RevocationEvent], origin: str, message_id: str = "") -> str:
    return json.dumps(
        {
            "o": origin,
            "m": message_id,
            "e": [
                [
                    e.tenant_id,
                    e.kind,
                    e.value,
                    e.cutoff.timestamp(),
                    None if e.expires_at is None else e.expires_at.timestamp(),
                ]
                for e in events
            ],
        },
        separators=(",", ":"),
    )


def decode(payload: str | bytes) -> tuple[str, str, list[RevocationEvent]]:
    """``(origin, message id, events)``; ``ValueError`` for anything that is not our message."""
    try:
        body = json.loads(payload)
        origin, message_id = str(body["o"]), str(body.get("m") or "")
        events = []
        for tenant_id, kind, value, cutoff, expires in body["e"]:
            if kind not in _KINDS or not isinstance(tenant_id, str) or not isinstance(value, str):
                raise ValueError("unknown revocation event")
            events.append(
                RevocationEvent(
                    tenant_id,
                    cast(Kind, kind),
                    value,
                    datetime.fromtimestamp(float(cutoff), UTC),
                    None if expires is None else datetime.fromtimestamp(float(expires), UTC),
                )
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError("not a revocation message") from exc
    return origin, message_id, events


class LocalBus:
    """Embedded mode: apply locally; nobody else to tell."""

    def __init__(self, denylist: Denylist, metrics: Metrics) -> None:
        self._denylist, self._metrics = denylist, metrics

    async def publish(self, events: Sequence[RevocationEvent]) -> None:
        for event in events:
            self._denylist.apply(event)
            self._metrics.inc(self._metrics.revocations, event.kind, "local")


class RedisBus:
    """Apply locally, then broadcast on Redis pub/sub; :meth:`run` is the subscriber."""

    def __init__(
        self,
        client: Redis,
        subscriber: Redis,
        denylist: Denylist,
        metrics: Metrics,
        *,
        on_reconnect: Sequence[Callable[[], None]] = (),
        channel: str = CHANNEL,
    ) -> None:
        self._client, self._subscriber = client, subscriber
        self._denylist, self._metrics, self._channel = denylist, metrics, channel
        self.origin = secrets.token_hex(8)
        self.ack_timeout_s = ACK_TIMEOUT_S
        self._on_reconnect = tuple(on_reconnect)
        """Called after the subscriber reconnected (the poller catches up at once)."""
        self.connected = asyncio.Event()

    async def publish(self, events: Sequence[RevocationEvent]) -> None:
        if not events:
            return
        for event in events:
            self._denylist.apply(event)
            self._metrics.inc(self._metrics.revocations, event.kind, "local")
        message_id = secrets.token_hex(8)
        try:
            receivers = await self._client.publish(
                self._channel, encode(events, self.origin, message_id)
            )
            if receivers:
                await self._await_acks(message_id, int(receivers))
        except Exception as exc:  # Redis down: committed anyway, the pollers will see it
            self._metrics.inc(self._metrics.revocation_errors, "publish")
            log.warning(
                "revocation broadcast failed (%s); other instances learn it by polling",
                type(exc).__name__,
            )

    async def _await_acks(self, message_id: str, receivers: int) -> None:
        """Wait until every subscriber that received the message has applied it (bounded)."""
        key = ACK_PREFIX + message_id
        deadline = time.monotonic() + self.ack_timeout_s
        pause = 0.0005
        while True:
            acked = await self._client.get(key)
            if acked is not None and int(acked) >= receivers:
                return
            if time.monotonic() >= deadline:
                self._metrics.inc(self._metrics.revocation_errors, "ack_timeout")
                log.warning(
                    "revocation: %d of %d instances acknowledged in time; the others catch up"
                    " by polling",
                    int(acked or 0),
                    receivers,
                )
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.01)

    def handle(self, payload: str | bytes) -> str | None:
        """Apply one received message; returns the id to acknowledge (``None``: malformed)."""
        try:
            origin, message_id, events = decode(payload)
        except ValueError:
            log.warning("ignored a malformed message on the revocation channel")
            return None
        if origin != self.origin:  # our own events were applied when published
            for event in events:
                self._denylist.apply(event)
                self._metrics.inc(self._metrics.revocations, event.kind, "broadcast")
        return message_id or None

    async def _ack(self, message_id: str) -> None:
        key = ACK_PREFIX + message_id
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.pexpire(key, ACK_TTL_MS)
            await pipe.execute()

    async def run(self) -> None:
        """Subscribe forever; reconnect with a capped backoff whenever the link drops."""
        backoff = _BACKOFF_START_S
        first = True
        while True:
            pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self.connected.set()
                if not first:
                    log.info("revocation subscriber reconnected; catching up from the database")
                    for callback in self._on_reconnect:
                        callback()
                first, backoff = False, _BACKOFF_START_S
                while True:
                    message: dict[str, Any] | None = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        message_id = self.handle(message["data"])
                        if message_id is not None:
                            await self._ack(message_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected.is_set() or first:
                    log.warning(
                        "revocation subscriber disconnected (%s); retrying", type(exc).__name__
                    )
                self.connected.clear()
                first = False
                self._metrics.inc(self._metrics.revocation_errors, "subscriber")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
            finally:
                with contextlib.suppress(Exception):  # the link is already gone
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
