"""The Redis clients of one instance (production mode), with outage-friendly timeouts.

* ``commands``: rate-limit scripts and revocation publishes. Short connect/read timeouts and a
  single immediate retry, so during an outage a request waits at most a few hundred
  milliseconds before the limiter's fail-open/closed policy decides, instead of redis-py's
  default backoff.
* ``subscriber``: the revocation subscriber's own connection (a subscribed connection can
  run no other command). No read timeout (it waits for messages); the subscriber loop polls
  with its own timeout and reconnects by itself.

Both reconnect lazily: a call after Redis comes back simply opens a new connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

COMMAND_TIMEOUT_S = 0.25
CONNECT_TIMEOUT_S = 0.25


@dataclass(frozen=True, slots=True)
class RedisClients:
    commands: Redis
    subscriber: Redis

    async def disconnect(self) -> None:
        await self.commands.connection_pool.disconnect()
        await self.subscriber.connection_pool.disconnect()

    async def aclose(self) -> None:
        await self.commands.aclose()
        await self.subscriber.aclose()


def make_redis_clients(url: str) -> RedisClients:
    commands = Redis.from_url(
        url,
        socket_timeout=COMMAND_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        retry=Retry(NoBackoff(), 1),
        max_connections=64,
    )
    subscriber = Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_keepalive=True,
        health_check_interval=15,
        retry=Retry(NoBackoff(), 0),
    )
    return RedisClients(commands, subscriber)
