"""Hot-path benchmark: one run, one authsvc server (uvicorn, 1 worker), wrk as load generator.

Prints requests/s and p50/p99 at 32 concurrent connections for
  /healthz (the no-op floor), POST /v1/verify with an API key (no limit; one Redis limit),
  with a JWT (repeat: the same token; first-seen: every request a new token),
  GET /v1/authz (API key),
and the revocation propagation delay across 3 instances (p50/p99): a key is revoked on
instance 1, then instances 2 and 3 are asked until they refuse it. Reported: the revoking
call's own latency (commit, audit row, broadcast and every instance's acknowledgement) and
the time from its response to the refusal observed on instances 2 and 3 (one verify round
trip when the revocation is already in effect there).

Production mode: a fresh Postgres database and a private redis-server, both dropped at the end.
Needs ``wrk`` (apt-get install wrk). Usage: ``.venv/bin/python bench/hotpath.py [--seconds 5]``
(``--json`` for a machine-readable line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster import fresh_database, instance_env, instances, private_redis  # noqa: E402
from tests.server import cli  # noqa: E402

LUA = ROOT / "bench" / "hotpath.lua"
CONNECTIONS, THREADS = 32, 2


def wrk(
    url: str,
    seconds: float,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str | None = None,
    pool: Path | None = None,
) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(
        {
            "HP_METHOD": method,
            "HP_HEADERS": "\n".join(f"{k}: {v}" for k, v in (headers or {}).items()),
            "HP_THREADS": str(THREADS),
        }
    )
    if body is not None:
        env["HP_BODY"] = body
    if pool is not None:
        env["HP_POOL"] = str(pool)
    out = subprocess.run(
        [
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(LUA),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("HP_JSON "))
    raw = json.loads(line.removeprefix("HP_JSON "))
    return {
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6)),
        "p50_ms": round(raw["p50"] / 1000, 2),
        "p99_ms": round(raw["p99"] / 1000, 2),
        "requests": raw["requests"],
        "non2xx": raw["non2xx"],
        "errors": raw["socket_errors"],
    }


def post(base: str, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{base}{path}", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code in (200, 201), r.text
    out: dict[str, Any] = r.json()
    return out


async def mint_many(base: str, key: str, n: int) -> list[str]:
    sem = asyncio.Semaphore(32)
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(i: int) -> str:
            async with sem:
                r = await client.post(
                    f"{base}/v1/tokens",
                    json={"scopes": ["PIPES:READ:orders"], "sub": f"user-{i}", "ttl_s": 3600},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert r.status_code == 201, r.text
                return str(r.json()["token"])

        return await asyncio.gather(*(one(i) for i in range(n)))


def _pcts(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "p50_ms": round(statistics.median(values) * 1000, 2),
        "p99_ms": round(values[min(len(values) - 1, int(len(values) * 0.99))] * 1000, 2),
        "max_ms": round(values[-1] * 1000, 2),
    }


async def propagation(urls: list[str], admin: str, gateway: str, rounds: int) -> dict[str, Any]:
    calls: list[float] = []  # the revoking DELETE: commit, audit, broadcast, acknowledgements
    after: list[float] = []  # from its response to the refusal seen on instances 2 and 3
    first_try = 0
    auth = {"Authorization": f"Bearer {gateway}"}
    async with httpx.AsyncClient(timeout=10) as client:

        async def code(url: str, token: str) -> str:
            r = await client.post(f"{url}/v1/verify", json={"token": token}, headers=auth)
            return str(r.json()["code"])

        async def until_revoked(url: str, token: str, since: float) -> tuple[float, int]:
            tries = 0
            while True:
                tries += 1
                if await code(url, token) == "REVOKED":
                    return time.perf_counter() - since, tries

        for _ in range(rounds):
            r = await client.post(
                f"{urls[0]}/v1/keys",
                json={"name": "p", "scopes": ["PIPES:READ:x"]},
                headers={"Authorization": f"Bearer {admin}"},
            )
            key = r.json()
            for url in urls:
                assert await code(url, key["key"]) == "VALID"
            started = time.perf_counter()
            await client.delete(
                f"{urls[0]}/v1/keys/{key['id']}", headers={"Authorization": f"Bearer {admin}"}
            )
            returned = time.perf_counter()
            calls.append(returned - started)
            for delay, tries in await asyncio.gather(
                *(until_revoked(u, key["key"], returned) for u in urls[1:])
            ):
                after.append(delay)
                first_try += tries == 1
    return {
        "rounds": rounds,
        "revoke_call": _pcts(calls),
        "after_call": _pcts(after),
        "refused_on_first_request": f"{first_try}/{len(after)}",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=100, help="revocations measured")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    secs = args.seconds
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        with fresh_database() as db, private_redis(tmp) as redis:
            env = instance_env(db, redis.url)
            operator = json.loads(cli("init", "--json", cwd=tmp, env=env).stdout)["operator_key"]
            with instances(3, env, tmp) as urls:
                base = urls[0]
                tenant = post(base, "/v1/tenants", operator, {"name": "Bench"})
                admin = tenant["admin_key"]["key"]

                def key(scopes: list[Any], **extra: Any) -> str:
                    body = {"name": "bench", "scopes": scopes, **extra}
                    return str(post(base, "/v1/keys", admin, body)["key"])

                gateway = key(["TOKENS:VERIFY"])
                reader = key([{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 42}}])
                limited = key(
                    ["PIPES:READ:orders"],
                    ratelimits=[{"name": "huge", "limit": 1_000_000_000, "period_s": 1}],
                )
                minter = key(["PIPES:READ:orders", "TOKENS:CREATE"])
                jwt = post(base, "/v1/tokens", minter, {"scopes": ["PIPES:READ:orders"]})["token"]
                expected = int(secs * 4000)  # generous: first-seen JWTs are far slower
                tokens = asyncio.run(mint_many(base, minter, expected))
                pool = tmp / "tokens.txt"
                pool.write_text("\n".join(tokens) + "\n")

                h = {"Authorization": f"Bearer {gateway}", "Content-Type": "application/json"}

                def verify_body(token: str) -> str:
                    return json.dumps({"token": token, "scope": "PIPES:READ:orders"})

                wrk(f"{base}/healthz", 1)  # warm-up
                results["healthz"] = wrk(f"{base}/healthz", secs)
                wrk(f"{base}/v1/verify", 1, method="POST", headers=h, body=verify_body(reader))
                results["verify_api_key"] = wrk(
                    f"{base}/v1/verify", secs, method="POST", headers=h, body=verify_body(reader)
                )
                results["verify_api_key_redis_limit"] = wrk(
                    f"{base}/v1/verify", secs, method="POST", headers=h, body=verify_body(limited)
                )
                results["verify_jwt_repeat"] = wrk(
                    f"{base}/v1/verify", secs, method="POST", headers=h, body=verify_body(jwt)
                )
                results["verify_jwt_first_seen"] = wrk(
                    f"{base}/v1/verify",
                    secs,
                    method="POST",
                    headers=h,
                    body=verify_body("{{t}}"),
                    pool=pool,
                )
                results["verify_jwt_first_seen"]["pool"] = len(tokens)
                authz_h = {
                    "X-Authsvc-Key": gateway,
                    "X-Original-URI": "/v0/pipes/orders.json",
                    "Authorization": f"Bearer {reader}",
                }
                results["authz_api_key"] = wrk(f"{base}/v1/authz", secs, headers=authz_h)
                results["revocation_propagation"] = asyncio.run(
                    propagation(urls, admin, gateway, args.rounds)
                )
    floor = results["healthz"]["rps"]
    results["verify_vs_noop"] = round(results["verify_api_key"]["rps"] / floor, 2)
    if args.json:
        print(json.dumps(results))
        return 0
    print(
        f"authsvc hot path, 1 uvicorn worker, wrk -t{THREADS} -c{CONNECTIONS} -d{secs}s, "
        f"{os.cpu_count()} CPUs, Postgres + Redis"
    )
    print(f"{'endpoint':34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, row in results.items():
        if isinstance(row, dict) and "rps" in row:
            print(
                f"{name:34} {row['rps']:>8} {row['p50_ms']:>8} {row['p99_ms']:>8} "
                f"{row['non2xx']:>8}"
            )
    prop = results["revocation_propagation"]
    call, after = prop["revoke_call"], prop["after_call"]
    print(
        f"revocation across 3 instances ({prop['rounds']} revocations): the revoking call "
        f"p50 {call['p50_ms']} ms / p99 {call['p99_ms']} ms; refusal seen on instances 2 and 3 "
        f"after it returns p50 {after['p50_ms']} ms / p99 {after['p99_ms']} ms (one verify "
        f"round trip); refused on the first request {prop['refused_on_first_request']}"
    )
    print(
        f"warm verify (API key) / no-op throughput: {results['verify_vs_noop']:.0%} (target >= 50%)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
