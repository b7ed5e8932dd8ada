"""Revocation propagation across 3 instances sharing Postgres and Redis.

Each trial: a credential is made valid and warm (cached) on instances 2 and 3; then, while
instances 2 and 3 are polled back to back with ``/v1/verify``, it is revoked through
instance 1. The delay of one instance is the time from sending the revoke request to the
first answer of that instance that shows it revoked: it includes the revoke call itself
(Postgres commit + publish) and up to one poll round trip (~1-3 ms here). Kinds: an API key
(``DELETE /v1/keys/{id}``) and, when JWT verification is available, a JWT
(``POST /v1/tokens/revoke {jti}``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.common import Results, Row, percentile
from bench.servers import SCOPE, Cred, Fixture, Server, Stack, bearer, bootstrap, serve

TRIALS = 25
TIMEOUT_S = 10.0
TARGET = "3 x uvicorn 1w"


async def _verdict(client: httpx.AsyncClient, base: str, verifier: str, token: str) -> str:
    r = await client.post(
        f"{base}/v1/verify", headers=bearer(verifier), json={"token": token, "scope": SCOPE}
    )
    return str(r.json().get("code"))


async def _until_revoked(
    client: httpx.AsyncClient, base: str, verifier: str, token: str, since: float
) -> tuple[float, int]:
    """(ms from ``since`` to the first non-VALID answer, VALID answers before it)."""
    deadline = time.perf_counter() + TIMEOUT_S
    polls = 0
    while time.perf_counter() < deadline:
        if await _verdict(client, base, verifier, token) != "VALID":
            return (time.perf_counter() - since) * 1e3, polls
        polls += 1
    return float("inf"), polls


@dataclass
class Trials:
    delays_ms: list[float] = field(default_factory=list)
    """From sending the revoke request to instance 1 to the first revoked answer of 2 or 3."""
    acks_ms: list[float] = field(default_factory=list)
    """How long the revoke call itself took (write to Postgres, publish, respond)."""
    polls: list[int] = field(default_factory=list)
    after_ack_ms: list[float] = field(default_factory=list)
    """Delay minus the revoke call: how long after the caller got its answer (< 0: before)."""


async def _trials(
    servers: list[Server],
    fx: Fixture,
    make: Callable[[httpx.AsyncClient, int], Awaitable[tuple[str, Callable[[], Awaitable[None]]]]],
) -> Trials:
    others = servers[1:]
    out = Trials()
    async with httpx.AsyncClient(timeout=10) as client, httpx.AsyncClient(timeout=10) as admin:
        for i in range(TRIALS):
            token, revoke = await make(admin, i)
            for s in others:
                code = await _verdict(client, s.base, fx.verifier.key, token)
                if code != "VALID":
                    raise RuntimeError(f"revocation trial: {code} before revoking on {s.base}")
            sent = time.perf_counter()
            pollers = [
                asyncio.create_task(_until_revoked(client, s.base, fx.verifier.key, token, sent))
                for s in others
            ]
            await revoke()
            ack = (time.perf_counter() - sent) * 1e3
            out.acks_ms.append(ack)
            for delay, polls in await asyncio.gather(*pollers):
                out.delays_ms.append(delay)
                out.after_ack_ms.append(delay - ack)
                out.polls.append(polls)
    return out


def _jti(token: str) -> str:
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return str(json.loads(base64.urlsafe_b64decode(payload))["jti"])


async def _measure(servers: list[Server], fx: Fixture) -> dict[str, Trials]:
    one = servers[0].base
    admin = fx.admin.key

    async def new_key(
        client: httpx.AsyncClient, i: int
    ) -> tuple[str, Callable[[], Awaitable[None]]]:
        r = await client.post(
            f"{one}/v1/keys",
            headers=bearer(admin),
            json={"name": f"revoke-{i}", "scopes": [SCOPE]},
        )
        r.raise_for_status()
        cred = Cred(r.json()["id"], r.json()["key"])

        async def revoke() -> None:
            (
                await client.delete(f"{one}/v1/keys/{cred.id}", headers=bearer(admin))
            ).raise_for_status()

        return cred.key, revoke

    async def new_jwt(
        client: httpx.AsyncClient, i: int
    ) -> tuple[str, Callable[[], Awaitable[None]]]:
        r = await client.post(
            f"{one}/v1/tokens",
            headers=bearer(fx.minter.key),
            json={"scopes": [SCOPE], "sub": f"revoke-{i}"},
        )
        r.raise_for_status()
        token = str(r.json()["token"])

        async def revoke() -> None:
            r = await client.post(
                f"{one}/v1/tokens/revoke", headers=bearer(admin), json={"jti": _jti(token)}
            )
            r.raise_for_status()

        return token, revoke

    out = {"API key (DELETE /v1/keys/{id})": await _trials(servers, fx, new_key)}
    if fx.jwt is not None:
        try:
            out["JWT (POST /v1/tokens/revoke jti)"] = await _trials(servers, fx, new_jwt)
        except (RuntimeError, httpx.HTTPStatusError) as exc:
            out["JWT (POST /v1/tokens/revoke jti)"] = Trials()
            print(f"revocation: JWT trials skipped: {exc}")
    return out


def _hotpath(servers: list[Server], fx: Fixture) -> dict[str, Any] | None:
    """bench/hotpath.py's own measurement (DELETE response -> first refusal), when present."""
    try:
        from bench.hotpath import propagation
    except ImportError:
        return None
    urls = [s.base for s in servers]
    coro = propagation(urls, fx.admin.key, fx.verifier.key, TRIALS)
    try:
        return asyncio.run(asyncio.wait_for(coro, 60))
    except (TimeoutError, AssertionError, httpx.HTTPError) as exc:
        print(f"revocation: bench.hotpath.propagation failed: {exc!r}")
        return None


