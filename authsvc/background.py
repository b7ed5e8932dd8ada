"""The long-running tasks of a serving instance, started and stopped by the app's lifespan.

* the revocation poller (both modes): loads the live revocations at start, then re-reads the
  table every ``AUTHSVC_REVOCATION_POLL_S``;
* the Redis subscriber (production mode): applies broadcast revocations, reconnects by itself
  and pokes the poller for a catch-up after each reconnection;
* the ``last_used_at`` writer (batched, once a minute).

The initial load is awaited before the app accepts requests, so an instance never serves
with an empty denylist, unless the database is down at start: then it starts anyway (warm
nothing, cold lookups answer 503) and the poller loads as soon as the database answers.
The CLI builds the same services without these tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from authsvc.revocation.bus import RedisBus
from authsvc.services import Services

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def background(services: Services) -> AsyncIterator[None]:
    tasks: list[asyncio.Task[None]] = []

    def start(name: str, coro: Coroutine[Any, Any, None]) -> None:
        tasks.append(asyncio.create_task(coro, name=f"authsvc-{name}"))

    bus = services.bus
    if isinstance(bus, RedisBus):
        start("revocation-subscriber", bus.run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bus.connected.wait(), timeout=2.0)
    try:
        await services.poller.load()
    except Exception as exc:
        log.warning("could not load revocations at start (%s); will retry", type(exc).__name__)
    start("revocation-poller", services.poller.run())
    start("last-used-writer", services.usage.run())
    try:
        yield
    finally:
        await _cancel_all(tasks)
        with contextlib.suppress(Exception):
            await services.usage.flush()
        if services.redis is not None:
            # Drop the connections on this loop (a test client may run the app on a loop of
            # its own); the clients stay usable and reconnect if used again.
            await services.redis.disconnect()


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel until every task has ended. One cancel is not enough on Python 3.11:
    ``asyncio.wait_for`` (which redis-py wraps around each command when a socket timeout is
    set) drops a cancel that arrives as its inner call completes, so a subscriber cancelled
    while acknowledging a broadcast would go on running and the shutdown would never end."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.warning("background task %s ended with %r", task.get_name(), task.exception())
