"""Three real instances (uvicorn processes) sharing a fresh Postgres database and a Redis.

* exact rate limiting across instances under concurrent load (no over-admission, not one);
* a revocation made on instance 1 is refused by instances 2 and 3 on their very next request;
* with Redis gone (pub/sub cut), the other instances still refuse within the poll interval,
  and once Redis is back the broadcast path works again without a restart;
* a trusted issuer disabled on one instance, then deleted on another, refuses its exchanged
  tokens on all three at the next request (DESIGN §9);
* revoking a parent key refuses its child key and the child's JWTs everywhere at the next
  request; on instances cut off from Redis within the poll interval; on an instance restarted
  meanwhile at once (DESIGN §8).

The measured propagation delays are printed (``-s``) and appended to
``$AUTHSVC_MEASUREMENTS`` when set.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster import (
    REDIS_SERVER,
    Instance,
    fresh_database,
    instance_env,
    instances,
    private_redis,
    started,
)
from tests.idp import IdpServer, Keys, Reply, serve, sign
from tests.server import cli, require_binary

POLL_S = 0.5
AUD = "urn:example:data"
PAGE = "https://app.example"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
]


@pytest.fixture(autouse=True)
def _binary() -> None:
    require_binary(REDIS_SERVER, "redis-server", "apt-get install redis-server")


@dataclass
class Cluster:
    urls: list[str]
    admin: str
    gateway: str
    redis: Any
    database_url: str
    tmp: Path
    slug: str


def record(name: str, values: list[float]) -> None:
    line = {
        "name": name,
        "n": len(values),
        "p50_ms": round(statistics.median(values) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
    }
    print(json.dumps(line))
    target = os.environ.get("AUTHSVC_MEASUREMENTS")
    if target:
        with open(target, "a") as fh:
            fh.write(json.dumps(line) + "\n")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp: Path = tmp_path_factory.mktemp("cluster")
    with fresh_database() as db, private_redis(tmp) as redis:
        env = instance_env(
            db, redis.url, revocation_poll_s=str(POLL_S), allow_private_issuers="true"
        )
        operator = json.loads(cli("init", "--json", cwd=tmp, env=env).stdout)["operator_key"]
        with instances(3, env, tmp) as urls:
            r = httpx.post(
                f"{urls[0]}/v1/tenants",
                json={"name": "Cluster"},
                headers={"Authorization": f"Bearer {operator}"},
            )
            assert r.status_code == 201, r.text
            admin = r.json()["admin_key"]["key"]
            gateway = create_key(urls[0], admin, ["TOKENS:VERIFY"])["key"]
            slug = r.json()["tenant"]["slug"]
            yield Cluster(urls, admin, gateway, redis, db, tmp, slug)


def create_key(base: str, admin: str, scopes: list[Any], **extra: Any) -> dict[str, Any]:
    r = httpx.post(
        f"{base}/v1/keys",
        json={"name": "k", "scopes": scopes, **extra},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def verify(client: httpx.AsyncClient, base: str, gateway: str, token: str) -> str:
    r = await client.post(
        f"{base}/v1/verify",
        json={"token": token},
        headers={"Authorization": f"Bearer {gateway}"},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["code"])


def test_limit_is_exact_across_three_instances_under_concurrency(cluster: Cluster) -> None:
    limit = 25
    # T = 600 s / 25 = 24 s: nothing refills during the burst, so GCRA admits exactly `limit`.
    key = create_key(
        cluster.urls[0],
        cluster.admin,
        ["PIPES:READ:x"],
        ratelimits=[{"name": "burst", "limit": limit, "period_s": 600}],
    )["key"]

    async def hammer() -> list[str]:
        limits = httpx.Limits(max_connections=48)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            jobs = [verify(client, cluster.urls[i % 3], cluster.gateway, key) for i in range(240)]
            return await asyncio.gather(*jobs)

    codes = asyncio.run(hammer())
    assert codes.count("VALID") == limit
    assert codes.count("RATE_LIMITED") == 240 - limit


def test_revocation_on_one_instance_is_refused_by_the_others_on_the_next_request(
    cluster: Cluster,
) -> None:
    delays: list[float] = []

    async def one_round(client: httpx.AsyncClient) -> None:
        key = create_key(cluster.urls[0], cluster.admin, ["PIPES:READ:x"])
        for url in cluster.urls:  # warm: every instance has the record cached
            assert await verify(client, url, cluster.gateway, key["key"]) == "VALID"
        r = await client.delete(
            f"{cluster.urls[0]}/v1/keys/{key['id']}",
            headers={"Authorization": f"Bearer {cluster.admin}"},
        )
        assert r.status_code == 200
        revoked_at = time.perf_counter()
        codes = await asyncio.gather(
            *(verify(client, url, cluster.gateway, key["key"]) for url in cluster.urls[1:])
        )
        delays.append(time.perf_counter() - revoked_at)
        assert codes == ["REVOKED", "REVOKED"]

    async def rounds() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(15):
                await one_round(client)

    asyncio.run(rounds())
    record("revocation_next_request_broadcast", delays)
    metrics = httpx.get(f"{cluster.urls[0]}/metrics").text
    assert 'what="ack_timeout"' not in metrics  # every instance acknowledged in time


def test_jwt_revocation_on_one_instance_is_refused_by_the_others_on_the_next_request(
    cluster: Cluster,
) -> None:
    minter = create_key(cluster.urls[0], cluster.admin, ["PIPES:READ:x", "TOKENS:CREATE"])
    delays: list[float] = []

    async def rounds() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(5):
                r = await client.post(
                    f"{cluster.urls[0]}/v1/tokens",
                    json={"scopes": ["PIPES:READ:x"], "sub": "user-1"},
                    headers={"Authorization": f"Bearer {minter['key']}"},
                )
                assert r.status_code == 201, r.text
                token = r.json()
                for url in cluster.urls:  # every instance has the verified JWT cached
                    assert await verify(client, url, cluster.gateway, token["token"]) == "VALID"
                r = await client.post(
                    f"{cluster.urls[0]}/v1/tokens/revoke",
                    json={"jti": token["jti"]},
                    headers={"Authorization": f"Bearer {cluster.admin}"},
                )
                assert r.status_code == 200, r.text
                since = time.perf_counter()
                codes = await asyncio.gather(
                    *(verify(client, u, cluster.gateway, token["token"]) for u in cluster.urls)
                )
                delays.append(time.perf_counter() - since)
                assert codes == ["REVOKED"] * 3

    asyncio.run(rounds())
    record("jwt_revocation_next_request_broadcast", delays)


def test_revocation_without_pubsub_is_applied_within_the_poll_interval(cluster: Cluster) -> None:
    delays: list[float] = []

    async def wait_revoked(client: httpx.AsyncClient, url: str, token: str, since: float) -> float:
        while True:
            if await verify(client, url, cluster.gateway, token) == "REVOKED":
                return time.perf_counter() - since
            assert time.perf_counter() - since < POLL_S + 2.0, "revocation not applied in time"
            await asyncio.sleep(0.01)

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            keys = [create_key(cluster.urls[0], cluster.admin, ["PIPES:READ:x"]) for _ in range(3)]
            for key in keys:
                for url in cluster.urls:
                    assert await verify(client, url, cluster.gateway, key["key"]) == "VALID"
            cluster.redis.stop()  # pub/sub is gone; the limiter fails open meanwhile
            try:
                for key in keys:
                    r = await client.delete(
                        f"{cluster.urls[0]}/v1/keys/{key['id']}",
                        headers={"Authorization": f"Bearer {cluster.admin}"},
                    )
                    assert r.status_code == 200  # committed even though the broadcast failed
                    since = time.perf_counter()
                    # the instance that revoked refuses at once
                    assert await verify(client, cluster.urls[0], cluster.gateway, key["key"]) == (
                        "REVOKED"
                    )
                    delays.extend(
                        await asyncio.gather(
                            *(wait_revoked(client, u, key["key"], since) for u in cluster.urls[1:])
                        )
                    )
            finally:
                cluster.redis.start()
            # Redis is back (same port): the subscribers reconnect by themselves and the
            # broadcast path propagates on the very next request again.
            key = create_key(cluster.urls[0], cluster.admin, ["PIPES:READ:x"])
            for url in cluster.urls:
                assert await verify(client, url, cluster.gateway, key["key"]) == "VALID"
            await asyncio.sleep(3.0)  # subscriber backoff is capped at 2 s
            r = await client.delete(
                f"{cluster.urls[0]}/v1/keys/{key['id']}",
                headers={"Authorization": f"Bearer {cluster.admin}"},
            )
            codes = await asyncio.gather(
                *(verify(client, u, cluster.gateway, key["key"]) for u in cluster.urls[1:])
            )
            assert codes == ["REVOKED", "REVOKED"]

    asyncio.run(scenario())
    record("revocation_poll_only", delays)
    assert max(delays) < POLL_S + 1.0


# --- trusted issuers (DESIGN §9) -----------------------------------------------------------


def idp_token(idp: IdpServer, keys: Keys, sub: str) -> str:
    now = int(time.time())
    claims = {"iss": idp.url(), "sub": sub, "aud": AUD, "iat": now, "exp": now + 600, "org_id": 7}
    return sign({"alg": "RS256", "kid": "rsa-1"}, claims, keys.rsa, "RS256")


def exchange(base: str, slug: str, subject: str) -> httpx.Response:
    return httpx.post(
        f"{base}/t/{slug}/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": subject,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        },
        headers={"Origin": PAGE},
        timeout=10,
    )


def test_disabling_or_deleting_a_trusted_issuer_on_one_instance_refuses_its_tokens_on_all(
    cluster: Cluster,
) -> None:
    keys = Keys()
    admin = {"Authorization": f"Bearer {cluster.admin}"}
    with serve() as idp:
        idp.routes["/.well-known/openid-configuration"] = Reply.json(
            {"issuer": idp.url(), "jwks_uri": idp.url("/jwks")}
        )
        idp.routes["/jwks"] = Reply.json(keys.jwks(), headers={"Cache-Control": "max-age=600"})
        r = httpx.post(
            f"{cluster.urls[0]}/v1/trusted-issuers",
            json={
                "issuer": idp.url(),
                "audiences": [AUD],
                "grants": [
                    {"scope": "PIPES:READ:orders", "fixed_params": {"org_id": {"claim": "org_id"}}}
                ],
                "allowed_origins": [PAGE],
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
        issuer = r.json()
        r = exchange(cluster.urls[0], cluster.slug, idp_token(idp, keys, "alice"))
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]

        async def codes() -> list[str]:
            async with httpx.AsyncClient(timeout=10) as client:
                return [await verify(client, u, cluster.admin, token) for u in cluster.urls]

        assert asyncio.run(codes()) == ["VALID"] * 3  # every instance has the issuer cached
        path = f"/v1/trusted-issuers/{issuer['id']}"
        r = httpx.patch(f"{cluster.urls[1]}{path}", json={"enabled": False}, headers=admin)
        assert r.status_code == 200, r.text
        assert asyncio.run(codes()) == ["DISABLED"] * 3
        r = exchange(cluster.urls[0], cluster.slug, idp_token(idp, keys, "bob"))
        assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
        assert httpx.delete(f"{cluster.urls[2]}{path}", headers=admin).status_code == 204
        assert asyncio.run(codes()) == ["NOT_FOUND"] * 3


# --- key hierarchy (DESIGN §8) -------------------------------------------------------------


def derived_pair(cluster: Cluster) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A parent key (not ADMIN), a child key it created (so derived from it), and a JWT the
    child minted."""
    parent = create_key(
        cluster.urls[0], cluster.admin, ["KEYS:WRITE", "TOKENS:CREATE", "PIPES:READ:x"]
    )
    child = create_key(cluster.urls[1], parent["key"], ["TOKENS:CREATE", "PIPES:READ:x"])
    assert child["parent_id"] == parent["id"]
    r = httpx.post(
        f"{cluster.urls[2]}/v1/tokens",
        json={"scopes": ["PIPES:READ:x"], "sub": "user-1"},
        headers={"Authorization": f"Bearer {child['key']}"},
    )
    assert r.status_code == 201, r.text
    return parent, child, str(r.json()["token"])


