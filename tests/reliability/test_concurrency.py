"""Idempotent writes stay idempotent under concurrency (in-process, SQLite and Postgres)."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import bearer


async def test_concurrent_first_puts_of_an_identity_all_succeed(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    body = {"ratelimits": [{"name": "rps", "limit": 10, "period_s": 1}]}
    statuses: list[int] = []
    for round_ in range(5):
        rs = await asyncio.gather(
            *(
                client.put(f"/v1/identities/org-{round_}", json=body, headers=bearer(admin_key))
                for _ in range(8)
            )
        )
        statuses += [r.status_code for r in rs]
    assert set(statuses) == {200}, sorted(set(statuses))
