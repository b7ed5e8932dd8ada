"""Tenant isolation as a property: whatever tenants and keys exist, a credential of tenant A
never sees, changes or learns about an object of tenant B (DESIGN §1: nothing crosses tenants)."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import bearer, new_key, new_tenant

ops = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(["create", "patch", "revoke", "reroll"])),
    min_size=1,
    max_size=8,
)
probes = st.sampled_from(["get", "patch", "delete", "reroll", "list"])


async def _probe(
    client: httpx.AsyncClient, probe: str, kid: str, h: dict[str, str]
) -> httpx.Response:
    path = f"/v1/keys/{kid}"
    if probe == "get":
        return await client.get(path, headers=h)
    if probe == "patch":
        return await client.patch(path, json={"name": "x"}, headers=h)
    if probe == "delete":
        return await client.delete(path, headers=h)
    return await client.post(f"{path}/reroll", json={}, headers=h)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=ops, probe=probes)
async def test_cross_tenant_access_is_always_404_and_lists_never_leak(
    client: httpx.AsyncClient, operator_key: str, history: list[tuple[int, str]], probe: str
) -> None:
    tenants = [await new_tenant(client, operator_key, f"T{i}") for i in range(3)]
    keys: dict[int, list[dict[str, Any]]] = {0: [], 1: [], 2: []}
    for owner, action in history:
        admin = tenants[owner]["admin_key"]["key"]
        mine = keys[owner]
        if action == "create" or not mine:
            mine.append(await new_key(client, admin, ["KEYS:READ", "PIPES:READ:orders"]))
        elif action == "patch":
            await client.patch(
                f"/v1/keys/{mine[-1]['id']}", json={"name": "p"}, headers=bearer(admin)
            )
        elif action == "revoke":
            await client.delete(f"/v1/keys/{mine[-1]['id']}", headers=bearer(admin))
        else:
            await client.post(
                f"/v1/keys/{mine[-1]['id']}/reroll", json={"grace_s": 5}, headers=bearer(admin)
            )

    for attacker in range(3):
        h = bearer(tenants[attacker]["admin_key"]["key"])
        own_ids = {k["id"] for k in keys[attacker]} | {tenants[attacker]["admin_key"]["id"]}
        if probe == "list":
            r = await client.get("/v1/keys", params={"limit": 200}, headers=h)
            assert {k["id"] for k in r.json()["data"]} == own_ids
            continue
        for victim in range(3):
            if victim == attacker:
                continue
            for k in keys[victim] + [{"id": tenants[victim]["admin_key"]["id"]}]:
                kid = k["id"]
                r = await _probe(client, probe, kid, h)
                assert r.status_code == 404, (probe, r.text)
                assert kid not in r.text
    # The victims' keys are untouched by the probes.
    for owner in range(3):
        for k in keys[owner]:
            r = await client.get(
                f"/v1/keys/{k['id']}", headers=bearer(tenants[owner]["admin_key"]["key"])
            )
            assert r.json()["name"] in ("test key", "p")
