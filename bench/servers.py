"""The authsvc side: a production-shaped stack (fresh Postgres database + private Redis),
authsvc processes under uvicorn or granian, and the tenant, keys and tokens the cells use.

Servers run ``bench.floor_app:app_from_env`` (authsvc's own factory plus ``GET /bench/noop``)
with the flags ``authsvc serve`` passes to uvicorn (factory, ``--no-access-log``, httptools
with TCP_NODELAY, the asyncio loop), so the floor and the endpoints are measured in the very
same processes.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bench.common import BIN, ROOT, PgDatabase, Process, RedisServer, free_port

APP = "bench.floor_app:app_from_env"
SCOPE = "PIPES:READ:orders"
BASE_URL = "http://authsvc.bench"
"""Issuer base: the same for every instance, whatever port it listens on."""


@dataclass
class Stack:
    redis: RedisServer
    db: PgDatabase
    env: dict[str, str]


def server_env(database_url: str, redis_url: str, secret: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update(
        AUTHSVC_DATABASE_URL=database_url,
        AUTHSVC_REDIS_URL=redis_url,
        AUTHSVC_SECRET_KEY=secret,
        AUTHSVC_BASE_URL=BASE_URL,
        AUTHSVC_LOG_LEVEL="WARNING",
        # the exchange cell: an issuer on a loopback URL (its keys are inline, nothing is
        # fetched) and one IdP user exchanging far above the default per-subject budget
        AUTHSVC_ALLOW_PRIVATE_ISSUERS="true",
        AUTHSVC_EXCHANGE_SUBJECT_PER_MINUTE="1000000000",
        AUTHSVC_EXCHANGE_ADDRESS_PER_MINUTE="1000000000",
        PYTHONPATH=str(ROOT),
    )
    return env


def cli(env: Mapping[str, str], *args: str) -> str:
    proc = subprocess.run(
        [str(BIN / "authsvc"), *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"authsvc {' '.join(args)} failed: {proc.stdout} {proc.stderr}")
    return proc.stdout


@contextmanager
def stack(redis: RedisServer, prefix: str = "authsvc_bench") -> Iterator[Stack]:
    """A fresh, migrated Postgres database next to ``redis``; dropped afterwards."""
    with PgDatabase(prefix) as db:
        env = server_env(db.url, redis.url, secrets.token_urlsafe(48))
        cli(env, "db", "upgrade")
        yield Stack(redis, db, env)


# --- servers ---------------------------------------------------------------------------------


@dataclass
class Server:
    kind: str
    workers: int
    base: str
    process: Process

    @property
    def label(self) -> str:
        return f"{self.kind} {self.workers}w"


UVICORN_VARIANTS = {
    "uvicorn": ["--http", "authsvc.web.protocol:NoDelayHttpToolsProtocol", "--loop", "asyncio"],
    "uvicorn-uvloop": ["--http", "httptools", "--loop", "uvloop"],
    "uvicorn-h11": ["--http", "h11", "--loop", "asyncio"],
}
"""``authsvc serve``'s uvicorn (httptools with TCP_NODELAY per connection, the asyncio loop),
and the same on uvloop, or with h11 instead of httptools: ``--servers
uvicorn-uvloop:1,uvicorn-h11:1`` measures what each choice is worth (docs/benchmarks.md,
"ASGI server")."""


def server_cmd(kind: str, workers: int, port: int) -> list[str]:
    if kind in UVICORN_VARIANTS:
        return [
            str(BIN / "uvicorn"),
            *UVICORN_VARIANTS[kind],
            "--factory",
            APP,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    if kind == "granian":
        return [
            str(BIN / "granian"),
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--no-ws",
            "--log-level",
            "warning",
            APP,
        ]
    raise ValueError(kind)


@contextmanager
def serve(env: Mapping[str, str], kind: str = "uvicorn", workers: int = 1) -> Iterator[Server]:
    port = free_port()
    run_env = dict(env)
    run_env.update(AUTHSVC_HOST="127.0.0.1", AUTHSVC_PORT=str(port))
    proc = Process(server_cmd(kind, workers, port), env=run_env, name=f"{kind}{workers}")
    try:
        base = f"http://127.0.0.1:{port}"
        proc.wait_http(f"{base}/healthz")
        yield Server(kind, workers, base, proc)
    finally:
        proc.stop()


# --- the tenant and its credentials --------------------------------------------------------


@dataclass
class Cred:
    id: str
    key: str

    @property
    def basic(self) -> str:
        raw = f"{self.id}:{self.key}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass
class Fixture:
    operator: str
    slug: str
    tenant_id: str
    admin: Cred
    verifier: Cred
    """TOKENS:VERIFY, no rate limit: the caller of /v1/verify, /v1/authz, introspection."""
    subject: Cred
    """The API key being verified (data scope with a fixed param, no rate limit)."""
    limited: Cred
    """Same grants with one (generous) rate limit: verify pays one Redis round trip."""
    minter: Cred
    """TOKENS:CREATE + the data scope: /v1/tokens and the OAuth client."""
    jwt: str | None
    """A JWT minted from ``minter`` (None while /v1/tokens is missing)."""
    child: Cred
    """A key derived (DESIGN §8) from a non-ADMIN parent holding one generous rate limit:
    verifying it charges the parent's limit too, still in one Redis round trip."""
    limited_jwt: str | None
    """A JWT minted from a key with one generous rate limit (charged on every verify)."""
    idp_token: str
    """An IdP token (RS256) of the tenant's trusted issuer, for the public token exchange."""
    origin: str
    """The browser origin the trusted issuer allows."""


