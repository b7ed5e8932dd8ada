"""Time-sortable, prefixed identifiers (``ten_…``, ``key_…``).

48 bits of milliseconds followed by 80 random bits, in Crockford base32, so ids sort by
creation time and cursor pagination is a plain ``id > cursor`` range scan. Within one process
ids created in the same millisecond are strictly increasing (ULID-style monotonic), so rows
created in one burst keep their order; the embedded time is never moved.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


_last = 0
_lock = threading.Lock()


def new_id(prefix: str, now: float | None = None) -> str:
    global _last
    ms = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    value = (ms << 80) | secrets.randbits(80)
    with _lock:
        if (_last >> 80) == ms and value <= _last:
            value = _last + 1
        _last = value
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def time_of(identifier: str) -> float | None:
    """The creation time (Unix seconds, ms precision) embedded in an id from :func:`new_id`."""
    _, _, body = identifier.rpartition("_")
    if len(body) != 26:
        return None
    value = 0
    for ch in body:
        idx = _ALPHABET.find(ch)
        if idx < 0:
            return None
        value = (value << 5) | idx
    return (value >> 80) / 1000.0
