"""Master secrets: the key-hash subkeys of the current and previous secrets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from authsvc.master import MasterSecrets

masters = st.binary(min_size=32, max_size=64)


def test_key_hash_subkey_of_a_master_secret_is_pinned() -> None:
    # Stored key hashes depend on it: a changed label or KDF would lock every key out.
    subkey = MasterSecrets(b"m" * 32).key_hash_secret
    assert subkey.hex() == "ae79d2b425504a0e5afae1a33f13ff1d116b04821b53c5728f54028beef75d07"


@given(masters, st.lists(masters, max_size=4))
def test_key_hash_secrets_are_the_current_subkey_then_each_previous_one(
    current: bytes, previous: list[bytes]
) -> None:
    subkeys = MasterSecrets(current, tuple(previous)).key_hash_secrets
    distinct = list(dict.fromkeys([current, *previous]))
    assert subkeys == tuple(MasterSecrets(m).key_hash_secret for m in distinct)
    assert subkeys[0] == MasterSecrets(current, tuple(previous)).key_hash_secret
    assert len(set(subkeys)) == len(subkeys)


def test_previous_secret_equal_to_the_current_one_counts_once() -> None:
    a, b = b"a" * 32, b"b" * 32
    assert MasterSecrets(a, (a, b, b)).key_hash_secrets == MasterSecrets(a, (b,)).key_hash_secrets
    assert len(MasterSecrets(a, (a, b, b)).key_hash_secrets) == 2
