"""The per-issuer JWKS cache: freshness, throttled refetch, single flight, failure handling.

The fetcher here is an in-memory identity provider (documents by URL, a gate to hold fetches
open, a call log); time is a controllable monotonic counter. The real HTTP path is covered by
tests/integration/test_issuer_fetch.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from authsvc.clock import FrozenClock
from authsvc.issuers.fetch import JsonDocument
from authsvc.issuers.jwks_cache import JwksClient, JwksSource, JwksUnavailable
from authsvc.issuers.urls import FetchError
from tests.idp import Keys, public_jwk

ISSUER = "https://idp.example.com/realms/acme"
DISCOVERY = ISSUER + "/.well-known/openid-configuration"
JWKS_URI = "https://keys.example.com/jwks"


class Monotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class MemoryIdp:
    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.cache_control: str | None = None
        self.failure: FetchError | None = None
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None

    async def get_json(self, url: str) -> JsonDocument:
        self.calls.append(url)
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        if url not in self.documents:
            raise FetchError("http_status", "404")
        return JsonDocument(url, self.documents[url], self.cache_control)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def idp(keys: Keys) -> MemoryIdp:
    idp = MemoryIdp()
    idp.documents[DISCOVERY] = {"issuer": ISSUER, "jwks_uri": JWKS_URI}
    idp.documents[JWKS_URI] = {"keys": [public_jwk(keys.ec, "k1")]}
    return idp


@pytest.fixture
def mono() -> Monotonic:
    return Monotonic()


@pytest.fixture
def client(idp: MemoryIdp, mono: Monotonic) -> JwksClient:
    return JwksClient(idp, clock=FrozenClock(1_800_000_000), monotonic=mono)


SOURCE = JwksSource(cache_id="ti_1", issuer=ISSUER)


def rotate(idp: MemoryIdp, keys: Keys, *kids: str) -> None:
    idp.documents[JWKS_URI] = {"keys": [public_jwk(keys.ec, kid) for kid in kids]}


async def test_discovery_then_jwks_is_fetched_once_and_cached(
    client: JwksClient, idp: MemoryIdp
) -> None:
    first = await client.get_key(SOURCE, "k1")
    second = await client.get_key(SOURCE, "k1")
    assert first is not None
    assert first is second
    assert idp.calls == [DISCOVERY, JWKS_URI]


async def test_an_issuer_with_a_trailing_slash_keeps_it_in_the_issuer_comparison(
    idp: MemoryIdp, mono: Monotonic
) -> None:
    issuer = ISSUER + "/"
    idp.documents[DISCOVERY] = {"issuer": issuer, "jwks_uri": JWKS_URI}
    client = JwksClient(idp, clock=FrozenClock(0), monotonic=mono)
    assert await client.get_key(JwksSource("ti", issuer), "k1") is not None
    assert idp.calls[0] == DISCOVERY


async def test_a_discovery_document_for_another_issuer_makes_the_keys_unavailable(
    client: JwksClient, idp: MemoryIdp
) -> None:
    idp.documents[DISCOVERY] = {"issuer": "https://evil.example.com", "jwks_uri": JWKS_URI}
    with pytest.raises(JwksUnavailable) as caught:
        await client.get_key(SOURCE, "k1")
    assert caught.value.reason == "issuer_mismatch"
    assert idp.calls == [DISCOVERY]


@pytest.mark.parametrize("doc", [{"issuer": ISSUER}, {"issuer": ISSUER, "jwks_uri": 5}])
async def test_a_discovery_document_without_jwks_uri_makes_the_keys_unavailable(
    client: JwksClient, idp: MemoryIdp, doc: dict[str, Any]
) -> None:
    idp.documents[DISCOVERY] = doc
    with pytest.raises(JwksUnavailable) as caught:
        await client.get_key(SOURCE, "k1")
    assert caught.value.reason == "bad_discovery"


async def test_a_configured_jwks_uri_skips_discovery(client: JwksClient, idp: MemoryIdp) -> None:
    source = JwksSource("ti_1", ISSUER, jwks_uri=JWKS_URI)
    assert await client.get_key(source, "k1") is not None
    assert idp.calls == [JWKS_URI]


async def test_an_inline_jwks_needs_no_fetch(
    client: JwksClient, idp: MemoryIdp, keys: Keys
) -> None:
    source = JwksSource("ti_1", ISSUER, jwks={"keys": [public_jwk(keys.ed, "inline")]})
    key = await client.get_key(source, "inline")
    assert key is not None
    assert key.algorithms == {"EdDSA"}
    assert await client.get_key(source, "other") is None
    assert idp.calls == []


async def test_an_unknown_kid_refetches_once_then_is_throttled(
    client: JwksClient, idp: MemoryIdp, mono: Monotonic, keys: Keys
) -> None:
    await client.get_key(SOURCE, "k1")
    assert await client.get_key(SOURCE, "nope") is None
    assert len(idp.calls) == 2  # the set was fetched less than 5 s ago: no refetch
    mono.advance(5)
    assert await client.get_key(SOURCE, "nope") is None
    assert len(idp.calls) == 4  # one refetch (discovery + jwks)
    for _ in range(20):
        assert await client.get_key(SOURCE, "nope") is None
        mono.advance(0.2)
    assert len(idp.calls) == 4  # 4 s later: still inside the 5 s window
    rotate(idp, keys, "k1", "k2")
    mono.advance(1.0)
    assert await client.get_key(SOURCE, "k2") is not None
    assert len(idp.calls) == 6


async def test_a_rotated_in_key_is_found_by_the_unknown_kid_refetch(
    client: JwksClient, idp: MemoryIdp, keys: Keys, mono: Monotonic
) -> None:
    await client.get_key(SOURCE, "k1")
    rotate(idp, keys, "k2")
    mono.advance(5)
    assert await client.get_key(SOURCE, "k2") is not None
    assert await client.get_key(SOURCE, "k1") is None  # rotated out


async def test_concurrent_unknown_kid_lookups_share_one_fetch(
    client: JwksClient, idp: MemoryIdp, keys: Keys, mono: Monotonic
) -> None:
    await client.get_key(SOURCE, "k1")
    idp.calls.clear()
    mono.advance(5)
    rotate(idp, keys, "k1", "new")
    idp.gate = asyncio.Event()
    lookups = [asyncio.create_task(client.get_key(SOURCE, "new")) for _ in range(50)]
    await asyncio.sleep(0.01)
    idp.gate.set()
    results = await asyncio.gather(*lookups)
    assert all(r is not None and r.kid == "new" for r in results)
    assert idp.calls == [DISCOVERY, JWKS_URI]


async def test_concurrent_first_lookups_share_one_fetch(client: JwksClient, idp: MemoryIdp) -> None:
    idp.gate = asyncio.Event()
    lookups = [asyncio.create_task(client.get_key(SOURCE, "k1")) for _ in range(50)]
    await asyncio.sleep(0.01)
    idp.gate.set()
    assert all(r is not None for r in await asyncio.gather(*lookups))
    assert idp.calls == [DISCOVERY, JWKS_URI]


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(
    client: JwksClient, idp: MemoryIdp
) -> None:
    idp.gate = asyncio.Event()
    first = asyncio.create_task(client.get_key(SOURCE, "k1"))
    second = asyncio.create_task(client.get_key(SOURCE, "k1"))
    await asyncio.sleep(0.01)
    first.cancel()
    idp.gate.set()
    assert await second is not None
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_keys_are_refetched_after_max_age(
    client: JwksClient, idp: MemoryIdp, mono: Monotonic
) -> None:
    idp.cache_control = "max-age=600"
    await client.get_key(SOURCE, "k1")
    mono.advance(599)
    await client.get_key(SOURCE, "k1")
    assert len(idp.calls) == 2
    mono.advance(2)
    await client.get_key(SOURCE, "k1")
    assert len(idp.calls) == 4


async def test_without_cache_control_keys_live_five_minutes(
    client: JwksClient, idp: MemoryIdp, mono: Monotonic
) -> None:
    await client.get_key(SOURCE, "k1")
    mono.advance(299)
    await client.get_key(SOURCE, "k1")
    assert len(idp.calls) == 2
    mono.advance(2)
    await client.get_key(SOURCE, "k1")
    assert len(idp.calls) == 4


async def test_a_failed_refresh_keeps_serving_the_cached_keys(
    client: JwksClient, idp: MemoryIdp, mono: Monotonic
) -> None:
    await client.get_key(SOURCE, "k1")
    idp.failure = FetchError("timeout", "slow")
    mono.advance(301)
    assert await client.get_key(SOURCE, "k1") is not None
    assert await client.get_key(SOURCE, "unknown") is None
    status = client.status("ti_1")
    assert status is not None
    assert status.last_error == "timeout"
    assert status.kids == ("k1",)


async def test_keys_stale_beyond_the_limit_are_no_longer_served(
    idp: MemoryIdp, mono: Monotonic
) -> None:
    client = JwksClient(idp, clock=FrozenClock(0), monotonic=mono, max_stale_s=3600)
    await client.get_key(SOURCE, "k1")
    idp.failure = FetchError("network", "down")
    mono.advance(300 + 3599)
    assert await client.get_key(SOURCE, "k1") is not None
    mono.advance(2)
    with pytest.raises(JwksUnavailable) as caught:
        await client.get_key(SOURCE, "k1")
    assert caught.value.reason == "network"


async def test_never_fetched_keys_are_unavailable_not_unknown(
    client: JwksClient, idp: MemoryIdp, mono: Monotonic
) -> None:
    idp.failure = FetchError("timeout", "slow")
    with pytest.raises(JwksUnavailable) as caught:
        await client.get_key(SOURCE, "k1")
    assert caught.value.reason == "timeout"
    with pytest.raises(JwksUnavailable):
        await client.get_key(SOURCE, "k1")  # throttled: answered without a new fetch
    assert idp.calls == [DISCOVERY]
    idp.failure = None
    mono.advance(5)
    assert await client.get_key(SOURCE, "k1") is not None


async def test_a_document_that_is_not_a_jwks_makes_the_keys_unavailable(
    client: JwksClient, idp: MemoryIdp
) -> None:
    idp.documents[JWKS_URI] = {"not": "a jwks"}
    with pytest.raises(JwksUnavailable) as caught:
        await client.get_key(SOURCE, "k1")
    assert caught.value.reason == "bad_jwks"


async def test_a_jwks_without_usable_keys_answers_unknown_key(
    client: JwksClient, idp: MemoryIdp
) -> None:
    idp.documents[JWKS_URI] = {"keys": [{"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}]}
    assert await client.get_key(SOURCE, "k1") is None


async def test_a_changed_source_never_gets_the_old_keys(
    client: JwksClient, idp: MemoryIdp, keys: Keys
) -> None:
    await client.get_key(SOURCE, "k1")
    other_uri = "https://keys.example.com/other"
    idp.documents[other_uri] = {"keys": [public_jwk(keys.ec, "k9")]}
    changed = JwksSource("ti_1", ISSUER, jwks_uri=other_uri)
    assert await client.get_key(changed, "k1") is None
    assert await client.get_key(changed, "k9") is not None


async def test_narrowed_algorithms_apply_to_cached_keys(client: JwksClient) -> None:
    assert await client.get_key(SOURCE, "k1") is not None
    narrowed = JwksSource("ti_1", ISSUER, algorithms=frozenset({"RS256"}))
    assert await client.get_key(narrowed, "k1") is None


async def test_invalidate_forces_a_refetch(client: JwksClient, idp: MemoryIdp) -> None:
    await client.get_key(SOURCE, "k1")
    client.invalidate("ti_1")
    assert client.status("ti_1") is None
    await client.get_key(SOURCE, "k1")
    assert len(idp.calls) == 4


async def test_the_number_of_cached_issuers_is_bounded(idp: MemoryIdp, mono: Monotonic) -> None:
    client = JwksClient(idp, clock=FrozenClock(0), monotonic=mono, max_issuers=2)
    a, b, c = (JwksSource(f"ti_{n}", ISSUER, jwks_uri=JWKS_URI) for n in "abc")
    await client.get_key(a, "k1")
    await client.get_key(b, "k1")
    await client.get_key(a, "k1")  # a is now the most recently used
    await client.get_key(c, "k1")  # evicts b
    assert client.status("ti_b") is None
    assert client.status("ti_a") is not None
    assert client.status("ti_c") is not None
    assert len(idp.calls) == 3


async def test_status_reports_the_fetch_time_from_the_clock(
    client: JwksClient,
) -> None:
    await client.get_key(SOURCE, "k1")
    status = client.status("ti_1")
    assert status is not None
    assert status.fetched_at is not None
    assert status.fetched_at.timestamp() == 1_800_000_000
    assert status.last_error is None


async def test_the_bound_resolver_looks_up_the_same_cache(
    client: JwksClient, idp: MemoryIdp
) -> None:
    resolve = client.resolver(SOURCE)
    assert await resolve("k1") is not None
    assert await client.get_key(SOURCE, "k1") is not None
    assert len(idp.calls) == 2
