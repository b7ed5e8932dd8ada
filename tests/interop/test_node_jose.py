"""The npm ``jose`` package (``createRemoteJWKSet`` + ``jwtVerify`` with ``typ: 'at+jwt'``)
verifies authsvc tokens against the live JWKS, run with Node from this test suite.

The package is pinned with a lockfile in ``tests/interop/node``; ``npm ci`` runs there when
``node_modules`` is missing. Skipped only when ``node`` itself is absent.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.interop.conftest import NODE, NODE_DIR, Live, LiveTenant, start_tenant
from tests.server import require_binary


@pytest.fixture(autouse=True)
def _binary() -> None:
    require_binary(NODE, "node", "apt-get install nodejs npm")


def jose_verify(tenant: LiveTenant, token: str, audience: str | None = None) -> dict[str, Any]:
    assert NODE is not None
    proc = subprocess.run(
        [NODE, "verify.mjs", tenant.jwks_url, tenant.issuer, audience or tenant.issuer, token],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (proc.returncode == 0) == out["ok"], proc.stderr
    return out


@pytest.mark.usefixtures("jose_ready")
@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_node_jose_verifies_token_with_remote_jwks_and_at_jwt_typ(live: Live, alg: str) -> None:
    tenant = start_tenant(live, f"jose {alg}", alg)
    token = tenant.mint([{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": [1, 2]}}])
    out = jose_verify(tenant, token)
    assert out["ok"] is True, out
    assert out["alg"] == alg
    assert out["payload"]["scopes"][0]["fixed_params"] == {"org_id": [1, 2]}


@pytest.mark.usefixtures("jose_ready")
def test_node_jose_refuses_token_for_another_audience(live_tenant: LiveTenant) -> None:
    token = live_tenant.mint(["PIPES:READ:top"])
    out = jose_verify(live_tenant, token, audience="https://other.example")
    assert out == {"ok": False, "code": "ERR_JWT_CLAIM_VALIDATION_FAILED"}
