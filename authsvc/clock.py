"""Injectable clock, so tests control time.

Everything that reads the time takes a :class:`Clock`; production code uses
:class:`SystemClock`, tests use :class:`FrozenClock` and move it explicitly.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

MAX_CLOCK_SKEW_S: Final = 30.0
"""The largest leeway any time check allows (RFC 7519 §4.1.4 "some small leeway"); every
horizon that must outlive a token adds it."""


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def time(self) -> float:
        """Current Unix time in seconds."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return time.time()


class FrozenClock:
    def __init__(self, start: datetime | float | None = None) -> None:
        if start is None:
            self._t = time.time()
        elif isinstance(start, datetime):
            self._t = start.timestamp()
        else:
            self._t = float(start)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, UTC)

    def time(self) -> float:
        return self._t

    def advance(self, seconds: float | timedelta) -> None:
        self._t += seconds.total_seconds() if isinstance(seconds, timedelta) else seconds

    def set(self, t: float) -> None:
        self._t = t
