"""Identity ids at the length limit (200 characters) behave the same on both backends."""

from __future__ import annotations

import httpx

from tests.conftest import bearer

Client = httpx.AsyncClient
LIMITS = {"ratelimits": [{"name": "rps", "limit": 10, "period_s": 1}]}


async def test_identity_id_of_201_characters_is_invalid_identity_on_both_backends(
    client: Client, admin_key: str
) -> None:
    external_id = "i" * 201
    r = await client.put(f"/v1/identities/{external_id}", json=LIMITS, headers=bearer(admin_key))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "INVALID_IDENTITY"
    body = {"name": "k", "scopes": ["PIPES:READ:x"], "identity": external_id}
    r = await client.post("/v1/keys", json=body, headers=bearer(admin_key))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "INVALID_IDENTITY"


async def test_identity_id_of_200_characters_works_on_both_backends(
    client: Client, admin_key: str
) -> None:
    external_id = "i" * 200
    for _ in range(2):  # create, then update (each records a revocation for cached keys)
        r = await client.put(
            f"/v1/identities/{external_id}", json=LIMITS, headers=bearer(admin_key)
        )
        assert r.status_code == 200, r.text
    r = await client.get(f"/v1/identities/{external_id}", headers=bearer(admin_key))
    assert r.status_code == 200, r.text
    assert r.json()["external_id"] == external_id
    body = {"name": "k", "scopes": ["PIPES:READ:x"], "identity": external_id}
    r = await client.post("/v1/keys", json=body, headers=bearer(admin_key))
    assert r.status_code == 201, r.text
    assert r.json()["identity"] == external_id
