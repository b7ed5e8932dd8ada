"""The wire format of API and operator keys, and their keyed hash.

``<prefix>_<body><checksum>``: ``ask_`` for tenant API keys, ``aso_`` for operator keys (so
secret scanners can match and tell them apart); ``body`` is 22 base62 characters from 16 bytes
of ``secrets`` (128 bits); ``checksum`` is CRC32 of ``prefix_body`` in 6 base62 characters, so a
mistyped or truncated key is refused before any lookup.

At rest only ``HMAC-SHA256(subkey, key)`` is kept: a database dump cannot be replayed, and
unlike a slow password hash, a lookup costs microseconds (the key has 128 bits of entropy, so
stretching adds nothing). ``start`` (prefix and 6 characters) is kept for display. While the
master secret rotates, a key is looked up by its hashes under the current and the previous
secrets (:func:`key_hashes`) and stored again under the current one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from collections.abc import Sequence
from typing import Literal

API_PREFIX = "ask"
OPERATOR_PREFIX = "aso"
KeyKind = Literal["api", "operator"]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY_LEN = 22
_SUM_LEN = 6
_FORMAT = re.compile(rf"(ask|aso)_([0-9A-Za-z]{{{_BODY_LEN}}})([0-9A-Za-z]{{{_SUM_LEN}}})\Z")


def _b62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out))


def _checksum(prefix: str, body: str) -> str:
    return _b62(zlib.crc32(f"{prefix}_{body}".encode()), _SUM_LEN)


def generate(kind: KeyKind = "api") -> str:
    prefix = API_PREFIX if kind == "api" else OPERATOR_PREFIX
    body = _b62(int.from_bytes(secrets.token_bytes(16), "big"), _BODY_LEN)
    return f"{prefix}_{body}{_checksum(prefix, body)}"


def kind_of(key: str) -> KeyKind | None:
    """The kind of a well-formed key with a valid checksum; ``None`` for anything else."""
    if len(key) != len(API_PREFIX) + 1 + _BODY_LEN + _SUM_LEN:
        return None
    m = _FORMAT.match(key)
    if m is None or not hmac.compare_digest(m.group(3), _checksum(m.group(1), m.group(2))):
        return None
    return "api" if m.group(1) == API_PREFIX else "operator"


def looks_like_key(token: str) -> bool:
    """Cheap test used to route a bearer credential: key prefix, not a JWT."""
    return token.startswith((API_PREFIX + "_", OPERATOR_PREFIX + "_"))


def key_hash(key: str, secret: bytes) -> str:
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def key_hashes(key: str, secrets: Sequence[bytes]) -> tuple[str, ...]:
    """:func:`key_hash` under each secret, in order (the current secret first)."""
    return tuple(key_hash(key, secret) for secret in secrets)


class KeyHasher:
    """Keyed hashes of keys: under the current subkey, and the previous master secrets' subkeys
    while a rotation is under way (a key stored under an old one is found, then re-hashed)."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        self._current, self._previous = current, tuple(previous)

    def digest(self, key: str) -> str:
        """The stored form (hex) under the current subkey."""
        return key_hash(key, self._current)

    def raw(self, key: str) -> bytes:
        """The same digest as 32 raw bytes: the key cache's key (half the memory of hex)."""
        return hmac.digest(self._current, key.encode(), "sha256")

    def digests(self, key: str, current: bytes | None = None) -> tuple[str, ...]:
        """Every stored form the key may have, the current subkey's first (``current``: its
        :meth:`raw` digest, when the caller already has it)."""
        first = self.digest(key) if current is None else current.hex()
        return (first, *(key_hash(key, s) for s in self._previous))


def display_start(key: str) -> str:
    return key[: len(API_PREFIX) + 1 + 6]