def run(st: Stack, results: Results) -> None:
    with ExitStack() as stack:
        servers = [stack.enter_context(serve(st.env, "uvicorn", 1)) for _ in range(3)]
        fx = bootstrap(st.env, servers[0].base)
        hot = _hotpath(servers, fx)
        data = asyncio.run(_measure(servers, fx))
    if hot is not None:
        # bench/hotpath.py's result: {"after_call": {p50_ms, p99_ms, max_ms}, "revoke_call":
        # {...}, ...} (older versions had p50_ms/p99_ms at the top level)
        after = hot.get("after_call", hot)
        call = hot.get("revoke_call")
        call_note = (
            f"; the DELETE itself: p50 {call['p50_ms']} ms, p99 {call['p99_ms']} ms" if call else ""
        )
        results.add(
            Row(
                "revocation",
                "revocation delay: API key, after the DELETE response (bench/hotpath.py)",
                TARGET,
                p50_ms=float(after["p50_ms"]),
                p99_ms=float(after["p99_ms"]),
                unit="ms",
                note=f"{hot['rounds']} revocations x instances 2 and 3; refused on the first "
                f"request after the DELETE: {hot['refused_on_first_request']} (so the delay is "
                f"one verify round trip, an upper bound){call_note}",
                extra=hot,
            )
        )
    for kind, t in data.items():
        name = f"revocation delay: {kind}"
        if not t.delays_ms:
            results.add(Row("revocation", name, TARGET, note="n/a (JWT verification unavailable)"))
            continue
        lost = sum(d == float("inf") for d in t.delays_ms)
        seen = [d for d in t.delays_ms if d != float("inf")]
        results.add(
            Row(
                "revocation",
                name,
                TARGET,
                p50_ms=percentile(seen, 50),
                p99_ms=percentile(seen, 99),
                unit="ms",
                note=f"from the revoke request to instances 2/3 answering REVOKED; "
                f"{len(t.delays_ms)} observations; the revoke call itself: "
                f"p50 {percentile(t.acks_ms, 50):.1f} ms; after the revoke call returned: "
                f"p50 {percentile(t.after_ack_ms, 50):.1f} ms, "
                f"p99 {percentile(t.after_ack_ms, 99):.1f} ms"
                + (f"; {lost} not revoked within {TIMEOUT_S:.0f} s" if lost else ""),
                extra={
                    "max_ms": max(seen),
                    "samples_ms": [round(d, 2) for d in seen],
                    "revoke_call_ms": [round(d, 2) for d in t.acks_ms],
                    "after_revoke_call_ms": [round(d, 2) for d in t.after_ack_ms],
                    "valid_polls_before_revoked": t.polls,
                },
            )
        )
