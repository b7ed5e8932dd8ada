"""A real ``authsvc serve`` (uvicorn, embedded SQLite in a temp dir) for the interop tests,
started once per session, plus helpers to set up tenants and keys through its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster import fresh_database
from tests.server import clean_env, cli, free_port, running_server

NODE_DIR = Path(__file__).parent / "node"
"""The npm ``jose`` package, pinned with a lockfile; ``npm ci`` runs when it is missing."""
NODE = shutil.which("node")


@dataclass(frozen=True)
class Live:
    base: str
    operator_key: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=10)


@dataclass(frozen=True)
class LiveTenant:
    live: Live
    slug: str
    issuer: str
    admin_key: str
    client_id: str
    client_secret: str

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/oauth2/token"

    def mint(self, scopes: list[Any], **body: Any) -> str:
        with self.live.client() as c:
            r = c.post(
                "/v1/tokens",
                json={"scopes": scopes, **body},
                headers={"Authorization": f"Bearer {self.admin_key}"},
            )
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def start_tenant(live: Live, name: str, alg: str = "ES256") -> LiveTenant:
    operator = {"Authorization": f"Bearer {live.operator_key}"}
    with live.client() as c:
        r = c.post("/v1/tenants", json={"name": name}, headers=operator)
        assert r.status_code == 201, r.text
        tenant, admin = r.json()["tenant"], r.json()["admin_key"]["key"]
        admin_h = {"Authorization": f"Bearer {admin}"}
        if alg != "ES256":  # takes effect at the next rotation
            r = c.patch(f"/v1/tenants/{tenant['id']}", json={"signing_alg": alg}, headers=operator)
            assert r.status_code == 200, r.text
            assert c.post("/v1/signing-keys/rotate", headers=admin_h).status_code == 200
        grants = [{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 42}}, "PIPES:READ:top"]
        r = c.post("/v1/keys", json={"name": "oauth client", "scopes": grants}, headers=admin_h)
        assert r.status_code == 201, r.text
        key = r.json()
    return LiveTenant(live, tenant["slug"], tenant["issuer"], admin, key["id"], key["key"])


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    workdir: Path = tmp_path_factory.mktemp("interop")
    port = free_port()
    env = clean_env(
        {
            "AUTHSVC_DATA_DIR": str(workdir / "data"),
            "AUTHSVC_BASE_URL": f"http://127.0.0.1:{port}",
            "AUTHSVC_LOG_LEVEL": "WARNING",
        }
    )
    init = cli("init", "--json", cwd=workdir, env=env)
    assert init.returncode == 0, init.stderr
    operator_key = json.loads(init.stdout)["operator_key"]
    with running_server(workdir, env, port=port) as (base, _proc):
        yield Live(base, operator_key)


@pytest.fixture(scope="session")
def live_tenant(live: Live) -> LiveTenant:
    return start_tenant(live, "Interop")


@pytest.fixture(scope="session")
def live_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The same server in production mode: PostgreSQL (a fresh migrated database)."""
    workdir: Path = tmp_path_factory.mktemp("interop-pg")
    port = free_port()
    with fresh_database() as database_url:
        env = clean_env(
            {
                "AUTHSVC_DATABASE_URL": database_url,
                "AUTHSVC_SECRET_KEY": "interop-master-secret-" + "z" * 32,
                "AUTHSVC_BASE_URL": f"http://127.0.0.1:{port}",
                "AUTHSVC_LOG_LEVEL": "WARNING",
            }
        )
        init = cli("init", "--json", cwd=workdir, env=env)
        assert init.returncode == 0, init.stderr
        operator_key = json.loads(init.stdout)["operator_key"]
        with running_server(workdir, env, port=port) as (base, _proc):
            yield Live(base, operator_key)


@pytest.fixture(scope="session")
def jose_ready() -> None:
    assert NODE is not None, "node is not installed"
    if not (NODE_DIR / "node_modules" / "jose").is_dir():
        npm = shutil.which("npm")
        assert npm is not None, "node is installed but npm is not"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