IDP_ISSUER = "http://127.0.0.1:9/bench-idp"
IDP_AUDIENCE = "bench-frontend"
ORIGIN = "https://app.bench.example"


def idp_material() -> tuple[dict[str, Any], str]:
    """An IdP's public JWK Set and one of its tokens (RS256, ``org_id`` claim, valid 2 h)."""
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public.update(kid="bench-idp-1", use="sig", alg="RS256")
    now = int(time.time())
    claims = {
        "iss": IDP_ISSUER,
        "aud": IDP_AUDIENCE,
        "sub": "bench-user",
        "org_id": 42,
        "iat": now,
        "exp": now + 7200,
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench-idp-1"})
    return {"keys": [public]}, token


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _new_key(c: httpx.Client, admin: str, name: str, scopes: list[Any], **extra: Any) -> Cred:
    r = c.post("/v1/keys", headers=bearer(admin), json={"name": name, "scopes": scopes, **extra})
    r.raise_for_status()
    body = r.json()
    return Cred(body["id"], body["key"])


def mint_jwt(base: str, minter: Cred, sub: str = "bench-user") -> str | None:
    r = httpx.post(
        f"{base}/v1/tokens",
        headers=bearer(minter.key),
        json={"scopes": [SCOPE], "ttl_s": 900, "sub": sub},
        timeout=10,
    )
    if r.status_code != 201:
        return None
    return str(r.json()["token"])


def bootstrap(env: Mapping[str, str], base: str) -> Fixture:
    operator = json.loads(cli(env, "init", "--json"))["operator_key"]
    with httpx.Client(base_url=base, timeout=10) as c:
        slug = f"bench{secrets.token_hex(3)}"
        r = c.post("/v1/tenants", headers=bearer(operator), json={"name": "Bench", "slug": slug})
        r.raise_for_status()
        body = r.json()
        admin = Cred(body["admin_key"]["id"], body["admin_key"]["key"])
        data = {"scope": SCOPE, "fixed_params": {"org_id": 42}}
        verifier = _new_key(c, admin.key, "verifier", ["TOKENS:VERIFY"])
        subject = _new_key(c, admin.key, "subject", [data])
        limited = _new_key(
            c,
            admin.key,
            "limited",
            [data],
            ratelimits=[{"name": "rps", "limit": 1_000_000, "period_s": 1}],
        )
        minter = _new_key(c, admin.key, "minter", [data, "TOKENS:CREATE"])
        rps = [{"name": "rps", "limit": 1_000_000, "period_s": 1}]
        parent = _new_key(c, admin.key, "parent", [data, "KEYS:WRITE"], ratelimits=rps)
        child = _new_key(c, parent.key, "child", [data])
        limited_minter = _new_key(
            c, admin.key, "limited-minter", [data, "TOKENS:CREATE"], ratelimits=rps
        )
        jwks, idp_token = idp_material()
        r = c.post(
            "/v1/trusted-issuers",
            headers=bearer(admin.key),
            json={
                "issuer": IDP_ISSUER,
                "jwks": jwks,
                "audiences": [IDP_AUDIENCE],
                "algorithms": ["RS256"],
                "grants": [{"scope": SCOPE, "fixed_params": {"org_id": {"claim": "org_id"}}}],
                "allowed_origins": [ORIGIN],
            },
        )
        r.raise_for_status()
    return Fixture(
        operator=operator,
        slug=slug,
        tenant_id=body["tenant"]["id"],
        admin=admin,
        verifier=verifier,
        subject=subject,
        limited=limited,
        minter=minter,
        jwt=mint_jwt(base, minter),
        child=child,
        limited_jwt=mint_jwt(base, limited_minter),
        idp_token=idp_token,
        origin=ORIGIN,
    )