def test_revoking_a_parent_key_refuses_its_child_and_the_childs_jwt_on_every_instance(
    cluster: Cluster,
) -> None:
    parent, child, token = derived_pair(cluster)

    async def codes(urls: list[str]) -> list[str]:
        async with httpx.AsyncClient(timeout=10) as client:
            return [
                await verify(client, u, cluster.gateway, credential)
                for u in urls
                for credential in (child["key"], token)
            ]

    assert asyncio.run(codes(cluster.urls)) == ["VALID"] * 6  # warm everywhere
    r = httpx.delete(
        f"{cluster.urls[0]}/v1/keys/{parent['id']}",
        headers={"Authorization": f"Bearer {cluster.admin}"},
    )
    assert r.status_code == 200, r.text
    assert asyncio.run(codes(cluster.urls[1:])) == ["REVOKED"] * 4
    assert asyncio.run(codes(cluster.urls[:1])) == ["REVOKED"] * 2


def test_subtree_revocation_reaches_instances_cut_off_from_redis_by_polling_and_restart(
    cluster: Cluster,
) -> None:
    """Instances 2 and 3 lose their Redis (a partition: instance 1 keeps its own): no
    broadcast reaches them and their limiter fails open. The revocation of a parent key made
    on instance 1 must reach them through the poller within the interval, and an instance
    restarted meanwhile must refuse at once (start-up reads the revocations, and the key rows
    carry ``revoked_at``)."""
    with private_redis(cluster.tmp) as cut_off:
        env = instance_env(cluster.database_url, cut_off.url, revocation_poll_s=str(POLL_S))
        with started([env, env], cluster.tmp, prefix="partitioned") as others:
            urls = [o.url for o in others]
            parent, child, token = derived_pair(cluster)

            async def code(client: httpx.AsyncClient, url: str, credential: str) -> str:
                return await verify(client, url, cluster.gateway, credential)

            async def warm_then_revoke() -> list[float]:
                async with httpx.AsyncClient(timeout=10) as client:
                    for url in urls:
                        for credential in (child["key"], token):
                            assert await code(client, url, credential) == "VALID"
                    cut_off.stop()
                    r = await client.delete(
                        f"{cluster.urls[0]}/v1/keys/{parent['id']}",
                        headers={"Authorization": f"Bearer {cluster.admin}"},
                    )
                    assert r.status_code == 200, r.text
                    since = time.perf_counter()

                    async def refused(url: str, credential: str) -> float:
                        while await code(client, url, credential) != "REVOKED":
                            assert time.perf_counter() - since < POLL_S + 2.0, "not refused"
                            await asyncio.sleep(0.01)
                        return time.perf_counter() - since

                    return list(
                        await asyncio.gather(
                            *(refused(u, c) for u in urls for c in (child["key"], token))
                        )
                    )

            delays = asyncio.run(warm_then_revoke())
            record("subtree_revocation_poll_only", delays)
            assert max(delays) < POLL_S + 1.0

            others[0].stop()  # a restart, Redis still unreachable
            restarted = Instance(env, cluster.tmp, "partitioned-restarted")
            try:
                restarted.wait_healthy(time.monotonic() + 60)

                async def after_restart() -> list[str]:
                    async with httpx.AsyncClient(timeout=10) as client:
                        return [await code(client, restarted.url, c) for c in (child["key"], token)]

                assert asyncio.run(after_restart()) == ["REVOKED", "REVOKED"]
            finally:
                restarted.stop()
