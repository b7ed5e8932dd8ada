"""API-key wire format: prefix, entropy, checksum, keyed hash."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from authsvc.keys import secret


def test_generated_key_has_prefix_and_valid_checksum() -> None:
    key = secret.generate("api")
    assert re.fullmatch(r"ask_[0-9A-Za-z]{28}", key)
    assert secret.kind_of(key) == "api"
    assert secret.kind_of(secret.generate("operator")) == "operator"


def test_keys_are_unique() -> None:
    assert len({secret.generate() for _ in range(2000)}) == 2000


def test_mistyped_key_fails_checksum() -> None:
    key = secret.generate()
    for i in range(4, len(key)):
        ch = "A" if key[i] != "A" else "B"
        assert secret.kind_of(key[:i] + ch + key[i + 1 :]) is None


def test_truncated_or_extended_key_is_malformed() -> None:
    key = secret.generate()
    assert secret.kind_of(key[:-1]) is None
    assert secret.kind_of(key + "0") is None


@given(st.text(max_size=60))
def test_arbitrary_text_is_never_a_key(text: str) -> None:
    assert secret.kind_of(text) is None


def test_hash_is_keyed() -> None:
    key = secret.generate()
    assert secret.key_hash(key, b"a" * 32) != secret.key_hash(key, b"b" * 32)
    assert secret.key_hash(key, b"a" * 32) == secret.key_hash(key, b"a" * 32)
    assert key not in secret.key_hash(key, b"a" * 32)


def test_display_start_is_prefix_and_six_chars() -> None:
    key = secret.generate()
    assert secret.display_start(key) == key[:10]


@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=4, unique=True))
def test_key_hashes_are_key_hash_under_each_secret_in_order(secrets: list[bytes]) -> None:
    key = secret.generate("operator")
    hashes = secret.key_hashes(key, secrets)
    assert hashes == tuple(secret.key_hash(key, s) for s in secrets)
    assert hashes[0] == secret.key_hash(key, secrets[0])
    assert len(set(hashes)) == len(secrets)


def test_key_hashes_of_no_secret_is_empty() -> None:
    assert secret.key_hashes(secret.generate(), []) == ()
