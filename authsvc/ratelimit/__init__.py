"""Exact, atomic multi-limit rate limiting with GCRA (generic cell rate algorithm).

One call decides one request against every limit that applies to it (key, identity,
token...) and consumes from all of them or from none. Two interchangeable backends:

* :class:`MemoryLimiter`: in-process, for the embedded single-instance mode;
* :class:`RedisLimiter`: shared by any number of instances; one Lua script call (one round
  trip) per decision, Redis ``TIME`` as the clock, fail-open/closed when Redis is down.

:func:`rate_limit_headers` renders a :class:`Decision` as IETF ``RateLimit-Policy`` /
``RateLimit``, ``X-RateLimit-*`` and ``Retry-After`` headers. The algorithm, the
arithmetic and the consistency trade-offs are described in the submodules' docstrings.
"""

from authsvc.ratelimit.headers import rate_limit_headers
from authsvc.ratelimit.memory import MemoryLimiter
from authsvc.ratelimit.redis import RedisLimiter
from authsvc.ratelimit.types import Decision, Limiter, LimitSpec, LimitState

__all__ = [
    "Decision",
    "LimitSpec",
    "LimitState",
    "Limiter",
    "MemoryLimiter",
    "RedisLimiter",
    "rate_limit_headers",
]
