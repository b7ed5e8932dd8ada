"""The one cache primitive (authsvc/cache.py): fills never undo an invalidation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authsvc.cache import MISSING, Cache


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def make(clock: Clock | None = None, **kw: float) -> Cache[str, str | None]:
    return Cache(
        "test",
        ttl_s=kw.get("ttl_s", 10.0),
        negative_ttl_s=kw.get("negative_ttl_s", 1.0),
        max_entries=int(kw.get("max_entries", 100)),
        monotonic=clock or Clock(),
    )


def gated(value: str | None) -> tuple[asyncio.Event, Callable[[], object]]:
    gate = asyncio.Event()

    async def load() -> str | None:
        await gate.wait()
        return value

    return gate, load


async def test_load_overtaken_by_invalidation_answers_but_is_not_stored() -> None:
    cache = make()
    gate, load = gated("old")
    task = asyncio.create_task(cache.get("k", load))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    cache.invalidate("k")
    gate.set()
    assert await task == "old"
    assert cache.peek("k") is MISSING


@pytest.mark.parametrize("how", ["where", "clear", "tag"])
async def test_broad_invalidation_during_a_load_stales_every_flight(how: str) -> None:
    cache = make()
    gate, load = gated("old")
    task = asyncio.create_task(cache.get("k", load))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    if how == "where":
        cache.invalidate_where(lambda k, v: False)
    elif how == "clear":
        cache.clear()
    else:
        cache.invalidate_tag("unrelated")
    gate.set()
    await task
    assert cache.peek("k") is MISSING


@pytest.mark.parametrize("how", ["key", "where", "clear", "tag"])
async def test_a_get_after_an_invalidation_does_not_join_the_load_it_overtook(how: str) -> None:
    cache = make()
    gate, load_old = gated("old")
    first = asyncio.create_task(cache.get("k", load_old))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    if how == "key":
        cache.invalidate("k")
    elif how == "where":
        cache.invalidate_where(lambda k, v: True)
    elif how == "clear":
        cache.clear()
    else:
        cache.invalidate_tag("t")

    async def load_new() -> str:
        return "new"

    second = asyncio.create_task(cache.get("k", load_new))
    await asyncio.sleep(0)
    gate.set()
    assert await first == "old"  # started before the invalidation: answers what it read
    assert await second == "new"  # started after it: never the value read before
    assert cache.peek("k") == "new"


async def test_callers_that_joined_before_the_invalidation_share_the_load() -> None:
    cache = make()
    gate, load = gated("old")
    calls = 0

    async def counted() -> str | None:
        nonlocal calls
        calls += 1
        return await load()  # type: ignore[no-any-return]

    tasks = [asyncio.create_task(cache.get("k", counted)) for _ in range(3)]
    await asyncio.sleep(0)
    cache.invalidate("k")
    gate.set()
    assert await asyncio.gather(*tasks) == ["old"] * 3
    assert calls == 1
    assert cache.peek("k") is MISSING


async def test_put_since_refuses_after_any_invalidation() -> None:
    cache = make()
    generation = cache.generation
    cache.invalidate("other")
    assert cache.put("k", "v", since=generation) is False
    assert cache.peek("k") is MISSING
    assert cache.put("k", "v", since=cache.generation) is True
    assert cache.peek("k") == "v"


async def test_concurrent_misses_share_one_load() -> None:
    cache = make()
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return "v"

    assert await asyncio.gather(*(cache.get("k", load) for _ in range(50))) == ["v"] * 50
    assert calls == 1


async def test_entries_age_out_and_none_ages_out_sooner() -> None:
    clock = Clock()
    cache = make(clock, ttl_s=10.0, negative_ttl_s=1.0)
    cache.put("k", "v")
    cache.put("gone", None)
    clock.t = 2.0
    assert cache.peek("k") == "v"
    assert cache.peek("gone") is MISSING
    clock.t = 10.0
    assert cache.peek("k") is MISSING
    assert cache.last("k") == "v"


async def test_failed_reload_serves_the_aged_out_value_and_without_one_raises() -> None:
    clock = Clock()
    cache = make(clock)
    cache.put("k", "v")
    clock.t = 100.0

    async def down() -> str:
        raise ConnectionError("database down")

    assert await cache.get("k", down) == "v"
    with pytest.raises(ConnectionError):
        await cache.get("never-seen", down)


async def test_tags_drop_exactly_the_tagged_entries() -> None:
    cache = make()
    cache.put("a1", "x", tag="key_a")
    cache.put("a2", "y", tag="key_a")
    cache.put("b1", "z", tag="key_b")
    cache.put("a1", "x2", tag="key_a")  # replacing an entry keeps one index member
    cache.invalidate_tag("key_a")
    assert cache.peek("a1") is MISSING
    assert cache.peek("a2") is MISSING
    assert cache.peek("b1") == "z"
    cache.invalidate_tag("key_a")  # nothing left to drop
    assert len(cache) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcde"), st.sampled_from("xy")), max_size=60))
def test_cache_never_holds_more_than_max_entries_and_tags_stay_consistent(
    puts: list[tuple[str, str]],
) -> None:
    cache = make(max_entries=3)
    for key, tag in puts:
        cache.put(key, key, tag=tag)
        assert len(cache) <= 3
    for tag in "xy":
        cache.invalidate_tag(tag)
    assert len(cache) == 0
